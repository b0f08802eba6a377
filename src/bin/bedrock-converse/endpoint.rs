//! `bedrock-converse endpoint`.

use std::process::ExitCode;

/// Arguments of `bedrock-converse endpoint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the subcommand.
pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("bedrock-converse endpoint: not built yet");
    ExitCode::FAILURE
}
