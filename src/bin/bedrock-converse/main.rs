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
