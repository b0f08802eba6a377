//! `bedrock-converse decode`: decode a ConverseStream or InvokeModelWithResponseStream
//! response body (raw event-stream bytes) and print the assembled response, the events,
//! or the frames.
//!
//! A body whose first frame is a `chunk` event is an invoke stream: its chunks are
//! decoded (`{"bytes":"<base64>"}`) and assembled into the Anthropic Messages response;
//! `--events` prints the native events themselves, one JSON line each.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bedrock_converse::converse::{Blob, ConverseResponse, ServiceException, StreamAssembler, StreamError};
use bedrock_converse::eventstream::{EventStreamCodec, HeaderValue, Message};
use bedrock_converse::invoke::{
    AnthropicAssembler, AnthropicMessage, ChunkDecoder, InvokeError, CHUNK_EVENT_TYPE,
};
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
    #[error("frame {frame}: {source}")]
    Invoke { frame: usize, source: InvokeError },
    #[error("{0}")]
    FinishInvoke(InvokeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The frames of a body, in order; a framing problem ends them with a [`Failure`].
struct Frames<'b> {
    bytes: &'b [u8],
    buf: BytesMut,
    codec: EventStreamCodec,
    count: usize,
}

impl<'b> Frames<'b> {
    fn new(bytes: &'b [u8]) -> Frames<'b> {
        Frames {
            bytes,
            buf: BytesMut::from(bytes),
            codec: EventStreamCodec::default(),
            count: 0,
        }
    }

    /// The next frame, `Ok(None)` at a clean end of the body.
    fn next(&mut self) -> Result<Option<Message>, Failure> {
        let offset = self.bytes.len() - self.buf.len();
        match self.codec.decode(&mut self.buf) {
            Ok(Some(m)) => {
                self.count += 1;
                Ok(Some(m))
            }
            Ok(None) if self.buf.is_empty() => Ok(None),
            Ok(None) => Err(Failure::Truncated {
                frames: self.count,
                left: self.buf.len(),
            }),
            Err(source) => Err(Failure::Frame {
                frames: self.count,
                offset,
                source,
            }),
        }
    }
}

/// Whether the body's first frame is a `chunk` event (an invoke stream).
fn is_invoke_stream(bytes: &[u8]) -> bool {
    matches!(Frames::new(bytes).next(), Ok(Some(m)) if m.event_type() == Some(CHUNK_EVENT_TYPE))
}

impl Frames<'_> {
    /// Hands each frame and its number to `step` until the body ends or a step fails;
    /// the first failure (of the framing or of `step`), if any.
    fn for_each(mut self, mut step: impl FnMut(&Message, usize) -> Result<(), Failure>) -> Option<Failure> {
        loop {
            let message = match self.next() {
                Ok(Some(m)) => m,
                Ok(None) => return None,
                Err(e) => return Some(e),
            };
            if let Err(e) = step(&message, self.count) {
                return Some(e);
            }
        }
    }
}

/// An assembler as the printer of its result sees it.
trait Assembly {
    /// What it assembles.
    type Output: serde::Serialize;
    /// What had arrived when the body failed.
    fn into_partial(self) -> Self::Output;
    /// The assembled output, or what had arrived and why it is not complete.
    fn complete(self) -> (Self::Output, Option<Failure>);
}

impl Assembly for StreamAssembler {
    type Output = ConverseResponse;

    fn into_partial(self) -> ConverseResponse {
        StreamAssembler::into_partial(self)
    }

    fn complete(self) -> (ConverseResponse, Option<Failure>) {
        match self.finish() {
            Ok(response) => (response, None),
            Err(StreamError::Incomplete(inc)) => {
                let partial = inc.partial.clone();
                (partial, Some(Failure::Finish(StreamError::Incomplete(inc))))
            }
            Err(e) => (ConverseResponse::default(), Some(Failure::Finish(e))),
        }
    }
}

impl Assembly for AnthropicAssembler {
    type Output = AnthropicMessage;

    fn into_partial(self) -> AnthropicMessage {
        self.partial()
    }

    fn complete(self) -> (AnthropicMessage, Option<Failure>) {
        match self.finish() {
            Ok(message) => (message, None),
            Err(InvokeError::Incomplete(inc)) => {
                let partial = inc.partial.clone();
                (partial, Some(Failure::FinishInvoke(InvokeError::Incomplete(inc))))
            }
            Err(e) => (AnthropicMessage::default(), Some(Failure::FinishInvoke(e))),
        }
    }
}

/// Prints what `assembler` assembled (what had arrived, when the body failed), then
/// hands back the failure.
fn print_assembled(
    out: &mut impl Write,
    assembler: impl Assembly,
    first_error: Option<Failure>,
) -> Result<(), Failure> {
    let (output, error) = match first_error {
        Some(e) => (assembler.into_partial(), Some(e)),
        None => assembler.complete(),
    };
    serde_json::to_writer_pretty(&mut *out, &output).map_err(std::io::Error::from)?;
    writeln!(out)?;
    error.map_or(Ok(()), Err)
}

fn decode(args: &Args, bytes: &[u8], out: &mut impl Write) -> Result<(), Failure> {
    if !args.frames && is_invoke_stream(bytes) {
        return decode_invoke(args, bytes, out);
    }
    let mut assembler = StreamAssembler::new().allow_missing_message_start(args.lenient);
    let first_error = Frames::new(bytes).for_each(|message, frame| {
        if args.frames {
            writeln!(out, "{}", frame_json(message))?;
            return Ok(());
        }
        match assembler.push(message) {
            Ok(Some(event)) if args.events => {
                serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::from)?;
                writeln!(out)?;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(source) => {
                if let Some(line) = error_event_json(&source).filter(|_| args.events) {
                    writeln!(out, "{line}")?;
                }
                Err(Failure::Stream { frame, source })
            }
        }
    });
    if args.frames || args.events {
        return first_error.map_or(Ok(()), Err);
    }
    print_assembled(out, assembler, first_error)
}

/// An invoke stream: the native events (`--events`) or the assembled Anthropic
/// message (printed even when the stream failed, with what had arrived).
fn decode_invoke(args: &Args, bytes: &[u8], out: &mut impl Write) -> Result<(), Failure> {
    let mut decoder = ChunkDecoder::new();
    let mut assembler = AnthropicAssembler::new();
    let first_error = Frames::new(bytes).for_each(|message, frame| {
        let pushed = match decoder.decode(message.as_frame()) {
            Ok(Some(event)) => {
                if args.events {
                    out.write_all(event)?;
                    writeln!(out)?;
                }
                assembler.push(event).map(drop)
            }
            Ok(None) => Ok(()),
            Err(source) => {
                if let (true, InvokeError::Service(e)) = (args.events, &source) {
                    writeln!(out, "{}", exception_json(e))?;
                }
                Err(source)
            }
        };
        pushed.map_err(|source| Failure::Invoke { frame, source })
    });
    if args.events {
        return first_error.map_or(Ok(()), Err);
    }
    print_assembled(out, assembler, first_error)
}

/// An exception frame as an event line, like the stream's union member:
/// `{"<exceptionType>": payload}`.
fn exception_json(e: &ServiceException) -> Value {
    let mut body = serde_json::from_slice::<Value>(&e.payload)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({ "message": e.message }));
    if let Some(obj) = body.as_object_mut() {
        obj.remove("p");
    }
    json!({ e.kind.as_str(): body })
}

/// The exception or error frame as an event line, like the stream's union member.
fn error_event_json(err: &StreamError) -> Option<Value> {
    match err {
        StreamError::Service(e) => Some(exception_json(e)),
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
