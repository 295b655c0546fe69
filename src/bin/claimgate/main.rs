//! The `claimgate` binary: parses the command line and calls the library.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claimgate::core::config::ConfigError;
use claimgate::core::keys::Alg;
use claimgate::core::role::Role;
use claimgate::server::{ServeArgs, ServeError};
use claimgate::tools::bundle::{self, BundleOptions};
use claimgate::tools::mint::{self, MintOptions};
use claimgate::tools::{diff, suite, validate};

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
        /// Every flag of the server, owned by the module it configures.
        #[command(flatten)]
        args: ServeArgs,
        /// Log format: text or json (one JSON object per line, for log collectors).
        #[arg(long, env = "CLAIMGATE_LOG_FORMAT", value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Check a configuration directory exactly as serve would load it, and review it.
    Validate {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Output: text, github (Actions annotations) or json.
        #[arg(long, env = "CLAIMGATE_FORMAT", value_enum, default_value = "text")]
        format: validate::Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long, env = "CLAIMGATE_STRICT")]
        strict: bool,
        /// Envoy configuration (file or directory) whose context_extensions name resources;
        /// repeatable.
        #[arg(long, env = "CLAIMGATE_ENVOY_CONFIG", value_delimiter = ',')]
        envoy_config: Vec<PathBuf>,
    },
    /// Write a configuration directory, checked as serve would load it, as the proxy-wasm
    /// filter's configuration: one JSON document with the key files inlined.
    Bundle {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Write the bundle here, replacing the file atomically (default: standard output).
        #[arg(long, env = "CLAIMGATE_OUT")]
        out: Option<PathBuf>,
        /// Trust the development key committed in claimgate's repository, as serve --dev.
        #[arg(long, env = "CLAIMGATE_DEV")]
        dev: bool,
    },
    /// Show the whole decision for one token and request, step by step.
    ///
    /// The output shows every claim of the token (subject, e-mail, groups, ...) and the
    /// configuration's identities: treat it as being as sensitive as the token's contents, and
    /// don't paste it where others can read it. The token itself and its signature are never
    /// printed.
    Explain(ExplainArgs),
    /// List every identity holding a role on a resource, and the token it takes; or, with
    /// --identity, every resource one identity holds a role on.
    WhoCan {
        /// Configuration directory.
        #[arg(long, env = "CLAIMGATE_CONFIG")]
        config: PathBuf,
        /// Resource FQN (kind:name).
        #[arg(
            long,
            env = "CLAIMGATE_RESOURCE",
            required_unless_present = "identity",
            conflicts_with = "identity"
        )]
        resource: Option<String>,
        /// An external identity: list the resources it holds a role on instead.
        #[arg(long, env = "CLAIMGATE_IDENTITY")]
        identity: Option<String>,
        /// Only identities holding at least this role (viewer, editor, manager).
        #[arg(long, env = "CLAIMGATE_ROLE")]
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
        format: suite::Format,
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
        format: diff::Format,
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
        alg: Option<Alg>,
    },
}

/// What `explain` decides about: the token, the request, and how to print it.
#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    /// Configuration directory.
    #[arg(long, env = "CLAIMGATE_CONFIG")]
    pub(crate) config: PathBuf,
    /// The token, or a whole Authorization value ("Bearer ..."); "-" reads it from stdin.
    /// Every claim of it is printed.
    #[arg(long, env = "CLAIMGATE_TOKEN")]
    pub(crate) token: String,
    /// HTTP method.
    #[arg(long, env = "CLAIMGATE_METHOD", default_value = "GET")]
    pub(crate) method: String,
    /// Request path, with query.
    #[arg(long, env = "CLAIMGATE_PATH", default_value = "/")]
    pub(crate) path: String,
    /// Host (:authority).
    #[arg(long, env = "CLAIMGATE_HOST", default_value = "")]
    pub(crate) host: String,
    /// Resource, as Envoy's context_extensions would name it (routes are then skipped).
    #[arg(long, env = "CLAIMGATE_RESOURCE", requires = "role")]
    pub(crate) resource: Option<String>,
    /// Role, as Envoy's context_extensions would name it.
    #[arg(long, env = "CLAIMGATE_ROLE", requires = "resource")]
    pub(crate) role: Option<String>,
    /// Parent of the resource, as Envoy's context_extensions would name it (for a resource
    /// that is not declared).
    #[arg(long, env = "CLAIMGATE_PARENT", requires = "resource")]
    pub(crate) parent: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long, env = "CLAIMGATE_JSON")]
    pub(crate) json: bool,
}

/// How the server writes its log lines.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAIMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a collector would store them as text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A tool's exit status; its error (a bad configuration or input) is a usage error: 2.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { args, log_format } => {
            init_logging(log_format);
            match serve(args.options()) {
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
            let validation = validate::validate(&config, &envoy_config);
            print!("{}", validation.render(format));
            if validation.passes(strict) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Bundle { config, out, dev } => {
            let written =
                bundle::bundle(&BundleOptions { dir: config, dev }).and_then(|b| match &out {
                    Some(path) => bundle::write(&b, path),
                    None => {
                        println!("{}", b.to_json());
                        Ok(())
                    }
                });
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // The bundle itself may be on standard output: the refusal goes apart.
                    eprint!("{e}");
                    if !e.to_string().ends_with('\n') {
                        eprintln!();
                    }
                    ExitCode::from(1)
                }
            }
        }
        Command::Explain(args) => {
            finish(explain_command(args).map(|allowed| ExitCode::from(u8::from(!allowed))))
        }
        Command::WhoCan {
            config,
            resource,
            identity,
            role,
            json,
        } => finish(
            who_can_command(
                &config,
                resource.as_deref(),
                identity.as_deref(),
                role,
                json,
            )
            .map(|()| ExitCode::SUCCESS),
        ),
        Command::Test {
            config,
            files,
            format,
        } => finish(
            test_command(&config, &files, format).map(|passed| ExitCode::from(u8::from(!passed))),
        ),
        Command::Diff {
            base,
            config,
            format,
            exit_code,
        } => finish(
            diff_command(&base, &config, format)
                .map(|changed| ExitCode::from(u8::from(changed && exit_code))),
        ),
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
            finish(result.map(|token| {
                println!("{token}");
                ExitCode::SUCCESS
            }))
        }
    }
}
