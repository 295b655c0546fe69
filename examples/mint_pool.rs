//! Mint a pool of distinct valid tokens for the cold case of `scripts/load.sh`: one token per
//! line, each with its own `sub`, so that every check of a round-robin over the pool is the
//! first sight of its token (a token cache miss).
//!
//! The tokens are what `claimgate token` mints for the example configuration (`config/`):
//! RS256 with the committed development key, `repository=acme/api`. Minting runs on every core,
//! since an RSA signature costs about a millisecond and the pool is tens of thousands.
//!
//! ```sh
//! cargo run --release --example mint_pool -- 20000 pool.txt [TTL_SECONDS]
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use claimgate::tools::mint::{mint, MintOptions};

const KEY: &str = "config/keys/dev-only-private-key.pem";

fn main() -> anyhow::Result<()> {
    let usage = "usage: mint_pool COUNT OUT [TTL_SECONDS]";
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().context(usage)?.parse().context(usage)?;
    let out = PathBuf::from(args.next().context(usage)?);
    let ttl: u64 = match args.next() {
        Some(s) => s.parse().context(usage)?,
        None => 7200,
    };
    let key_pem = std::fs::read(KEY).with_context(|| format!("cannot read {KEY}"))?;
    let base = MintOptions {
        key_pem,
        alg: None,
        issuer: "https://dev-idp.claimgate.local".into(),
        audience: "claimgate".into(),
        subject: String::new(),
        kid: Some("dev-rsa-1".into()),
        claims: vec!["repository=acme/api".into()],
        ttl: Duration::from_secs(ttl),
    };

    let workers = thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(workers).max(1);
    let tokens = thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let base = &base;
                s.spawn(move || {
                    (start..(start + chunk).min(count))
                        .map(|i| {
                            let opts = MintOptions {
                                subject: format!("pool-{i}"),
                                ..base.clone()
                            };
                            mint(&opts)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a minting thread panicked"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;

    let mut w = BufWriter::new(
        File::create(&out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    for batch in tokens {
        for token in batch? {
            writeln!(w, "{token}")?;
        }
    }
    w.flush()?;
    Ok(())
}
