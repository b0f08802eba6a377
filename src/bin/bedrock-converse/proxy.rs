//! `bedrock-converse proxy`: the signing gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use bedrock_converse::client::config::{home_dir, locate_config, ConfigSource};
use bedrock_converse::proxy::{Proxy, ProxyConfig, TlsCertificate};

/// Arguments of `bedrock-converse proxy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (overrides the config's `proxy.listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Config file with `providers` and a `proxy` block (see the README).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    // One line per forwarded request (key id, model, tokens, latency) at `info`.
    crate::init_logging(Some("info"));
    let env = |name: &str| std::env::var(name).ok();
    let path = match args.config {
        Some(p) => p,
        None => match locate_config(None, &env, home_dir(&env).as_deref(), &|p| p.exists()) {
            ConfigSource::File(p) => p,
            _ => {
                eprintln!("bedrock-converse proxy: needs a config file with a `proxy` block (--config FILE)");
                return ExitCode::from(2);
            }
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bedrock-converse proxy: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let mut config = match ProxyConfig::from_config_text(&text, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bedrock-converse proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // Bad certificate or key files are a config error, before anything listens.
    let tls = match config.tls.as_ref().map(TlsCertificate::load).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bedrock-converse proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bedrock-converse proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&config.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bedrock-converse proxy: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let metrics_listener = match &config.metrics_listen {
            None => None,
            Some(at) => match tokio::net::TcpListener::bind(at).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("bedrock-converse proxy: cannot listen on {at} (metricsListen): {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        let upstream = config.upstream_base.clone();
        let proxy = match Proxy::new(config) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("bedrock-converse proxy: {e}");
                return ExitCode::FAILURE;
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("bedrock-converse proxy listening on {scheme}://{addr}/model/ -> {upstream}");
        if let Some(l) = metrics_listener {
            let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            println!("bedrock-converse proxy metrics on http://{at}/metrics");
            let serving = proxy.clone();
            tokio::spawn(async move {
                let forever = std::future::pending::<()>();
                if let Err(e) = serving.serve_metrics(l, forever).await {
                    eprintln!("bedrock-converse proxy: metrics listener: {e}");
                }
            });
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let served = match tls {
            Some(certificate) => proxy.serve_tls(listener, certificate, shutdown).await,
            None => proxy.serve(listener, shutdown).await,
        };
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bedrock-converse proxy: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
