//! `bedrock-converse demo`.

use std::process::ExitCode;

/// Arguments of `bedrock-converse demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the subcommand.
pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("bedrock-converse demo: not built yet");
    ExitCode::FAILURE
}
