//! `bedrock-converse`: the command-line program.
//!
//! Subcommands: `demo`, `chat`, `decode`, `endpoint`, `serve`, `proxy`. Each lives in its own
//! module with its `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod chat;
mod decode;
mod demo;
mod endpoint;
mod log_lines;
mod proxy;
mod serve;

/// Fast client for Amazon Bedrock's Converse and ConverseStream APIs.
#[derive(Debug, Parser)]
#[command(name = "bedrock-converse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the built-in Bedrock server and run a streamed conversation with a tool round trip.
    Demo(demo::Args),
    /// Send a prompt to Bedrock (or any Bedrock-compatible proxy) and stream the answer.
    Chat(chat::Args),
    /// Decode a ConverseStream response body (raw event-stream bytes).
    Decode(decode::Args),
    /// Print the URL a model would be called at.
    Endpoint(endpoint::Args),
    /// Run the built-in Bedrock server standalone.
    Serve(serve::Args),
    /// Run the signing gateway: Bearer keys in, SigV4 to Bedrock, validated streams back.
    Proxy(proxy::Args),
}

/// Logs to stderr as `RUST_LOG` (a full filter) or `ECA_LOG_LEVEL` (a level) ask, else
/// at `default` (none: no logging). `aws_sigv4` stays off: its trace output names the
/// access key id.
pub(crate) fn init_logging(default: Option<&str>) {
    let Some(filter) = log_filter(default) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// [`init_logging`] for a server: each line is formatted where it is logged and
/// written to stderr by a thread of its own, in batches (`log_lines.rs`), so that a
/// request costs no `write(2)`. What is left is written when the guard drops: keep it
/// until the end of `run`.
pub(crate) fn init_batched_logging(default: Option<&str>) -> Option<log_lines::Flush> {
    let filter = log_filter(default)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let Ok((log, flush)) = log_lines::BatchedLog::start(std::io::stderr()) else {
        // No thread for the writer: lines are written where they are logged.
        init_logging(default);
        return None;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log)
        .with_ansi(ansi)
        .try_init();
    Some(flush)
}

/// The filter `RUST_LOG`, `ECA_LOG_LEVEL` or `default` asks for; none: no logging.
fn log_filter(default: Option<&str>) -> Option<tracing_subscriber::EnvFilter> {
    let filter = match (std::env::var("RUST_LOG"), std::env::var("ECA_LOG_LEVEL")) {
        (Ok(f), _) if !f.is_empty() => f,
        (_, Ok(level)) if !level.is_empty() => level.to_ascii_lowercase(),
        _ => default?.to_owned(),
    };
    Some(
        tracing_subscriber::EnvFilter::try_new(format!("{filter},aws_sigv4=off"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_sigv4=off")),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Endpoint(args) => endpoint::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Proxy(args) => proxy::run(args),
    }
}
