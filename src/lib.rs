//! # bedrock-converse
//!
//! A fast, zero-copy client for Amazon Bedrock's Converse and ConverseStream APIs,
//! in three layers, each usable on its own:
//!
//! ```text
//! bytes ──► eventstream::EventStreamCodec ──► Message ──► converse::StreamAssembler ──► StreamEvent / ConverseResponse
//!           (layer 1: wire format)                        (layer 2: sans-IO assembler)
//!                                                                    ▲
//!                                           client (layer 3, feature "client"): config, endpoints, auth, HTTP
//! ```
//!
//! - [`eventstream`]: the `application/vnd.amazon.eventstream` codec. No runtime, no JSON.
//! - [`converse`]: the sans-IO ConverseStream assembler (messages in, typed events and the
//!   finished `ConverseResponse` out) and the Converse JSON types. No runtime, no HTTP.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::Decoder;
//! use bedrock_converse::eventstream::{EventStreamCodec, MessageBuilder};
//!
//! let frame = MessageBuilder::new()
//!     .string_header(":event-type", "contentBlockDelta")
//!     .string_header(":content-type", "application/json")
//!     .string_header(":message-type", "event")
//!     .build(br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#)?;
//! let mut buf = BytesMut::from(frame.as_bytes());
//! let msg = EventStreamCodec::default().decode(&mut buf)?.expect("whole frame");
//! assert_eq!(msg.event_type(), Some("contentBlockDelta"));
//! # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
//! ```

pub mod converse;
pub mod eventstream;
pub mod invoke;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
mod config_file;
#[cfg(feature = "client")]
mod error_type;
// The model-id path rule of the client, the mock server and the gateway.
#[cfg(any(feature = "client", feature = "server"))]
mod model_id;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "server")]
pub mod server;
// TLS termination: the gateway's and the built-in server's (crate-private; their
// modules re-export what a user configures).
#[cfg(any(feature = "proxy", feature = "server"))]
mod tls;
#[cfg(feature = "translate")]
pub mod translate;

// No `Message` at the root: there are two (`eventstream::Message`, a frame, and
// `converse::Message`, a conversation turn), and each is named by its module.
pub use eventstream::{EventStreamCodec, EventStreamError};
