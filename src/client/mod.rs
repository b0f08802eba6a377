//! Layer 3: the Converse client (feature `client`).
