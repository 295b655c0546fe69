//! The `claimgate` binary: parses the command line and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claimgate::core::config::ConfigError;
use claimgate::core::decision::Enforcement;
use claimgate::core::keys::Alg;
use claimgate::core::role::Role;
use claimgate::server::listener::ConnectionOptions;
use claimgate::server::provider::ProviderOptions;
use claimgate::server::reload::ReloadOptions;
use claimgate::server::tls::TlsFiles;
use claimgate::server::{ServeError, ServeOptions};
use claimgate::tools::mint::{self, MintOptions};
use claimgate::tools::validate;

#[path = "main/commands.rs"]
mod commands;

use commands::{diff_command, explain_command, serve, test_command, who_can_command};

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

// Parsed once at startup, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve gRPC ext_authz and the metrics/health endpoints; reload on config changes.
    Serve {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// gRPC listen address: HOST:PORT, or unix:/PATH for a Unix socket.
        #[arg(long, env = "CLAIMGATE_GRPC_ADDR", default_value = "0.0.0.0:9001")]
        grpc_addr: claimgate::server::listener::ListenAddr,
        /// HTTP listen address for /metrics, /healthz, /readyz.
        #[arg(long, env = "CLAIMGATE_HTTP_ADDR", default_value = "0.0.0.0:9090")]
        http_addr: SocketAddr,
        /// Quiet time after a config change before reloading (e.g. 200ms).
        #[arg(long, env = "CLAIMGATE_RELOAD_DEBOUNCE", default_value = "200ms")]
        reload_debounce: humantime::Duration,
        /// Re-hash the config files this often as a backstop for missed events.
        #[arg(long, env = "CLAIMGATE_RELOAD_POLL", default_value = "30s")]
        reload_poll: humantime::Duration,
        /// Abandon a reload still running after this long (it counts as failed).
        #[arg(long, env = "CLAIMGATE_RELOAD_TIMEOUT", default_value = "30s")]
        reload_timeout: humantime::Duration,
        /// Refresh remote keys this often when the provider sends no Cache-Control max-age.
        #[arg(long, env = "CLAIMGATE_JWKS_REFRESH", default_value = "10m")]
        jwks_refresh: humantime::Duration,
        /// At most one unknown-kid refetch per SSO per this interval.
        #[arg(long, env = "CLAIMGATE_JWKS_REFETCH_INTERVAL", default_value = "30s")]
        jwks_refetch_interval: humantime::Duration,
        /// How long a check waits for remote keys before it is denied.
        #[arg(long, env = "CLAIMGATE_JWKS_REFETCH_WAIT", default_value = "100ms")]
        jwks_refetch_wait: humantime::Duration,
        /// How many verified tokens to remember; 0 verifies every check.
        #[arg(long, env = "CLAIMGATE_TOKEN_CACHE_ENTRIES", default_value_t = claimgate::core::token_cache::DEFAULT_ENTRIES)]
        token_cache_entries: usize,
        /// Most open connections on the gRPC port; more wait until one closes.
        #[arg(long, env = "CLAIMGATE_GRPC_MAX_CONNECTIONS", default_value_t = 4096)]
        grpc_max_connections: usize,
        /// Most open connections on the HTTP port; more wait until one closes.
        #[arg(long, env = "CLAIMGATE_HTTP_MAX_CONNECTIONS", default_value_t = 128)]
        http_max_connections: usize,
        /// Close a connection (either port) on which nothing was read or written for this long.
        #[arg(long, env = "CLAIMGATE_IDLE_TIMEOUT", default_value = "60s")]
        idle_timeout: humantime::Duration,
        /// Write one JSON line per decision to this file (`-`: stdout); reopened on SIGUSR1.
        #[arg(long, env = "CLAIMGATE_DECISION_LOG")]
        decision_log: Option<String>,
        /// The share of allows written to the decision log (0..1); denials are always written.
        #[arg(long, env = "CLAIMGATE_DECISION_LOG_ALLOW_RATE", default_value_t = 1.0, value_parser = parse_rate)]
        decision_log_allow_rate: f64,
        /// `dry_run`: let every denial of a routed request through, with x-claimgate-dry-run.
        #[arg(long, env = "CLAIMGATE_ENFORCEMENT", default_value = "enforce", value_parser = parse_enforcement)]
        enforcement: Enforcement,
        /// What an allow puts in Envoy's dynamic metadata: full (the identity fields, for
        /// the access log) or decision-id (only the id: less work for Envoy per request).
        #[arg(long, env = "CLAIMGATE_ALLOW_METADATA", default_value = "full", value_parser = parse_allow_metadata)]
        allow_metadata: claimgate::server::service::AllowMetadata,
        /// An HTTP request head must arrive in full within this (also the keep-alive wait).
        #[arg(long, env = "CLAIMGATE_HTTP_HEADER_TIMEOUT", default_value = "10s")]
        http_header_timeout: humantime::Duration,
        /// Send an HTTP/2 PING on a gRPC connection that has been quiet this long.
        #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_INTERVAL", default_value = "30s")]
        grpc_keepalive_interval: humantime::Duration,
        /// Close a gRPC connection whose PING is not answered within this.
        #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_TIMEOUT", default_value = "10s")]
        grpc_keepalive_timeout: humantime::Duration,
        /// Idle time before TCP keepalive probes start (both ports).
        #[arg(long, env = "CLAIMGATE_TCP_KEEPALIVE", default_value = "60s")]
        tcp_keepalive: humantime::Duration,
        /// A new connection's handshake (gRPC: TLS and the HTTP/2 preface; HTTP: the first
        /// byte of a request) must arrive within this, or the connection is closed.
        #[arg(long, env = "CLAIMGATE_HANDSHAKE_TIMEOUT", default_value = "5s")]
        handshake_timeout: humantime::Duration,
        /// Most concurrent checks (HTTP/2 streams) per gRPC connection.
        #[arg(
            long,
            env = "CLAIMGATE_GRPC_MAX_CONCURRENT_STREAMS",
            default_value_t = 100
        )]
        grpc_max_concurrent_streams: u32,
        /// Largest check request accepted (bytes, or with KiB/MiB); raise it when Envoy's
        /// ext_authz sends request bodies (with_request_body.max_request_bytes).
        #[arg(long, env = "CLAIMGATE_GRPC_MAX_MESSAGE_SIZE", default_value = "256KiB", value_parser = parse_size)]
        grpc_max_message_size: usize,
        /// Most checks being received or decided at once; more are refused (RESOURCE_EXHAUSTED).
        #[arg(long, env = "CLAIMGATE_MAX_IN_FLIGHT_CHECKS", default_value_t = 512)]
        max_in_flight_checks: usize,
        /// After SIGTERM, keep serving this long with /readyz 503 before draining.
        #[arg(long, env = "CLAIMGATE_SHUTDOWN_DELAY", default_value = "0s")]
        shutdown_delay: humantime::Duration,
        /// Stop waiting for in-flight checks and open connections this long into the drain.
        #[arg(long, env = "CLAIMGATE_SHUTDOWN_GRACE", default_value = "20s")]
        shutdown_grace: humantime::Duration,
        /// Serve gRPC over TLS with this certificate chain (PEM); re-read when it changes.
        #[arg(long, env = "CLAIMGATE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --tls-cert.
        #[arg(long, env = "CLAIMGATE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates chained to these CAs (PEM): mTLS.
        #[arg(long, env = "CLAIMGATE_TLS_CLIENT_CA", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// Read the TLS files again this often to pick up a rotated certificate.
        #[arg(long, env = "CLAIMGATE_TLS_RELOAD_INTERVAL", default_value = "10s")]
        tls_reload_interval: humantime::Duration,
        /// Log format: text or json (one JSON object per line, for log collectors).
        #[arg(long, env = "CLAIMGATE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Trust the development key committed in claimgate's repository (the README's demo),
        /// with a warning at start and every reload; without it such a configuration is refused.
        #[arg(long, env = "CLAIMGATE_DEV")]
        dev: bool,
    },
    /// Check a configuration directory exactly as serve would load it, and review it.
    Validate {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Output: text, github (Actions annotations) or json.
        #[arg(long, env = "CLAIMGATE_FORMAT", value_enum, default_value = "text")]
        format: OutputFormat,
        /// Fail (exit 1) on warnings too.
        #[arg(long, env = "CLAIMGATE_STRICT")]
        strict: bool,
        /// Envoy configuration (file or directory) whose context_extensions name resources;
        /// repeatable.
        #[arg(long, env = "CLAIMGATE_ENVOY_CONFIG", value_delimiter = ',')]
        envoy_config: Vec<PathBuf>,
    },
    /// Show the whole decision for one token and request, step by step.
    ///
    /// The output shows every claim of the token (subject, e-mail, groups, ...) and the
    /// configuration's identities: treat it as being as sensitive as the token's contents, and
    /// don't paste it where others can read it. The token itself and its signature are never
    /// printed.
    Explain {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// The token, or a whole Authorization value ("Bearer ..."); "-" reads it from stdin.
        /// Every claim of it is printed.
        #[arg(long, env = "CLAIMGATE_TOKEN")]
        token: String,
        /// HTTP method.
        #[arg(long, env = "CLAIMGATE_METHOD", default_value = "GET")]
        method: String,
        /// Request path, with query.
        #[arg(long, env = "CLAIMGATE_PATH", default_value = "/")]
        path: String,
        /// Host (:authority).
        #[arg(long, env = "CLAIMGATE_HOST", default_value = "")]
        host: String,
        /// Resource, as Envoy's context_extensions would name it (routes are then skipped).
        #[arg(long, env = "CLAIMGATE_RESOURCE", requires = "role")]
        resource: Option<String>,
        /// Role, as Envoy's context_extensions would name it.
        #[arg(long, env = "CLAIMGATE_ROLE", requires = "resource")]
        role: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long, env = "CLAIMGATE_JSON")]
        json: bool,
    },
    /// List every identity holding a role on a resource, and the token it takes.
    WhoCan {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Resource FQN (kind:name).
        #[arg(long, env = "CLAIMGATE_RESOURCE")]
        resource: String,
        /// Only identities holding at least this role (viewer, editor, manager).
        #[arg(long, env = "CLAIMGATE_ROLE", value_parser = parse_role)]
        role: Option<Role>,
        /// Print one JSON document instead of text.
        #[arg(long, env = "CLAIMGATE_JSON")]
        json: bool,
    },
    /// Run decision tests: each case's token and request against the expected answer.
    Test {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Test files (YAML), or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output: text or json. Its own variable: `validate`'s formats are not these.
        #[arg(
            long,
            env = "CLAIMGATE_TEST_FORMAT",
            value_enum,
            default_value = "text"
        )]
        format: TestFormat,
    },
    /// Compare the effective access of two configurations, for the review of a change.
    Diff {
        /// The configuration before the change: a directory, or git:REF for the --config
        /// directory as it is at REF in its repository.
        #[arg(long, env = "CLAIMGATE_BASE")]
        base: String,
        /// The configuration after the change.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Output: text, markdown or json. Its own variable: `validate`'s formats are not these.
        #[arg(
            long,
            env = "CLAIMGATE_DIFF_FORMAT",
            value_enum,
            default_value = "text"
        )]
        format: DiffFormat,
        /// Exit 1 when there are changes.
        #[arg(long, env = "CLAIMGATE_EXIT_CODE")]
        exit_code: bool,
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Github,
    Json,
}

