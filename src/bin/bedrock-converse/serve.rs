//! `bedrock-converse serve`: the built-in mock Bedrock server, standalone.
//!
//! Prints the URL to point a client or a gateway at, logs one line per request to
//! stderr, and serves until Ctrl-C. The scenario is the last `.`-part of the model id; see
//! `bedrock_converse::server` for the table.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bedrock_converse::server::{self_signed_pem, MockBedrock, Scenario, TlsCertificate};

/// Arguments of `bedrock-converse serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (port 0: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer <KEY>`.
    #[arg(long, env = "BEDROCK_MOCK_KEY")]
    key: Option<String>,
    /// Also accept any well-formed SigV4 `Authorization` header.
    #[arg(long)]
    sigv4: bool,
    /// Number of text deltas of the `long` scenario.
    #[arg(long, default_value_t = bedrock_converse::server::DEFAULT_LONG_DELTAS)]
    long_deltas: usize,
    /// Seconds the `stall` scenario stays silent.
    #[arg(long, default_value_t = 3600)]
    stall_secs: u64,
    /// Pause between frames of every stream, in milliseconds.
    #[arg(long, default_value_t = 0)]
    frame_delay_ms: u64,
    /// Serve HTTPS with a freshly generated self-signed certificate for `localhost` and
    /// `127.0.0.1` (for testing clients that insist on HTTPS, such as boto3 with a
    /// bearer token).
    #[arg(long)]
    tls: bool,
    /// Where `--tls` writes its certificate (PEM), for a client to trust
    /// (`verify=`, `caFile`). Default: a file in the temporary directory, printed.
    #[arg(long, requires = "tls")]
    tls_cert_out: Option<PathBuf>,
    /// Do not log one line per request to stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    if !args.quiet {
        // One line per request (method, path, status, scenario); `RUST_LOG` overrides.
        let filter = std::env::var("RUST_LOG")
            .ok()
            .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("bedrock_converse::server=debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bedrock-converse serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let mut builder = MockBedrock::builder()
        .listen(args.listen)
        .long_deltas(args.long_deltas)
        .stall_duration(Duration::from_secs(args.stall_secs))
        .frame_delay(Duration::from_millis(args.frame_delay_ms));
    if let Some(key) = &args.key {
        builder = builder.bearer_key(key.clone());
    }
    if args.sigv4 {
        builder = builder.accept_sigv4();
    }
    let mut cert_path = None;
    if args.tls {
        match self_signed(args.tls_cert_out.clone()) {
            Ok((certificate, path)) => {
                builder = builder.tls(certificate);
                cert_path = Some(path);
            }
            Err(e) => {
                eprintln!("bedrock-converse serve: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match builder.start().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("bedrock-converse serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let auth = match (&args.key, args.sigv4) {
        (Some(_), true) => "Bearer key (--key) or any SigV4 signature",
        (Some(_), false) => "Bearer key (--key)",
        (None, true) => "any SigV4 signature",
        (None, false) => "none",
    };
    let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    println!("mock Bedrock listening on {}", server.endpoint());
    println!("url: {}", server.url());
    println!("auth: {auth}");
    if let Some(path) = &cert_path {
        println!("tls certificate (trust it as the CA): {}", path.display());
    }
    println!("scenarios (last part of the model id): {}", names.join(", "));
    println!(
        "try: curl -s{} {}us-east-1.mock.text/converse{} -H 'content-type: application/json' -d '{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"text\":\"hi\"}}]}}]}}'",
        match &cert_path {
            Some(path) => format!(" --cacert {}", path.display()),
            None => String::new(),
        },
        server.url(),
        match &args.key {
            Some(key) => format!(" -H 'authorization: Bearer {key}'"),
            None => String::new(),
        }
    );
    // Serve until Ctrl-C, then stop cleanly (open streams are cut).
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("bedrock-converse serve: cannot wait for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    let requests = server.request_count();
    match server.shutdown().await {
        Ok(()) => {
            println!("stopped after {requests} requests");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bedrock-converse serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A self-signed certificate, its PEM written to `out` (default: the temporary
/// directory) so a client can trust it.
fn self_signed(out: Option<PathBuf>) -> Result<(TlsCertificate, PathBuf), String> {
    let (cert_pem, key_pem) = self_signed_pem().map_err(|e| e.to_string())?;
    let certificate =
        TlsCertificate::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let path = out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("bedrock-converse-serve-{}.pem", std::process::id()))
    });
    std::fs::write(&path, cert_pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((certificate, path))
}
