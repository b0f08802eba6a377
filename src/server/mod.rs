//! The built-in mock Bedrock server (feature `server`).
