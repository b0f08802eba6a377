//! Layer 2: the sans-IO ConverseStream assembler (messages in, typed events out).
