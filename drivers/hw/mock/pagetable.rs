// SPDX-License-Identifier: GPL-2.0

//! The mock IOMMU's page table: three levels of 512 slots over 2 KiB pages, so 38 bits of IOVA,
//! the shape of the C mock's table.
//!
//! A mapping of any power-of-two size from 2 KiB up is one entry. It sits at the deepest level
//! whose slots are not larger than it, in as many consecutive slots as it spans there (fewer
//! than a slot of the level above covers). Each of those slots holds the entry's physical
//! address and size; the first one also its dirty bit. Tables are allocated when a mapping
//! needs them, before the caller takes its lock (see [`PageTable::map`]). A table is freed when
//! an unmap that covers all of its IOVAs empties it, or with the page table; one that part of an
//! unmap emptied stays for the next map beside it. So a map or unmap of pages where pages have
//! been mapped before allocates nothing, as with the C mock's generic page table.

use kernel::{
    alloc::Flags,
    io::PhysAddr,
    prelude::*, //
};

/// Slots per table.
const SLOTS: usize = 512;
/// Bits of IOVA one level resolves.
const LEVEL_BITS: u32 = 9;
/// The leaves' page size, 2 KiB.
const PAGE_SHIFT: u32 = 11;
/// Levels below the root's (the root is level 2, the leaves' level 0).
const ROOT_LEVEL: usize = 2;
/// Bits of IOVA the table translates.
pub(crate) const VA_BITS: u32 = PAGE_SHIFT + LEVEL_BITS * (ROOT_LEVEL as u32 + 1);

/// The IOVA bits of one slot at `level`.
const fn slot_shift(level: usize) -> u32 {
    // CAST: `level` is at most `ROOT_LEVEL`.
    PAGE_SHIFT + LEVEL_BITS * level as u32
}

/// The index of the slot at `level` that `iova` falls in.
fn index(iova: usize, level: usize) -> usize {
    (iova >> slot_shift(level)) & (SLOTS - 1)
}

/// One mapping, as the page table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its first IOVA.
    pub(crate) iova: usize,
    /// Its first physical address.
    pub(crate) paddr: PhysAddr,
    /// Its size.
    pub(crate) size: usize,
    /// Its dirty bit.
    pub(crate) dirty: bool,
}

/// A slot's leaf: the entry's physical address (aligned to at least 2 KiB), its size as a
/// power of two (bits 5:0) and, in the entry's first slot, the dirty bit (bit 6).
#[derive(Clone, Copy)]
struct Leaf(u64);

impl Leaf {
    const DIRTY: u64 = 1 << 6;

    fn new(paddr: PhysAddr, log2: u32) -> Self {
        Self((paddr & !((1 << PAGE_SHIFT) - 1)) | u64::from(log2 & 0x3f))
    }

    fn size(self) -> usize {
        1usize << (self.0 & 0x3f)
    }

    fn paddr(self) -> PhysAddr {
        self.0 & !((1 << PAGE_SHIFT) - 1)
    }

    fn dirty(self) -> bool {
        self.0 & Self::DIRTY != 0
    }

    fn set_dirty(&mut self, dirty: bool) {
        if dirty {
            self.0 |= Self::DIRTY;
        } else {
            self.0 &= !Self::DIRTY;
        }
    }
}

/// One slot of a table.
enum Slot {
    Empty,
    Leaf(Leaf),
    Next(KBox<Table>),
}

/// A table of [`SLOTS`] slots: one allocation of 8 KiB (a slab object, not pages), as a page of
/// a hardware table. It keeps no count of its used slots: only a covering unmap asks whether
/// it is empty ([`strip`]), and the walks look at the slots of their range anyway.
pub(crate) struct Table {
    slots: [Slot; SLOTS],
}

// A table is at most the largest slab object (8 KiB); larger ones are page allocations.
const _: () = assert!(core::mem::size_of::<Table>() <= 8192);

