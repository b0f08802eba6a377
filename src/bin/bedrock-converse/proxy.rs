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
    /// Threads of the runtime. 1 (the default): every connection, upstream call and
    /// stream on one thread, no hand-offs between threads (the cheapest per request);
    /// more: a work-stealing runtime, for more than one core's worth of traffic.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    // One line per forwarded request (key id, model, tokens, latency) at `info`,
    // written by a thread of its own; what is left is written when `_flush` drops.
    let _flush = crate::init_batched_logging(Some("info"));
    let (config, tls) = match load(&args) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("bedrock-converse proxy: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime(args.worker_threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bedrock-converse proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bedrock-converse proxy: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The config (with `--listen` applied) and the TLS certificate, or why not.
fn load(args: &Args) -> Result<(ProxyConfig, Option<TlsCertificate>), String> {
    let env = |name: &str| std::env::var(name).ok();
    let path = match &args.config {
        Some(p) => p.clone(),
        None => match locate_config(None, &env, home_dir(&env).as_deref(), &|p| p.exists()) {
            ConfigSource::File(p) => p,
            _ => return Err("needs a config file with a `proxy` block (--config FILE)".to_owned()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut config = ProxyConfig::from_config_text(&text, &env).map_err(|e| e.to_string())?;
    if let Some(listen) = &args.listen {
        config.listen.clone_from(listen);
    }
    // Bad certificate or key files are a config error, before anything listens.
    let tls = config
        .tls
        .as_ref()
        .map(TlsCertificate::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((config, tls))
}

/// A current-thread runtime for one thread, a work-stealing one for more.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        return tokio::runtime::Builder::new_current_thread().enable_all().build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
}

/// Binds the listeners and serves until Ctrl-C.
async fn serve(config: ProxyConfig, tls: Option<TlsCertificate>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let metrics_listener = match &config.metrics_listen {
        None => None,
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| format!("cannot listen on {at} (metricsListen): {e}"))?,
        ),
    };
    let upstream = config.upstream_base.clone();
    let proxy = Proxy::new(config).map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("bedrock-converse proxy listening on {scheme}://{addr}/model/ -> {upstream}");
    if let Some(l) = metrics_listener {
        serve_metrics(&proxy, l);
    }
    let shutdown = stop_signal();
    let served = match tls {
        Some(certificate) => proxy.serve_tls(listener, certificate, shutdown).await,
        None => proxy.serve(listener, shutdown).await,
    };
    served.map_err(|e| e.to_string())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what service managers stop with), so that
/// open requests finish and the last log lines are written.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves `/metrics` on its own address, from a task of its own.
fn serve_metrics(proxy: &Proxy, listener: tokio::net::TcpListener) {
    let at = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!("bedrock-converse proxy metrics on http://{at}/metrics");
    let serving = proxy.clone();
    tokio::spawn(async move {
        let forever = std::future::pending::<()>();
        if let Err(e) = serving.serve_metrics(listener, forever).await {
            eprintln!("bedrock-converse proxy: metrics listener: {e}");
        }
    });
}
