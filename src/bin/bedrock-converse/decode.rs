//! `bedrock-converse decode`.

use std::process::ExitCode;

/// Arguments of `bedrock-converse decode`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the subcommand.
pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("bedrock-converse decode: not built yet");
    ExitCode::FAILURE
}