fn parse_enforcement(s: &str) -> Result<Enforcement, String> {
    Enforcement::parse(s).ok_or_else(|| format!("{s:?} is not enforce or dry_run"))
}

fn parse_allow_metadata(s: &str) -> Result<claimgate::server::service::AllowMetadata, String> {
    claimgate::server::service::AllowMetadata::parse(s)
        .ok_or_else(|| format!("{s:?} is not full or decision-id"))
}

/// A size in bytes: `262144`, `256KiB` or `1MiB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let scale = match unit {
        "" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "{s:?}: the unit is KiB or MiB (or none, for bytes)"
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?} is not a size like 262144, 256KiB or 1MiB"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DiffFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TestFormat {
    Text,
    Json,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not viewer, editor or manager"))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAIMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a collector would store them as text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
            reload_timeout,
            jwks_refresh,
            jwks_refetch_interval,
            jwks_refetch_wait,
            token_cache_entries,
            grpc_max_connections,
            http_max_connections,
            idle_timeout,
            http_header_timeout,
            decision_log,
            decision_log_allow_rate,
            enforcement,
            allow_metadata,
            grpc_keepalive_interval,
            grpc_keepalive_timeout,
            tcp_keepalive,
            handshake_timeout,
            grpc_max_concurrent_streams,
            grpc_max_message_size,
            max_in_flight_checks,
            shutdown_delay,
            shutdown_grace,
            tls_cert,
            tls_key,
            tls_client_ca,
            tls_reload_interval,
            log_format,
            dev,
        } => {
            init_logging(log_format == "json");
            let opts = ServeOptions {
                config_dir: config,
                grpc_addr,
                http_addr,
                reload: ReloadOptions {
                    debounce: reload_debounce.into(),
                    poll: reload_poll.into(),
                    timeout: reload_timeout.into(),
                },
                provider: ProviderOptions {
                    refresh: jwks_refresh.into(),
                    refetch_min_interval: jwks_refetch_interval.into(),
                    refetch_wait: jwks_refetch_wait.into(),
                    ..ProviderOptions::default()
                },
                token_cache_entries,
                connections: ConnectionOptions {
                    grpc_max_connections,
                    http_max_connections,
                    idle_timeout: idle_timeout.into(),
                    http_header_timeout: http_header_timeout.into(),
                    grpc_keepalive_interval: grpc_keepalive_interval.into(),
                    grpc_keepalive_timeout: grpc_keepalive_timeout.into(),
                    tcp_keepalive: tcp_keepalive.into(),
                    handshake_timeout: handshake_timeout.into(),
                    grpc_max_concurrent_streams,
                    grpc_max_message_size,
                    max_in_flight_checks,
                    shutdown_delay: shutdown_delay.into(),
                    shutdown_grace: shutdown_grace.into(),
                },
                tls: tls_cert.zip(tls_key).map(|(cert, key)| TlsFiles {
                    cert,
                    key,
                    client_ca: tls_client_ca,
                    reload_interval: tls_reload_interval.into(),
                }),
                decision_log: decision_log.map(|sink| claimgate::server::decision_log::Options {
                    sink: claimgate::server::decision_log::Sink::parse(&sink),
                    allow_rate: decision_log_allow_rate,
                    queue: claimgate::server::decision_log::QUEUE,
                }),
                enforcement,
                allow_metadata,
                dev,
            };
            match serve(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e:#}");
                    // Refusing the development key is a usage error: the same files run with --dev.
                    let dev_key = matches!(
                        e.downcast_ref::<ServeError>(),
                        Some(ServeError::Config(ConfigError::DevKey { .. }))
                    );
                    ExitCode::from(if dev_key { 2 } else { 1 })
                }
            }
        }
        Command::Validate {
            config,
            format,
            strict,
            envoy_config,
        } => {
            let format = match format {
                OutputFormat::Text => validate::Format::Text,
                OutputFormat::Github => validate::Format::Github,
                OutputFormat::Json => validate::Format::Json,
            };
            let validation = validate::validate(&config, &envoy_config);
            print!("{}", validation.render(format));
            if validation.passes(strict) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Explain {
            config,
            token,
            method,
            path,
            host,
            resource,
            role,
            json,
        } => match explain_command(&config, &token, &method, &path, &host, resource, role, json) {
            Ok(allowed) => ExitCode::from(if allowed { 0 } else { 1 }),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::WhoCan {
            config,
            resource,
            role,
            json,
        } => match who_can_command(&config, &resource, role, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Test {
            config,
            files,
            format,
        } => match test_command(&config, &files, format) {
            Ok(passed) => ExitCode::from(if passed { 0 } else { 1 }),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Diff {
            base,
            config,
            format,
            exit_code,
        } => match diff_command(&base, &config, format) {
            Ok(changed) => ExitCode::from(if changed && exit_code { 1 } else { 0 }),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
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
