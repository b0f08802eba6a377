//! placeholder until the TLS tests land
