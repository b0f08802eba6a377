//! `bedrock-converse chat`.

use std::process::ExitCode;

/// Arguments of `bedrock-converse chat`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the subcommand.
pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("bedrock-converse chat: not built yet");
    ExitCode::FAILURE
}
