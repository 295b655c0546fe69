//! The `claimgate` binary: parses the command line and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claimgate::config::Severity;
use claimgate::keys::Alg;
use claimgate::mint::{self, MintOptions};
use claimgate::provider::ProviderOptions;
use claimgate::reload::ReloadOptions;
use claimgate::server::{self, Bound, ServeOptions};

#[derive(Parser)]
#[command(
    name = "claimgate",
    version,
    about = "Envoy external authorization for OIDC external identities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC ext_authz and the metrics/health endpoints; reload on config changes.
    Serve {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// gRPC listen address.
        #[arg(long, env = "CLAIMGATE_GRPC_ADDR", default_value = "0.0.0.0:9001")]
        grpc_addr: SocketAddr,
        /// HTTP listen address for /metrics, /healthz, /readyz.
        #[arg(long, env = "CLAIMGATE_HTTP_ADDR", default_value = "0.0.0.0:9090")]
        http_addr: SocketAddr,
        /// Quiet time after a config change before reloading (e.g. 200ms).
        #[arg(long, env = "CLAIMGATE_RELOAD_DEBOUNCE", default_value = "200ms")]
        reload_debounce: humantime::Duration,
        /// Re-hash the config files this often as a backstop for missed events.
        #[arg(long, env = "CLAIMGATE_RELOAD_POLL", default_value = "30s")]
        reload_poll: humantime::Duration,
        /// Refresh remote keys this often when the provider sends no Cache-Control max-age.
        #[arg(long, env = "CLAIMGATE_JWKS_REFRESH", default_value = "10m")]
        jwks_refresh: humantime::Duration,
        /// At most one unknown-kid refetch per SSO per this interval.
        #[arg(long, env = "CLAIMGATE_JWKS_REFETCH_INTERVAL", default_value = "30s")]
        jwks_refetch_interval: humantime::Duration,
        /// How long a check waits for remote keys before it is denied.
        #[arg(long, env = "CLAIMGATE_JWKS_REFETCH_WAIT", default_value = "100ms")]
        jwks_refetch_wait: humantime::Duration,
        /// Log format: text or json.
        #[arg(long, env = "CLAIMGATE_LOG_FORMAT", default_value = "text")]
        log_format: String,
    },
    /// Check a configuration directory exactly as serve would load it.
    Validate {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
    },
    /// Mint a signed token for development and tests.
    Token {
        /// PEM private key (RSA, EC P-256/P-384 or Ed25519).
        #[arg(long, env = "CLAIMGATE_KEY")]
        key: PathBuf,
        /// Issuer (iss).
        #[arg(long, env = "CLAIMGATE_ISS")]
        iss: String,
        /// Audience (aud).
        #[arg(long, env = "CLAIMGATE_AUD")]
        aud: String,
        /// Subject (sub).
        #[arg(long, env = "CLAIMGATE_SUB")]
        sub: String,
        /// Key ID (kid) header.
        #[arg(long, env = "CLAIMGATE_KID")]
        kid: Option<String>,
        /// Extra claim name=value (JSON values allowed); repeatable.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// Lifetime, e.g. 1h, 15m.
        #[arg(long, env = "CLAIMGATE_TTL", default_value = "1h")]
        ttl: humantime::Duration,
        /// Signature algorithm (default: from the key type).
        #[arg(long, env = "CLAIMGATE_ALG")]
        alg: Option<String>,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAIMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            grpc_addr,
            http_addr,
            reload_debounce,
            reload_poll,
            jwks_refresh,
            jwks_refetch_interval,
            jwks_refetch_wait,
            log_format,
        } => {
            init_logging(log_format == "json");
            let opts = ServeOptions {
                config_dir: config,
                grpc_addr,
                http_addr,
                reload: ReloadOptions {
                    debounce: reload_debounce.into(),
                    poll: reload_poll.into(),
                },
                provider: ProviderOptions {
                    refresh: jwks_refresh.into(),
                    refetch_min_interval: jwks_refetch_interval.into(),
                    refetch_wait: jwks_refetch_wait.into(),
                    ..ProviderOptions::default()
                },
            };
            match serve(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Validate { config } => validate(&config),
        Command::Token {
            key,
            iss,
            aud,
            sub,
            kid,
            claims,
            ttl,
            alg,
        } => {
            let result = (|| -> anyhow::Result<String> {
                let key_pem = std::fs::read(&key)
                    .map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", key.display()))?;
                let alg = match alg {
                    None => None,
                    Some(a) => Some(
                        Alg::parse(&a)
                            .ok_or_else(|| anyhow::anyhow!("algorithm {a:?} is not supported"))?,
                    ),
                };
                Ok(mint::mint(&MintOptions {
                    key_pem,
                    alg,
                    issuer: iss,
                    audience: aud,
                    subject: sub,
                    kid,
                    claims,
                    ttl: ttl.into(),
                })?)
            })();
            match result {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let bound = Bound::bind(&opts).await?;
        bound.run(server::shutdown_signal()).await?;
        Ok(())
    })
}

fn validate(dir: &std::path::Path) -> ExitCode {
    let (diagnostics, ok) = match server::load_snapshot(dir) {
        Ok(snap) => (snap.warnings.clone(), true),
        Err(e) => {
            let d = e.diagnostics().to_vec();
            if d.is_empty() {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            (d, false)
        }
    };
    for d in &diagnostics {
        println!("{d}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if ok {
        println!("{}: valid ({warnings} warning(s))", dir.display());
        ExitCode::SUCCESS
    } else {
        println!(
            "{}: invalid ({errors} error(s), {warnings} warning(s))",
            dir.display()
        );
        ExitCode::from(1)
    }
}