impl Table {
    /// An empty table, initialised in place.
    pub(crate) fn new(flags: Flags) -> Result<KBox<Self>> {
        KBox::init(
            init!(Self {
                slots <- pin_init::init_array_from_fn(|_| Slot::Empty),
            }),
            flags,
        )
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// Whether no slot is used.
    fn is_empty(&self) -> bool {
        self.slots.iter().all(|slot| matches!(slot, Slot::Empty))
    }
}

/// The level an entry of `2^log2` bytes sits at, and how many of its slots it takes.
fn placement(log2: u32) -> (usize, usize) {
    let mut level = 0;
    while level < ROOT_LEVEL && log2 >= slot_shift(level + 1) {
        level += 1;
    }
    (level, 1 << (log2 - slot_shift(level)))
}

/// The tables a map may take (allocated before the page table's lock is taken): a few in
/// place, which is what a map of up to a few megabytes needs, the rest in a vector.
pub(crate) struct TablePool {
    few: [Option<KBox<Table>>; POOL_INLINE],
    more: KVec<KBox<Table>>,
}

/// The tables a [`TablePool`] holds without allocating.
const POOL_INLINE: usize = 4;

impl TablePool {
    /// An empty pool.
    pub(crate) fn new() -> Self {
        Self {
            few: [const { None }; POOL_INLINE],
            more: KVec::new(),
        }
    }

    /// How many tables the pool holds.
    pub(crate) fn len(&self) -> usize {
        self.few.iter().filter(|t| t.is_some()).count() + self.more.len()
    }

    /// Makes room for `n` tables in all (room in place first).
    pub(crate) fn reserve(&mut self, n: usize, flags: Flags) -> Result {
        let more = n.saturating_sub(POOL_INLINE);
        if more > self.more.len() {
            self.more.reserve(more - self.more.len(), flags)?;
        }
        Ok(())
    }

    /// Adds a table.
    pub(crate) fn push(&mut self, table: KBox<Table>, flags: Flags) -> Result {
        match self.few.iter_mut().find(|t| t.is_none()) {
            Some(slot) => *slot = Some(table),
            None => self.more.push(table, flags)?,
        }
        Ok(())
    }

    /// Takes a table out.
    fn pop(&mut self) -> Option<KBox<Table>> {
        self.more
            .pop()
            .or_else(|| self.few.iter_mut().find_map(Option::take))
    }
}

/// What [`PageTable::map`] did.
pub(crate) enum Mapped {
    /// The entries are in.
    Done,
    /// Nothing changed: the map needs this many new tables.
    NeedTables(usize),
}

/// The page table of a mock domain.
pub(crate) struct PageTable {
    root: KBox<Table>,
}

impl PageTable {
    /// An empty page table.
    pub(crate) fn new(flags: Flags) -> Result<Self> {
        Ok(Self {
            root: Table::new(flags)?,
        })
    }

    /// The entry that contains `iova`.
    pub(crate) fn lookup(&self, iova: usize) -> Option<Entry> {
        if iova >> VA_BITS != 0 {
            return None;
        }
        let mut table = &*self.root;
        let mut level = ROOT_LEVEL;
        loop {
            match table.slot(index(iova, level))? {
                Slot::Empty => return None,
                Slot::Next(next) => {
                    table = &**next;
                    level = level.checked_sub(1)?;
                }
                Slot::Leaf(leaf) => {
                    let size = leaf.size();
                    let head = iova & !(size - 1);
                    let dirty = match table.slot(index(head, level)) {
                        Some(Slot::Leaf(first)) => first.dirty(),
                        _ => false,
                    };
                    return Some(Entry {
                        iova: head,
                        paddr: leaf.paddr(),
                        size,
                        dirty,
                    });
                }
            }
        }
    }

    /// Whether anything is mapped in `[first, last]`.
    fn any_in(&self, first: usize, last: usize) -> bool {
        any_in(&self.root, ROOT_LEVEL, 0, first, last)
    }

