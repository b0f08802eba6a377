//! `bedrock-converse endpoint`: prints the URL a model is called at (the seed's
//! `build-endpoint`), alone on one line.

use std::path::PathBuf;
use std::process::ExitCode;

use bedrock_converse::client::config::{home_dir, Config};
use bedrock_converse::client::{ClientError, ConfigError, Endpoint};

/// Arguments of `bedrock-converse endpoint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The config file (default: $BEDROCK_CONVERSE_CONFIG, else ~/.config/eca/config.json,
    /// else AWS_REGION and AWS_BEARER_TOKEN_BEDROCK / BEDROCK_API_KEY).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The model: `<provider>/<alias>`, an alias, or a raw Bedrock model id.
    model: String,
    /// Print the `/converse` URL even when the model streams by default.
    #[arg(long)]
    no_stream: bool,
}

/// Loads the config. The URL does not depend on the key, so a `key` whose
/// `${env:VAR}` is unset is treated as empty here instead of failing.
fn load_config(explicit: Option<&std::path::Path>) -> Result<Config, ClientError> {
    let mut blank: Vec<String> = Vec::new();
    loop {
        let env = |name: &str| {
            if blank.iter().any(|b| b == name) {
                Some(String::new())
            } else {
                std::env::var(name).ok()
            }
        };
        let home = home_dir(&env);
        match Config::discover(explicit, &env, home.as_deref()) {
            Err(ClientError::Config(ConfigError::EnvVarUnset { var, field }))
                if field.ends_with(".key") && blank.len() < 16 =>
            {
                blank.push(var);
            }
            other => return other,
        }
    }
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bedrock-converse endpoint: {e}");
            return ExitCode::from(2);
        }
    };
    let model = match config.resolve_model(&args.model) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bedrock-converse endpoint: {e}");
            return ExitCode::from(2);
        }
    };
    let stream = !args.no_stream && model.stream_default();
    println!("{}", Endpoint::for_model(&model, stream).display);
    ExitCode::SUCCESS
}
