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
    let filter = match (std::env::var("RUST_LOG"), std::env::var("ECA_LOG_LEVEL")) {
        (Ok(f), _) if !f.is_empty() => f,
        (_, Ok(level)) if !level.is_empty() => level.to_ascii_lowercase(),
        _ => match default {
            Some(level) => level.to_owned(),
            None => return,
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{filter},aws_sigv4=off"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_sigv4=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