    /// How many tables a map of `count` entries of `pgsize` bytes at `iova` needs that do not
    /// exist yet.
    fn tables_needed(&self, iova: usize, pgsize: usize, count: usize) -> usize {
        let (level, _) = placement(pgsize.trailing_zeros());
        let Some(last) = pgsize
            .checked_mul(count)
            .and_then(|size| iova.checked_add(size - 1))
        else {
            return 0;
        };
        needed(&self.root, ROOT_LEVEL, 0, iova, last, level)
    }

    /// Maps `count` entries of `pgsize` bytes (a power of two of at least 2 KiB) from `iova` to
    /// `paddr`, both aligned to `pgsize`, within [`VA_BITS`], with tables from `pool`.
    ///
    /// `EADDRINUSE` if anything is mapped there. If `pool` holds fewer tables than the map
    /// needs, nothing changes and the answer is [`Mapped::NeedTables`]: the caller allocates
    /// them without its lock and tries again.
    pub(crate) fn map(
        &mut self,
        iova: usize,
        paddr: PhysAddr,
        pgsize: usize,
        count: usize,
        pool: &mut TablePool,
    ) -> Result<Mapped> {
        let size = pgsize.checked_mul(count).ok_or(EOVERFLOW)?;
        if size == 0 {
            return Ok(Mapped::Done);
        }
        let last = iova.checked_add(size - 1).ok_or(EOVERFLOW)?;
        if !pgsize.is_power_of_two()
            || pgsize < 1 << PAGE_SHIFT
            || iova & (pgsize - 1) != 0
            || last >> VA_BITS != 0
        {
            return Err(EINVAL);
        }
        let log2 = pgsize.trailing_zeros();
        let (level, slots) = placement(log2);
        // The common case needs no search of the range: the entries fall in one table that
        // exists, in slots that are all empty (none holds a table, and no larger entry above
        // covers them, or the descent would not have reached the table).
        let fits = find(&self.root, ROOT_LEVEL, iova, level).is_some_and(|table| {
            let first = index(iova, level);
            let end = count.checked_mul(slots).and_then(|n| n.checked_add(first));
            end.and_then(|end| table.slots.get(first..end))
                .is_some_and(|range| range.iter().all(|slot| matches!(slot, Slot::Empty)))
        });
        if !fits {
            if self.any_in(iova, last) {
                return Err(EADDRINUSE);
            }
            let need = self.tables_needed(iova, pgsize, count);
            if need > pool.len() {
                return Ok(Mapped::NeedTables(need));
            }
        }
        // One descent per table: the entries that fall in it are written in a row.
        let mut i = 0;
        while i < count {
            let table = descend(&mut self.root, ROOT_LEVEL, iova + i * pgsize, level, pool)?;
            let mut s = index(iova + i * pgsize, level);
            // Entries are aligned to their size, so one never straddles two tables.
            while i < count && s + slots <= SLOTS {
                // CAST: `usize` fits in `PhysAddr` (`u64`) on every architecture.
                let leaf = Leaf::new(paddr + (i * pgsize) as u64, log2);
                for slot in table.slots.get_mut(s..s + slots).ok_or(EINVAL)? {
                    *slot = Slot::Leaf(leaf);
                }
                s += slots;
                i += 1;
            }
        }
        Ok(Mapped::Done)
    }

    /// Unmaps whole entries from `iova` on, up to `size` bytes: it stops at a hole or inside an
    /// entry, and an entry that reaches past the end goes whole (and counts). Returns the bytes
    /// unmapped. Tables left empty are freed where the unmap covers them whole (see
    /// [`remove`]).
    pub(crate) fn unmap(&mut self, iova: usize, size: usize) -> usize {
        if size == 0 || iova >> VA_BITS != 0 {
            return 0;
        }
        let mut walk = Unmap {
            first: iova,
            at: iova,
            end: iova.saturating_add(size),
            unmapped: 0,
        };
        strip(&mut self.root, ROOT_LEVEL, 0, &mut walk);
        walk.unmapped
    }

