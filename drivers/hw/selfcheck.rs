// SPDX-License-Identifier: GPL-2.0

//! The log of a backend's vectors at module load (only with `CONFIG_IOMMUFD_TEST`): each
//! check is a line `iommufd_rs: <name>: ok N - what` (or `not ok`, with a detail), and a last
//! line says `PASS` or `FAIL`, which tools/vm/init turns into TAP.

use kernel::prelude::*;

/// Counts and logs the checks of one set of vectors.
pub(crate) struct Checker {
    name: &'static str,
    n: u32,
    failed: u32,
}

impl Checker {
    /// A checker whose lines start with `name`.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            n: 0,
            failed: 0,
        }
    }

    /// Records one check; `detail` is logged when it fails.
    pub(crate) fn check(&mut self, ok: bool, what: &str, detail: u64) {
        self.n += 1;
        if ok {
            pr_info!("{}: ok {} - {}\n", self.name, self.n, what);
        } else {
            self.failed += 1;
            pr_err!(
                "{}: not ok {} - {} ({:#x})\n",
                self.name,
                self.n,
                what,
                detail
            );
        }
    }

    /// Records that `r` is the error `want`.
    pub(crate) fn errno<T>(&mut self, r: Result<T>, want: Error, what: &str, detail: u64) {
        let ok = matches!(r, Err(e) if e.to_errno() == want.to_errno());
        self.check(ok, what, detail);
    }

    /// Logs the result; returns whether every check passed.
    pub(crate) fn finish(self) -> bool {
        if self.failed == 0 {
            pr_info!("{}: PASS ({} checks)\n", self.name, self.n);
        } else {
            pr_err!(
                "{}: FAIL ({} of {} checks failed)\n",
                self.name,
                self.failed,
                self.n
            );
        }
        self.failed == 0
    }
}
