//! What each subcommand does once its arguments are parsed: thin calls into the library,
//! turning its results into output and exit status.

use std::path::{Path, PathBuf};

use claimgate::core::clock::unix_now;
use claimgate::core::role::Role;
use claimgate::core::snapshot::Snapshot;
use claimgate::core::{config, load};
use claimgate::server::{self, Bound, ServeOptions};
use claimgate::tools::{audit, diff, explain, suite};

use super::ExplainArgs;

pub(crate) fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let bound = Bound::bind(&opts).await?;
        bound.run(server::shutdown_signal()).await?;
        Ok(())
    });
    // Checks are drained by now; an abandoned reload may still be stuck reading a file, and
    // dropping the runtime would wait for it.
    runtime.shutdown_background();
    served
}

/// Read and compile a configuration directory; errors carry every diagnostic.
fn load(dir: &Path) -> anyhow::Result<(config::Config, Snapshot)> {
    let loaded = load::load(dir)
        .map_err(|e| anyhow::anyhow!("invalid configuration in {}:\n{e}", dir.display()))?;
    Ok((loaded.config, loaded.snapshot))
}

/// Explain one decision; `Ok(true)` when it allows.
pub(crate) fn explain_command(args: ExplainArgs) -> anyhow::Result<bool> {
    let token = if args.token == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| anyhow::anyhow!("cannot read the token from stdin: {e}"))?
    } else {
        args.token
    };
    let (cfg, snap) = load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let keys = runtime.block_on(explain::load_remote_keys(&snap, &token));
    let input = explain::Input {
        token: &token,
        method: &args.method,
        path: &args.path,
        host: &args.host,
        resource: args.resource.as_deref(),
        role: args.role.as_deref(),
        parent: args.parent.as_deref(),
    };
    let report = explain::explain(&snap, Some(&cfg), &input, unix_now(), keys);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.allowed())
}

/// Who holds a role on `resource`, or (given `identity` instead) what that identity holds.
pub(crate) fn who_can_command(
    dir: &Path,
    resource: Option<&str>,
    identity: Option<&str>,
    role: Option<Role>,
    json: bool,
) -> anyhow::Result<()> {
    let (cfg, snap) = load(dir)?;
    fn show<T: serde::Serialize + std::fmt::Display>(answer: T, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            print!("{answer}");
        }
        Ok(())
    }
    match (resource, identity) {
        (_, Some(identity)) => show(audit::held_by(&snap, Some(&cfg), identity, role)?, json),
        (Some(resource), None) => show(audit::who_can(&snap, Some(&cfg), resource, role)?, json),
        // clap requires one of the two.
        (None, None) => anyhow::bail!("give --resource or --identity"),
    }
}

/// Run decision tests; `Ok(false)` when any failed.
pub(crate) fn test_command(
    dir: &Path,
    files: &[PathBuf],
    format: suite::Format,
) -> anyhow::Result<bool> {
    let (cfg, snap) = load(dir)?;
    let cases =
        suite::read(files, &snap).map_err(|e| anyhow::anyhow!("invalid test file:\n{e}"))?;
    // A literal token is verified against the keys a running server would hold: fetch the
    // remote keys of its SSO first, as explain does. Described tokens need none.
    let literal: Vec<&str> = cases
        .iter()
        .filter_map(|c| match &c.token {
            suite::TokenInput::Literal(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    if !literal.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut fetched = Vec::new();
        for token in literal {
            let Some(load) = runtime.block_on(explain::load_remote_keys(&snap, token)) else {
                continue;
            };
            if let (Some(e), false) = (&load.error, fetched.contains(&load.sso)) {
                eprintln!(
                    "warning: the keys of SSO {} could not be fetched: {e}",
                    load.sso
                );
            }
            fetched.push(load.sso);
        }
    }
    let results = suite::run(&snap, Some(&cfg), &cases, unix_now())?;
    print!("{}", results.render(format));
    Ok(results.failed == 0)
}

/// Print the diff between two configurations; `Ok(true)` when anything changed.
pub(crate) fn diff_command(
    base: &str,
    new_dir: &Path,
    format: diff::Format,
) -> anyhow::Result<bool> {
    // The temporary checkout of a git base lives until the diff is made.
    let (base_dir, shown, _checkout) = match base.strip_prefix("git:") {
        Some(rev) => {
            let (tmp, dir) = diff::checkout(new_dir, rev)?;
            (
                tmp.path().to_path_buf(),
                format!("git:{rev}, {dir}"),
                Some(tmp),
            )
        }
        None => (PathBuf::from(base), base.to_owned(), None),
    };
    // Two configurations are two independent loads: run them side by side.
    let (base, new) = std::thread::scope(|s| {
        let base = s.spawn(|| diff::load_side(diff::Side::Base, &base_dir, &shown));
        let new = diff::load_side(diff::Side::New, new_dir, &new_dir.display().to_string());
        (base.join(), new)
    });
    let base = base.map_err(|_| anyhow::anyhow!("loading the base configuration failed"))??;
    let new = new?;
    let changes = diff::diff(&base, &new);
    print!("{}", changes.render(format));
    for note in changes
        .notes
        .iter()
        .filter(|_| matches!(format, diff::Format::Json))
    {
        eprintln!("note: {note}");
    }
    Ok(!changes.is_empty())
}
