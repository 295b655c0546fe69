//! The current snapshot. A check does one `load`; a reload does one `store`.
//!
//! In-flight checks keep the `Arc` they loaded, so they finish on the snapshot they started
//! with, and a check that starts after [`Store::install`] returned sees the new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::core::snapshot::Snapshot;

/// Holds the current snapshot and hands out generations.
#[derive(Debug)]
pub struct Store {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
    // Serializes installs so generations and swaps happen in the same order.
    install: Mutex<()>,
}

impl Store {
    /// A store whose first snapshot is generation 1.
    pub fn new(mut snapshot: Snapshot) -> Self {
        snapshot.generation = 1;
        Store {
            current: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(1),
            install: Mutex::new(()),
        }
    }

    /// The current snapshot, for one check.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot, to keep.
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Swap in a new snapshot; returns its generation.
    pub fn install(&self, mut snapshot: Snapshot) -> u64 {
        let _serial = self.install.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        snapshot.generation = generation;
        self.current.store(Arc::new(snapshot));
        self.generation.store(generation, Ordering::Relaxed);
        generation
    }

    /// The generation of the current snapshot.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }
}