    /// Sets the dirty bit of the entry that contains `iova`; false if nothing is mapped there.
    pub(crate) fn set_dirty(&mut self, iova: usize) -> bool {
        let Some(e) = self.lookup(iova) else {
            return false;
        };
        match first_leaf_mut(&mut self.root, ROOT_LEVEL, e.iova) {
            Some(leaf) => {
                leaf.set_dirty(true);
                true
            }
            None => false,
        }
    }

    /// Calls `f` with each entry whose first IOVA is in `[first, last]`, in order, with its
    /// dirty bit to change, until `f` returns false.
    pub(crate) fn for_each_mut(
        &mut self,
        first: usize,
        last: usize,
        f: &mut dyn FnMut(Entry, &mut bool) -> bool,
    ) {
        let last = last.min((1 << VA_BITS) - 1);
        if first <= last {
            visit(&mut self.root, ROOT_LEVEL, 0, first, last, f);
        }
    }
}

/// Whether anything in `table` (at `level`, covering IOVAs from `base`) is in `[first, last]`.
fn any_in(table: &Table, level: usize, base: usize, first: usize, last: usize) -> bool {
    let shift = slot_shift(level);
    let (lo, hi) = span_in(base, level, first, last);
    for i in lo..=hi {
        match table.slot(i) {
            Some(Slot::Leaf(_)) => return true,
            Some(Slot::Next(next)) if level > 0 => {
                let b = base + (i << shift);
                if any_in(
                    next,
                    level - 1,
                    b,
                    first.max(b),
                    last.min(b + (1 << shift) - 1),
                ) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The first and last slot index of `table` (at `level`, from `base`) in `[first, last]`,
/// which must intersect the table's span.
fn span_in(base: usize, level: usize, first: usize, last: usize) -> (usize, usize) {
    let shift = slot_shift(level);
    let lo = first.max(base).saturating_sub(base) >> shift;
    let hi = (last.saturating_sub(base) >> shift).min(SLOTS - 1);
    (lo, hi)
}

/// Tables missing under `table` (at `level`, from `base`) for entries at `target` covering
/// `[first, last]`.
fn needed(
    table: &Table,
    level: usize,
    base: usize,
    first: usize,
    last: usize,
    target: usize,
) -> usize {
    if level == target {
        return 0;
    }
    let shift = slot_shift(level);
    let (lo, hi) = span_in(base, level, first, last);
    let mut n = 0;
    for i in lo..=hi {
        let b = base + (i << shift);
        let (f, l) = (first.max(b), last.min(b + (1 << shift) - 1));
        match table.slot(i) {
            Some(Slot::Next(next)) => n += needed(next, level - 1, b, f, l, target),
            // Every table below this slot is missing: one per slot of each level down to
            // `target` that the range touches.
            _ => {
                n += 1;
                let mut lv = level - 1;
                while lv > target {
                    n += ((l >> slot_shift(lv)) - (f >> slot_shift(lv))) + 1;
                    lv -= 1;
                }
            }
        }
    }
    n
}

/// The table at `target` that holds `iova`, if the tables down to it exist.
fn find(table: &Table, level: usize, iova: usize, target: usize) -> Option<&Table> {
    if level == target {
        return Some(table);
    }
    match table.slots.get(index(iova, level))? {
        Slot::Next(next) if level > 0 => find(next, level - 1, iova, target),
        _ => None,
    }
}

/// The table at `target` that holds `iova`, made from `pool` where missing.
fn descend<'a>(
    table: &'a mut Table,
    level: usize,
    iova: usize,
    target: usize,
    pool: &mut TablePool,
) -> Result<&'a mut Table> {
    if level == target {
        return Ok(table);
    }
    let i = index(iova, level);
    let slot = table.slots.get_mut(i).ok_or(EINVAL)?;
    if matches!(slot, Slot::Empty) {
        *slot = Slot::Next(pool.pop().ok_or(ENOMEM)?);
    }
    match table.slots.get_mut(i) {
        Some(Slot::Next(next)) => descend(next, level - 1, iova, target, pool),
        _ => Err(EADDRINUSE),
    }
}

/// An unmap in progress ([`PageTable::unmap`]).
struct Unmap {
    /// Where it started.
    first: usize,
    /// The next IOVA to unmap.
    at: usize,
    /// Where it ends.
    end: usize,
    /// The bytes unmapped so far.
    unmapped: usize,
}

/// Removes the entries under `table` (at `level`, covering IOVAs from `base`) from `walk.at`
/// on, in order, while one starts there and `walk.at` is before `walk.end`. A table the removal
/// leaves empty is freed when the unmap covers all of its IOVAs, as the C mock's generic page
/// table frees them: a table that only a part of an unmap emptied stays for the next map beside
/// it, so that a map and unmap of pages in a region that has been mapped allocates nothing.
/// Returns false where the unmap stops (a hole, or the middle of an entry), true where it
/// goes on past the table.
fn strip(table: &mut Table, level: usize, base: usize, walk: &mut Unmap) -> bool {
    let shift = slot_shift(level);
    let mut i = index(walk.at, level);
    while i < SLOTS && walk.at < walk.end {
        let Some(slot) = table.slots.get_mut(i) else {
            return false;
        };
        match slot {
            Slot::Empty => return false,
            Slot::Leaf(leaf) => {
                let size = leaf.size();
                if walk.at & (size - 1) != 0 {
                    // Inside an entry.
                    return false;
                }
                let (_, slots) = placement(size.trailing_zeros());
                for s in table.slots.iter_mut().skip(i).take(slots) {
                    *s = Slot::Empty;
                }
                walk.unmapped += size;
                // An entry reaching past the end goes whole.
                walk.at = match walk.at.checked_add(size) {
                    Some(next) => next,
                    None => return false,
                };
                i += slots;
            }
            Slot::Next(next) => {
                let b = base + (i << shift);
                let goes_on = level > 0 && strip(next, level - 1, b, walk);
                // Covered: the unmap took everything from before the table to past its end.
                let covered = walk.first <= b && b + ((1 << shift) - 1) < walk.at;
                if covered && next.is_empty() {
                    *slot = Slot::Empty;
                }
                if !goes_on {
                    return false;
                }
                i += 1;
            }
        }
    }
    walk.at < walk.end || i >= SLOTS
}

/// The first slot of the entry at `iova` (its first IOVA).
fn first_leaf_mut(table: &mut Table, level: usize, iova: usize) -> Option<&mut Leaf> {
    match table.slots.get_mut(index(iova, level))? {
        Slot::Next(next) if level > 0 => first_leaf_mut(next, level - 1, iova),
        Slot::Leaf(leaf) => Some(leaf),
        _ => None,
    }
}

/// See [`PageTable::for_each_mut`]; returns false once `f` did.
fn visit(
    table: &mut Table,
    level: usize,
    base: usize,
    first: usize,
    last: usize,
    f: &mut dyn FnMut(Entry, &mut bool) -> bool,
) -> bool {
    let shift = slot_shift(level);
    let (lo, hi) = span_in(base, level, first, last);
    for i in lo..=hi {
        let b = base + (i << shift);
        match table.slots.get_mut(i) {
            Some(Slot::Next(next)) if level > 0 => {
                if !visit(
                    next,
                    level - 1,
                    b,
                    first.max(b),
                    last.min(b + (1 << shift) - 1),
                    f,
                ) {
                    return false;
                }
            }
            Some(Slot::Leaf(leaf)) => {
                let size = leaf.size();
                // Only an entry's first slot, and only if the entry starts in the range.
                if b & (size - 1) != 0 || b < first {
                    continue;
                }
                let mut dirty = leaf.dirty();
                let e = Entry {
                    iova: b,
                    paddr: leaf.paddr(),
                    size,
                    dirty,
                };
                let go_on = f(e, &mut dirty);
                leaf.set_dirty(dirty);
                if !go_on {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}
