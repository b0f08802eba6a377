//! `bedrock-converse serve`.

use std::process::ExitCode;

/// Arguments of `bedrock-converse serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the subcommand.
pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("bedrock-converse serve: not built yet");
    ExitCode::FAILURE
}
