//! The token cache's map, compared on the same workload: `quick_cache::sync::Cache` (what
//! claimgate uses) and `moka::sync::Cache`, keyed by a 32-byte digest with an `Arc` value of
//! the shape of the real entry. Run:
//! `cargo bench --bench token_cache -- --warm-up-time 1 --measurement-time 3`.
//!
//! - `get_hit`: a warm lookup of a present key (the warm check's cost);
//! - `insert_evict`: inserting a new key into a full cache (every first sight of a token once
//!   the cache is full);
//! - `mixed_2_threads`: two threads, each doing 9 gets of a hot set for every insert of a new
//!   key; the time is per operation of one thread, both running at once.
//!
//! Before the timings, the resident memory one full cache of 65,536 entries adds is printed
//! per entry (values included), for each crate.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use claimgate::core::token_cache::{Entry, DEFAULT_ENTRIES};
use criterion::{criterion_group, criterion_main, Criterion};

type Digest = [u8; 32];

const REST: usize =
    std::mem::size_of::<Entry>() - std::mem::size_of::<Arc<str>>() - std::mem::size_of::<Arc<()>>();

/// A value of the real entry's size: its two `Arc`s (key set, subject) and the rest as bytes.
struct Value {
    _keys: Arc<()>,
    _subject: Arc<str>,
    _rest: [u8; REST],
}

fn value(keys: &Arc<()>, i: u64) -> Arc<Value> {
    Arc::new(Value {
        _keys: keys.clone(),
        // A GitHub Actions `sub` is about this long.
        _subject: Arc::from(format!("repo:acme/api-{i:08}:ref:refs/heads/main")),
        _rest: [0; REST],
    })
}

/// A well-spread digest for `i`, as SHA-256 outputs are.
fn digest(i: u64) -> Digest {
    let mut out = [0u8; 32];
    let mut x = i;
    for chunk in out.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// The two caches behind one interface.
trait Map: Send + Sync {
    fn get(&self, k: &Digest) -> Option<Arc<Value>>;
    fn insert(&self, k: Digest, v: Arc<Value>);
    /// Finish deferred bookkeeping (moka applies evictions in batches).
    fn settle(&self) {}
}

struct Quick(quick_cache::sync::Cache<Digest, Arc<Value>>);

impl Map for Quick {
    fn get(&self, k: &Digest) -> Option<Arc<Value>> {
        self.0.get(k)
    }
    fn insert(&self, k: Digest, v: Arc<Value>) {
        self.0.insert(k, v)
    }
}

struct Moka(moka::sync::Cache<Digest, Arc<Value>>);

impl Map for Moka {
    fn get(&self, k: &Digest) -> Option<Arc<Value>> {
        self.0.get(k)
    }
    fn insert(&self, k: Digest, v: Arc<Value>) {
        self.0.insert(k, v)
    }
    fn settle(&self) {
        self.0.run_pending_tasks()
    }
}

fn quick(capacity: usize) -> Quick {
    Quick(quick_cache::sync::Cache::new(capacity))
}

fn moka(capacity: usize) -> Moka {
    Moka(moka::sync::Cache::new(capacity as u64))
}

fn filled<M: Map>(map: M, n: u64, keys: &Arc<()>) -> M {
    for i in 0..n {
        map.insert(digest(i), value(keys, i));
    }
    map.settle();
    map
}

/// Resident set size of this process, in bytes.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Memory per entry of a full cache at the default bound, both kept alive so neither reuses
/// the other's freed memory.
fn memory(keys: &Arc<()>) {
    let n = DEFAULT_ENTRIES as u64;
    let Some(r0) = rss() else {
        return;
    };
    let q = filled(quick(DEFAULT_ENTRIES), n, keys);
    let r1 = rss().unwrap_or(r0);
    let m = filled(moka(DEFAULT_ENTRIES), n, keys);
    let r2 = rss().unwrap_or(r1);
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
    println!(
        "memory at {n} entries (entry {} B + subject): quick_cache {:.0} B/entry, moka {:.0} B/entry",
        std::mem::size_of::<Entry>(),
        per(r0, r1),
        per(r1, r2)
    );
    drop((q, m));
}

fn get_hit<M: Map>(c: &mut Criterion, name: &str, map: M) {
    const HOT: u64 = 10_000;
    let digests: Vec<Digest> = (0..HOT).map(digest).collect();
    let mut i = 0usize;
    c.bench_function(&format!("token_cache/get_hit/{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % digests.len();
            black_box(map.get(black_box(&digests[i])))
        })
    });
}

fn insert_evict<M: Map>(c: &mut Criterion, name: &str, map: M, keys: &Arc<()>) {
    let next = AtomicU64::new(1 << 40);
    // Values made outside the timing: the cache's cost is what is compared.
    c.bench_function(&format!("token_cache/insert_evict/{name}"), |b| {
        b.iter_batched(
            || {
                let i = next.fetch_add(1, Ordering::Relaxed);
                (digest(i), value(keys, i))
            },
            |(k, v)| map.insert(k, v),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn mixed<M: Map>(c: &mut Criterion, name: &str, map: M, keys: &Arc<()>) {
    const HOT: u64 = 1024;
    let digests: Vec<Digest> = (0..HOT).map(digest).collect();
    let next = AtomicU64::new(1 << 41);
    c.bench_function(&format!("token_cache/mixed_2_threads/{name}"), |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(3);
            // The scope returns once both threads are joined.
            let t0 = std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (map, digests, next, start) = (&map, &digests, &next, &start);
                    let values: Vec<(Digest, Arc<Value>)> = (0..iters / 10 + 1)
                        .map(|_| {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            (digest(i), value(keys, i))
                        })
                        .collect();
                    s.spawn(move || {
                        let mut values = values.into_iter();
                        start.wait();
                        for op in 0..iters {
                            if op % 10 == 0 {
                                if let Some((k, v)) = values.next() {
                                    map.insert(k, v);
                                }
                            } else {
                                let k = &digests[((op + t * 512) % HOT) as usize];
                                black_box(map.get(k));
                            }
                        }
                    });
                }
                start.wait();
                Instant::now()
            });
            t0.elapsed()
        })
    });
}

fn bench(c: &mut Criterion) {
    let keys = Arc::new(());
    memory(&keys);

    get_hit(
        c,
        "quick_cache",
        filled(quick(DEFAULT_ENTRIES), 10_000, &keys),
    );
    get_hit(c, "moka", filled(moka(DEFAULT_ENTRIES), 10_000, &keys));

    const SMALL: usize = 4096;
    insert_evict(
        c,
        "quick_cache",
        filled(quick(SMALL), 2 * SMALL as u64, &keys),
        &keys,
    );
    insert_evict(
        c,
        "moka",
        filled(moka(SMALL), 2 * SMALL as u64, &keys),
        &keys,
    );

    mixed(c, "quick_cache", filled(quick(SMALL), 1024, &keys), &keys);
    mixed(c, "moka", filled(moka(SMALL), 1024, &keys), &keys);
}

criterion_group!(benches, bench);
criterion_main!(benches);
