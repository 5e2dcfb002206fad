// SPDX-License-Identifier: GPL-2.0

//! The stage-1 walker of the shadow engine: the present leaves of a user's table over an IOVA
//! range, read from IOAS memory.
//!
//! The walker knows radix tables of 512 eight-byte entries per 4 KiB table page (x86-64 paging,
//! which VT-d's first stage uses, and ARM's LPAE with the 4 KiB granule); a [`Format`] tells what
//! one entry means at one level. Reads go through the caller's `read`, which reads guest
//! physical memory through the IOAS, never through an address the user gives.
//!
//! # Limits
//!
//! A walk reads at most [`Limits::tables`] table pages and yields at most [`Limits::leaves`]
//! leaves; past either it fails (`E2BIG`, `ENOSPC`) and yields nothing. A table page that
//! cannot be read (it is not mapped in the IOAS, or the IOAS refuses the read) makes the range
//! under its entry translate nothing, as a hardware walk that faults there would.

use kernel::prelude::*;

/// Bits of IOVA one table level resolves.
const LEVEL_BITS: u32 = 9;
/// Entries per table page.
const ENTRIES: usize = 1 << LEVEL_BITS;
/// Bytes per entry.
const ENTRY_BYTES: usize = 8;
/// The page size of the smallest leaf.
const PAGE_SHIFT: u32 = 12;
/// Most levels a format may have.
pub(crate) const MAX_LEVELS: u32 = 5;
/// The highest level a leaf may be at (1 GiB blocks); a format's leaf above it translates
/// nothing.
pub(crate) const MAX_LEAF_LEVEL: u32 = 2;

/// What one entry of a table says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pte {
    /// Nothing is mapped under it (not present, or a reserved encoding).
    None,
    /// The next level's table page, at this guest physical address.
    Table {
        /// Its guest physical address (4 KiB aligned).
        gpa: u64,
        /// Whether writes are allowed under it.
        write: bool,
    },
    /// A leaf: the block of the level's size at this guest physical address.
    Leaf {
        /// Its guest physical address, aligned to the block.
        gpa: u64,
        /// Whether writes are allowed.
        write: bool,
    },
}

/// A stage-1 table format.
pub(crate) trait Format: Send + Sync {
    /// Number of levels of the table (the root's level is `levels() - 1`, 4 KiB leaves are at
    /// level 0).
    fn levels(&self) -> u32;

    /// What `entry` means at `level`.
    fn decode(&self, level: u32, entry: u64) -> Pte;
}

/// A present leaf, clipped to nothing: its whole block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// First IOVA.
    pub(crate) iova: u64,
    /// Last IOVA (inclusive).
    pub(crate) last: u64,
    /// Guest physical address of the first byte.
    pub(crate) gpa: u64,
    /// Writes allowed (at every level down to the leaf).
    pub(crate) write: bool,
}

/// The bounds of one walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Table pages read.
    pub(crate) tables: u32,
    /// Leaves yielded.
    pub(crate) leaves: usize,
}

/// The size shift of an entry at `level`.
pub(crate) fn level_shift(level: u32) -> u32 {
    PAGE_SHIFT + LEVEL_BITS * level
}

/// The last IOVA a table of `levels` levels translates.
pub(crate) fn top(levels: u32) -> u64 {
    let bits = level_shift(levels);
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// One walk in progress.
struct Walk<'a> {
    format: &'a dyn Format,
    read: &'a dyn Fn(u64, &mut [u8]) -> Result,
    tables_left: u32,
    limits: Limits,
    /// One table page per level.
    buf: KVec<u8>,
    out: KVVec<Leaf>,
}

/// The present leaves of the table rooted at `root` (a guest physical address) that intersect
/// `[first, last]`, in IOVA order, each whole. `read(gpa, buf)` reads guest physical memory.
pub(crate) fn walk(
    format: &dyn Format,
    root: u64,
    first: u64,
    last: u64,
    limits: Limits,
    read: &dyn Fn(u64, &mut [u8]) -> Result,
) -> Result<KVVec<Leaf>> {
    let levels = format.levels();
    if levels == 0 || levels > MAX_LEVELS {
        return Err(EINVAL);
    }
    let last = last.min(top(levels));
    if first > last {
        return Ok(KVVec::new());
    }
    let mut buf = KVec::new();
    // CAST: at most 5 levels of 4 KiB.
    buf.resize(levels as usize * ENTRIES * ENTRY_BYTES, 0, GFP_KERNEL)?;
    let mut w = Walk {
        format,
        read,
        tables_left: limits.tables,
        limits,
        buf,
        out: KVVec::new(),
    };
    w.table(levels - 1, root, 0, first, last, true)?;
    Ok(w.out)
}

impl Walk<'_> {
    /// Walks the table page at `gpa` of `level`, which translates from `base`, over
    /// `[first, last]` (inside its span).
    fn table(
        &mut self,
        level: u32,
        gpa: u64,
        base: u64,
        first: u64,
        last: u64,
        write: bool,
    ) -> Result {
        if self.tables_left == 0 {
            return Err(E2BIG);
        }
        self.tables_left -= 1;
        let shift = level_shift(level);
        // CAST: both indices are below `ENTRIES`: `first` and `last` are inside the span of
        // this table, which has `ENTRIES` entries of `1 << shift` bytes.
        let i0 = ((first - base) >> shift) as usize;
        let i1 = ((last - base) >> shift) as usize;
        if i1 >= ENTRIES || i0 > i1 {
            return Err(EINVAL);
        }
        let off = level as usize * ENTRIES * ENTRY_BYTES;
        let bytes = (i1 - i0 + 1) * ENTRY_BYTES;
        let at = gpa.checked_add((i0 * ENTRY_BYTES) as u64).ok_or(EINVAL)?;
        {
            let part = self.buf.get_mut(off..off + bytes).ok_or(EINVAL)?;
            if (self.read)(at, part).is_err() {
                // The table page is not readable: nothing under it translates.
                return Ok(());
            }
        }
        for i in i0..=i1 {
            let b = off + (i - i0) * ENTRY_BYTES;
            let raw: [u8; ENTRY_BYTES] = self
                .buf
                .get(b..b + ENTRY_BYTES)
                .and_then(|s| s.try_into().ok())
                .ok_or(EINVAL)?;
            let entry = u64::from_le_bytes(raw);
            // CAST: `i < ENTRIES`; the entry's span lies inside the table's.
            let e_first = base + ((i as u64) << shift);
            let e_last = e_first + ((1u64 << shift) - 1);
            match self.format.decode(level, entry) {
                Pte::None => {}
                Pte::Table {
                    gpa: next,
                    write: w,
                } if level > 0 => {
                    self.table(
                        level - 1,
                        next,
                        e_first,
                        first.max(e_first),
                        last.min(e_last),
                        write && w,
                    )?;
                }
                Pte::Leaf {
                    gpa: leaf,
                    write: w,
                } if level <= MAX_LEAF_LEVEL => {
                    if self.out.len() >= self.limits.leaves {
                        return Err(ENOSPC);
                    }
                    self.out.push(
                        Leaf {
                            iova: e_first,
                            last: e_last,
                            gpa: leaf,
                            write: write && w,
                        },
                        GFP_KERNEL,
                    )?;
                }
                Pte::Table { .. } | Pte::Leaf { .. } => {}
            }
        }
        Ok(())
    }
}
