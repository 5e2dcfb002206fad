// SPDX-License-Identifier: GPL-2.0

//! Module-wide counters of what the module holds, for tests that check that every object is
//! freed and every page unpinned once user space has closed its files.
//!
//! Shown in debugfs as `iommufd_rs/stats`.

use core::fmt;
use kernel::sync::atomic::{
    Atomic,
    Relaxed, //
};

/// Objects alive, in any context.
static OBJECTS: Atomic<i64> = Atomic::new(0);
/// User pages pinned.
static PINNED_PAGES: Atomic<i64> = Atomic::new(0);
/// vEVENTs queued and not read.
static VEVENTS: Atomic<i64> = Atomic::new(0);
/// IO page fault groups FAULT objects hold (queued, or read and not answered).
static FAULTS: Atomic<i64> = Atomic::new(0);

/// Counts an object created (`1`) or freed (`-1`).
pub(crate) fn objects_add(n: i64) {
    OBJECTS.fetch_add(n, Relaxed);
}

/// Counts `n` pages pinned (negative: unpinned).
pub(crate) fn pinned_add(n: i64) {
    PINNED_PAGES.fetch_add(n, Relaxed);
}

/// Counts `n` vEVENTs queued (negative: read or dropped).
pub(crate) fn vevents_add(n: i64) {
    VEVENTS.fetch_add(n, Relaxed);
}

/// Counts `n` fault groups taken by FAULT objects (negative: answered).
pub(crate) fn faults_add(n: i64) {
    FAULTS.fetch_add(n, Relaxed);
}

/// The debugfs view of the counters.
pub(crate) struct Stats;

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "objects {}\npinned_pages {}\nvevents {}\nfaults {}",
            OBJECTS.load(Relaxed),
            PINNED_PAGES.load(Relaxed),
            VEVENTS.load(Relaxed),
            FAULTS.load(Relaxed)
        )
    }
}
