//! `bedrock-converse decode`: decode a ConverseStream response body (raw event-stream
//! bytes) and print the assembled response, the events, or the frames.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bedrock_converse::converse::{Blob, StreamAssembler, StreamError};
use bedrock_converse::eventstream::{EventStreamCodec, HeaderValue, Message};
use bytes::BytesMut;
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

/// Arguments of `bedrock-converse decode`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The body to decode: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: String,
    /// Print one JSON line per event (`{"<eventType>": payload}`; exceptions included)
    /// instead of the assembled response.
    #[arg(long, conflicts_with = "frames")]
    events: bool,
    /// Print each frame: its headers with their types, and its payload (UTF-8, or base64
    /// when it is not UTF-8).
    #[arg(long)]
    frames: bool,
    /// Accept streams that do not begin with `messageStart`.
    #[arg(long)]
    lenient: bool,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    let bytes = match read_input(&args.input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bedrock-converse decode: cannot read {}: {e}", args.input);
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match decode(&args, &bytes, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = out.flush();
            eprintln!("bedrock-converse decode: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn read_input(input: &str) -> std::io::Result<Vec<u8>> {
    if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(PathBuf::from(input))
    }
}

/// Why decoding stopped (printed on stderr after what was assembled).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("invalid event stream after {frames} frame(s) (byte offset {offset}): {source}")]
    Frame {
        frames: usize,
        offset: usize,
        source: bedrock_converse::EventStreamError,
    },
    #[error("the body ends inside a frame: {left} byte(s) after {frames} frame(s)")]
    Truncated { frames: usize, left: usize },
    #[error("frame {frame}: {source}")]
    Stream { frame: usize, source: StreamError },
    #[error("{0}")]
    Finish(StreamError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn decode(args: &Args, bytes: &[u8], out: &mut impl Write) -> Result<(), Failure> {
    let mut buf = BytesMut::from(bytes);
    let mut codec = EventStreamCodec::default();
    let mut assembler = StreamAssembler::new().allow_missing_message_start(args.lenient);
    let mut frames = 0usize;
    let mut first_error: Option<Failure> = None;
    loop {
        let offset = bytes.len() - buf.len();
        let message = match codec.decode(&mut buf) {
            Ok(Some(m)) => m,
            Ok(None) if buf.is_empty() => break,
            Ok(None) => {
                first_error = Some(Failure::Truncated {
                    frames,
                    left: buf.len(),
                });
                break;
            }
            Err(source) => {
                first_error = Some(Failure::Frame {
                    frames,
                    offset,
                    source,
                });
                break;
            }
        };
        frames += 1;
        if args.frames {
            writeln!(out, "{}", frame_json(&message))?;
            continue;
        }
        match assembler.push(&message) {
            Ok(Some(event)) if args.events => {
                serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::from)?;
                writeln!(out)?;
            }
            Ok(_) => {}
            Err(source) => {
                if args.events {
                    if let Some(line) = error_event_json(&source) {
                        writeln!(out, "{line}")?;
                    }
                }
                first_error = Some(Failure::Stream {
                    frame: frames,
                    source,
                });
                break;
            }
        }
    }
    if args.frames || args.events {
        return first_error.map_or(Ok(()), Err);
    }
    let (response, error) = match first_error {
        Some(e) => (assembler.into_partial(), Some(e)),
        None => match assembler.finish() {
            Ok(r) => (r, None),
            Err(StreamError::Incomplete(inc)) => {
                let partial = inc.partial.clone();
                (partial, Some(Failure::Finish(StreamError::Incomplete(inc))))
            }
            Err(e) => (Default::default(), Some(Failure::Finish(e))),
        },
    };
    serde_json::to_writer_pretty(&mut *out, &response).map_err(std::io::Error::from)?;
    writeln!(out)?;
    error.map_or(Ok(()), Err)
}

/// The exception or error frame as an event line, like the stream's union member.
fn error_event_json(err: &StreamError) -> Option<Value> {
    match err {
        StreamError::Service(e) => {
            let mut body = serde_json::from_slice::<Value>(&e.payload)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({ "message": e.message }));
            if let Some(obj) = body.as_object_mut() {
                obj.remove("p");
            }
            Some(json!({ e.kind.as_str(): body }))
        }
        StreamError::ErrorFrame { code, message } => {
            Some(json!({ "error": { "errorCode": code, "errorMessage": message } }))
        }
        _ => None,
    }
}

fn frame_json(message: &Message) -> Value {
    let headers: Vec<Value> = message
        .headers()
        .map(|(name, value)| {
            let v = match value {
                HeaderValue::Bool(b) => json!(b),
                HeaderValue::Byte(n) => json!(n),
                HeaderValue::Int16(n) => json!(n),
                HeaderValue::Int32(n) => json!(n),
                HeaderValue::Int64(n) | HeaderValue::Timestamp(n) => json!(n),
                HeaderValue::ByteArray(b) => json!(Blob::from(b).to_base64()),
                HeaderValue::String(s) => json!(s),
                HeaderValue::Uuid(u) => json!(u.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            };
            json!({ "name": name, "type": value.type_name(), "value": v })
        })
        .collect();
    let payload = message.payload();
    match std::str::from_utf8(payload) {
        Ok(text) => json!({ "headers": headers, "payload": text }),
        Err(_) => json!({ "headers": headers, "payloadBase64": Blob::from(payload).to_base64() }),
    }
}
