//! placeholder until the SDK tests land
