//! Building a [`BedrockClient`]: its options, deadlines, credentials and HTTP client.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::auth::Auth;
use super::config::{self, Config};
use super::error::{ClientError, ConfigError};
use super::retry::RetryPolicy;
use super::{BedrockClient, Inner};

/// Deadlines of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect. Default 10 s.
    pub connect: Duration,
    /// From sending the request to the response head. `/converse` answers only when
    /// the model is done, so this is long by default: 300 s.
    pub first_byte: Duration,
    /// The longest gap between two chunks of a body. Default 120 s.
    pub idle: Duration,
    /// The whole call, retries and streaming included. Default none.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(120),
            total: None,
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// The retry policy.
    pub retry: RetryPolicy,
    /// The deadlines.
    pub timeouts: Timeouts,
    /// The largest `/converse` or error body read. Default 64 MiB.
    pub max_body_len: usize,
    /// The most text, tool input and reasoning a streamed reply may assemble, in
    /// bytes ([`ResponseError::AssembledTooLarge`](super::ResponseError::AssembledTooLarge) past it). Default 64 MiB.
    pub max_assembled_len: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            max_body_len: 64 << 20,
            max_assembled_len: 64 << 20,
        }
    }
}

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub(super) type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Builds a [`BedrockClient`].
pub struct BedrockClientBuilder {
    config: Config,
    options: ClientOptions,
    env: EnvFn,
    home: Option<Option<PathBuf>>,
    auth: BTreeMap<String, Auth>,
    http: Option<reqwest::Client>,
    clock: ClockFn,
    ca_files: Vec<PathBuf>,
}

impl fmt::Debug for BedrockClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockClientBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BedrockClientBuilder {
    /// A builder with default options and the process environment.
    pub(super) fn new(config: Config) -> BedrockClientBuilder {
        BedrockClientBuilder {
            config,
            options: ClientOptions::default(),
            env: Arc::new(|n: &str| std::env::var(n).ok()),
            home: None,
            auth: BTreeMap::new(),
            http: None,
            clock: Arc::new(SystemTime::now),
            ca_files: Vec::new(),
        }
    }

    /// Sets all options.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// Sets the deadlines.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.options.timeouts = timeouts;
        self
    }

    /// Where AWS credentials are looked up (default: the process environment).
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// The home directory for `~/.aws/credentials` (default: `$HOME`).
    pub fn home(mut self, home: Option<PathBuf>) -> Self {
        self.home = Some(home);
        self
    }

    /// Authenticates `provider` with `auth` instead of its key or found credentials.
    pub fn auth(mut self, provider: impl Into<String>, auth: Auth) -> Self {
        self.auth.insert(provider.into(), auth);
        self
    }

    /// The clock used for SigV4 timestamps (default: the system clock). For tests.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses this reqwest client (its own timeouts then apply instead of `connect`).
    /// Build it with `redirect(reqwest::redirect::Policy::none())`: a redirect it
    /// follows sends the request, `x-amz-security-token` included, to the new host.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Also trusts the CA certificates (PEM, one or more) in this file, beside the
    /// webpki roots: for a gateway with its own certificate (`proxy.tls`, or
    /// `serve --tls`); a provider's `caFile` adds its file too. Ignored with
    /// [`http_client`](Self::http_client).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Builds the client. Providers without a key get SigV4 credentials from the
    /// environment or the shared credentials file; a provider with neither fails only
    /// when it is called.
    ///
    /// # Errors
    ///
    /// [`ClientError::HttpClient`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<BedrockClient, ClientError> {
        let env = self.env.clone();
        let env_fn = move |n: &str| env(n);
        let home = match self.home {
            Some(h) => h,
            None => config::home_dir(&env_fn),
        };
        let mut auth = BTreeMap::new();
        for (name, provider) in &self.config.providers {
            let resolved = match self.auth.get(name) {
                Some(a) => Some(a.clone()),
                None => Auth::resolve(
                    provider.key.as_deref(),
                    &provider.region,
                    &env_fn,
                    home.as_deref(),
                )
                .ok(),
            };
            if let Some(a) = resolved {
                auth.insert(name.clone(), a);
            }
        }
        let http = match self.http {
            Some(h) => h,
            None => {
                let mut http = reqwest::Client::builder()
                    .connect_timeout(self.options.timeouts.connect)
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(60))
                    // Bedrock never redirects; reqwest's default policy would re-send the
                    // prompt and `x-amz-security-token` to another host.
                    .redirect(reqwest::redirect::Policy::none())
                    .referer(false);
                let from_config = self.config.providers.values().filter_map(|p| p.ca_file.as_ref());
                for path in self.ca_files.iter().chain(from_config) {
                    for certificate in read_ca_file(path)? {
                        http = http.add_root_certificate(certificate);
                    }
                }
                http.build().map_err(ClientError::HttpClient)?
            }
        };
        Ok(BedrockClient {
            inner: Arc::new(Inner {
                http,
                config: self.config,
                options: self.options,
                auth,
                clock: self.clock,
            }),
        })
    }
}

/// The certificates of a PEM CA file.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path).map_err(|source| {
        ClientError::Config(ConfigError::Read {
            path: path.to_owned(),
            source,
        })
    })?;
    let invalid = |reason: String| {
        ClientError::Config(ConfigError::Invalid {
            field: format!("caFile {}", path.display()),
            reason,
        })
    };
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM CERTIFICATE block".to_owned()));
    }
    Ok(certificates)
}
