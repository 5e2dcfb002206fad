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

/// The iommufd command names by `nr - IOMMUFD_CMD_BASE`, as in the uAPI's `IOMMUFD_CMD_*`.
const IOCTL_NAMES: [&str; 22] = [
    "DESTROY",
    "IOAS_ALLOC",
    "IOAS_ALLOW_IOVAS",
    "IOAS_COPY",
    "IOAS_IOVA_RANGES",
    "IOAS_MAP",
    "IOAS_UNMAP",
    "OPTION",
    "VFIO_IOAS",
    "HWPT_ALLOC",
    "GET_HW_INFO",
    "HWPT_SET_DIRTY_TRACKING",
    "HWPT_GET_DIRTY_BITMAP",
    "HWPT_INVALIDATE",
    "FAULT_QUEUE_ALLOC",
    "IOAS_MAP_FILE",
    "VIOMMU_ALLOC",
    "VDEVICE_ALLOC",
    "IOAS_CHANGE_PROCESS",
    "VEVENTQ_ALLOC",
    "HW_QUEUE_ALLOC",
    "IOAS_NOIOMMU_GET_PA",
];
/// The first command number of the table.
const IOCTL_BASE: u32 = 0x80;
/// Slots after the table: `IOMMU_TEST_CMD`, then every other number (the VFIO compat ioctls).
const IOCTL_TEST: usize = IOCTL_NAMES.len();
const IOCTL_OTHER: usize = IOCTL_NAMES.len() + 1;
const IOCTL_SLOTS: usize = IOCTL_NAMES.len() + 2;

/// ioctls on `/dev/iommu` files since the module loaded, by command.
static IOCTL_CALLS: [Atomic<i64>; IOCTL_SLOTS] = [const { Atomic::new(0) }; IOCTL_SLOTS];
/// Of those, the ones that returned an error.
static IOCTL_ERRORS: [Atomic<i64>; IOCTL_SLOTS] = [const { Atomic::new(0) }; IOCTL_SLOTS];

/// Counts one ioctl with command number `nr` (`_IOC_NR`), failed or not.
pub(crate) fn ioctl_count(nr: u32, test_nr: u32, failed: bool) {
    let slot = match nr.checked_sub(IOCTL_BASE) {
        Some(i) if (i as usize) < IOCTL_NAMES.len() => i as usize,
        _ if nr == test_nr => IOCTL_TEST,
        _ => IOCTL_OTHER,
    };
    IOCTL_CALLS[slot].fetch_add(1, Relaxed);
    if failed {
        IOCTL_ERRORS[slot].fetch_add(1, Relaxed);
    }
}

/// The debugfs view `iommufd_rs/ioctls`: one line per command issued at least once,
/// `NAME CALLS FAILED`.
pub(crate) struct Ioctls;

impl fmt::Debug for Ioctls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for slot in 0..IOCTL_SLOTS {
            let calls = IOCTL_CALLS[slot].load(Relaxed);
            if calls == 0 {
                continue;
            }
            let name = match slot {
                IOCTL_TEST => "TEST_CMD",
                IOCTL_OTHER => "VFIO_COMPAT",
                _ => IOCTL_NAMES[slot],
            };
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{} {} {}", name, calls, IOCTL_ERRORS[slot].load(Relaxed))?;
        }
        Ok(())
    }
}
