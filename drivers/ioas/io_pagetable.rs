// SPDX-License-Identifier: GPL-2.0

//! The I/O page table of an IOAS: its areas, the IOVA ranges user space allowed and the ranges
//! devices reserved, and the iommu domains that mirror it.
//!
//! Every area is present in every attached domain: a new domain is filled with all areas, a new
//! area is mapped into all domains, and removing either unmaps it everywhere. A failure part way
//! undoes what was done. Areas are mapped into domains only while the pages behind them are
//! pinned; the area holds one use of its pages for all domains together.

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex, //
    }, //
};

use crate::{
    inline_vec::InlineVec,
    ioas::pages::Pages, //
};

/// `IOMMU_READ`.
pub(crate) const PROT_READ: u32 = 1 << 0;
/// `IOMMU_WRITE`.
pub(crate) const PROT_WRITE: u32 = 1 << 1;
/// `IOMMU_CACHE`.
pub(crate) const PROT_CACHE: u32 = 1 << 2;
/// `IOMMU_MMIO`: dma-buf memory is mapped as MMIO, without `IOMMU_CACHE`.
const PROT_MMIO: u32 = 1 << 4;

/// Largest IOVA alignment chosen for kernel-allocated IOVAs: the huge page size where
/// transparent huge pages exist (2 MiB on both supported architectures), else `PAGE_SIZE`.
const MAX_AUTO_ALIGNMENT: u64 = 2 * 1024 * 1024;

/// An iommu domain as the I/O page table sees it.
pub(crate) trait IoptDomain: Send + Sync {
    /// Maps `size` bytes at `iova` to `phys`.
    fn map(&self, iova: u64, phys: u64, size: u64, prot: u32) -> Result;
    /// Unmaps `size` bytes at `iova`, returning how many were unmapped.
    fn unmap(&self, iova: u64, size: u64) -> u64;
    /// The page sizes the domain maps (`pgsize_bitmap`).
    fn pgsize_bitmap(&self) -> u64;
    /// Smallest page size the domain maps.
    fn min_page_size(&self) -> u64 {
        let b = self.pgsize_bitmap();
        if b == 0 {
            1
        } else {
            1u64 << b.trailing_zeros()
        }
    }
    /// The IOVA range the domain translates (inclusive).
    fn aperture(&self) -> (u64, u64) {
        (0, u64::MAX)
    }
}

/// One mapping of a slice of a [`Pages`] at an IOVA range.
pub(crate) struct Area {
    /// Last IOVA of the area (the start is the key in the tree).
    last: u64,
    pages: Arc<Pages>,
    /// Offset of the area's first byte from the start of the first page of `pages`.
    start_byte: usize,
    prot: u32,
    /// Whether the area holds a use of its pages on behalf of the domains.
    in_domains: bool,
    /// Number of access pins inside the area.
    pub(crate) num_accesses: u32,
    /// How many of them lock the area: pins of internal accesses (a HW queue's), which no unmap
    /// can make unpin, so unmapping the area is `EBUSY` until they go (upstream's `num_locks`).
    num_locks: u32,
    /// An unmap is waiting for the accesses to unpin the area: new pins and reads or writes of
    /// accesses fail (`EINVAL`), so the unmap cannot be held off for ever (upstream's
    /// `prevent_access`). Never cleared: the area goes when the unmap succeeds.
    prevent_access: bool,
}

impl Area {
    fn length(&self, iova: u64) -> u64 {
        self.last - iova + 1
    }

    /// First and last page index (within `pages`) the bytes `[off, off + len)` of the area use.
    fn page_span(&self, off: u64, len: u64) -> (usize, usize) {
        let first = self.start_byte + off as usize;
        let last = first + len as usize - 1;
        (first / PAGE_SIZE, last / PAGE_SIZE)
    }

    fn all_pages(&self, iova: u64) -> (usize, usize) {
        self.page_span(0, self.length(iova))
    }
}

/// The pages an access pinned inside one area.
pub(crate) struct PinSeg {
    area_iova: u64,
    pub(crate) pages: Arc<Pages>,
    pub(crate) first: usize,
    pub(crate) last: usize,
}

/// A slice of pages to place at consecutive IOVAs (`IOMMU_IOAS_COPY` may produce several).
pub(crate) struct PagesSlice {
    pub(crate) pages: Arc<Pages>,
    pub(crate) start_byte: usize,
    pub(crate) length: u64,
}

/// The mutable state of an I/O page table.
pub(crate) struct IoptState {
    /// Areas keyed by first IOVA.
    pub(crate) areas: RBTree<u64, Area>,
    /// Allowed ranges (first -> last); empty means everything is allowed.
    allowed: RBTree<u64, u64>,
    /// Reserved ranges (first, last, owner); they may overlap.
    reserved: KVec<(u64, u64, usize)>,
    /// The attached domains, keyed by an identity the owner chooses.
    domains: InlineVec<(usize, Arc<dyn IoptDomain>)>,
    /// Alignment demanded by the accesses, keyed by access identity.
    access_aligns: KVec<(usize, u64)>,
    /// Current IOVA alignment.
    pub(crate) iova_alignment: u64,
    /// `IOMMU_OPTION_HUGE_PAGES` = 0: map in `PAGE_SIZE` pieces only.
    pub(crate) disable_large_pages: bool,
}

/// The I/O page table of one IOAS.
#[pin_data]
pub(crate) struct IoPagetable {
    #[pin]
    pub(crate) state: Mutex<IoptState>,
}

/// Whether the ranges `[a0, a1]` and `[b0, b1]` intersect.
fn overlaps(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 <= b1 && b0 <= a1
}

/// Ranges in `tree` (first -> last) intersecting `[first, last]`, as `(start, last)`.
fn intersecting<'a, V>(
    tree: &'a RBTree<u64, V>,
    first: u64,
    last: u64,
    last_of: impl Fn(&V) -> u64 + 'a,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    tree.iter()
        .map(move |(&s, v)| (s, last_of(v)))
        .filter(move |&(s, l)| overlaps(s, l, first, last))
}

/// Whether a range of `tree` (first -> last, not overlapping) intersects `[first, last]`: one
/// lookup, the range starting at or after `first` and the one before it.
pub(crate) fn range_tree_overlaps(tree: &RBTree<u64, u64>, first: u64, last: u64) -> bool {
    first_range_in(tree, first, last, |&l| l).is_some()
}

/// The first range of `tree` (keyed by first address, `last_of` its last, not overlapping)
/// that intersects `[first, last]`, as `(first, last)`: one lookup, the range starting at or
/// after `first` and the one before it.
pub(crate) fn first_range_in<V>(
    tree: &RBTree<u64, V>,
    first: u64,
    last: u64,
    last_of: impl Fn(&V) -> u64,
) -> Option<(u64, u64)> {
    match tree.cursor_lower_bound(&first) {
        Some(c) => {
            // A range starting before `first` may reach into `[first, last]`.
            if let Some((&k, v)) = c.peek_prev() {
                if last_of(v) >= first {
                    return Some((k, last_of(v)));
                }
            }
            let (&k, v) = c.current();
            (k <= last).then(|| (k, last_of(v)))
        }
        None => {
            // Every range starts before `first`: only the last one can reach into it.
            let c = tree.cursor_back()?;
            let (&k, v) = c.current();
            (last_of(v) >= first).then(|| (k, last_of(v)))
        }
    }
}

/// The areas intersecting `[cur, last]`, in IOVA order, as `(first, last)`. Areas do not
/// overlap, so each step is one tree lookup.
struct AreasIn<'a> {
    areas: &'a RBTree<u64, Area>,
    cur: u64,
    last: u64,
    done: bool,
}

impl Iterator for AreasIn<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.done || self.cur > self.last {
            return None;
        }
        let found = first_area_in(self.areas, self.cur, self.last);
        match found {
            Some((_, l)) if l < self.last => self.cur = l + 1,
            _ => self.done = true,
        }
        found
    }
}

/// The first area intersecting `[first, last]`.
fn first_area_in(areas: &RBTree<u64, Area>, first: u64, last: u64) -> Option<(u64, u64)> {
    first_range_in(areas, first, last, |a| a.last)
}

/// The IOVA ranges of an IOAS and its IOVA alignment ([`IoPagetable::iova_ranges`]): the
/// first [`IovaRanges::INLINE`] ranges in place, the rest (several reserved regions)
/// allocated.
pub(crate) struct IovaRanges {
    inline: [(u64, u64); Self::INLINE],
    n: usize,
    more: KVec<(u64, u64)>,
    /// The IOVA alignment.
    pub(crate) alignment: u64,
}

/// Reserved ranges [`IoPagetable::iova_ranges`] sorts in place.
const RESERVED_INLINE: usize = 8;

impl IovaRanges {
    /// Ranges kept in place.
    pub(crate) const INLINE: usize = 2;

    pub(crate) fn new() -> Self {
        Self {
            inline: [(0, 0); Self::INLINE],
            n: 0,
            more: KVec::new(),
            alignment: 0,
        }
    }

    fn push(&mut self, r: (u64, u64)) -> Result {
        if let Some(slot) = self.inline.get_mut(self.n) {
            *slot = r;
            self.n += 1;
            Ok(())
        } else {
            Ok(self.more.push(r, GFP_KERNEL)?)
        }
    }

    /// The ranges, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(u64, u64)> {
        Iterator::chain(self.inline.iter().take(self.n), self.more.iter())
    }
}

/// Calls `f` with each part of `[lo, hi]` that none of the ranges `used` (sorted by start,
/// possibly overlapping) covers, in order.
fn gaps_each(
    used: &[(u64, u64)],
    lo: u64,
    hi: u64,
    mut f: impl FnMut((u64, u64)) -> Result,
) -> Result {
    let mut cur = lo;
    for &(s, l) in used.iter() {
        if s > cur {
            f((cur, s - 1))?;
        }
        if l >= hi {
            return Ok(());
        }
        cur = cur.max(l + 1);
    }
    if cur <= hi {
        f((cur, hi))?;
    }
    Ok(())
}

/// The parts of `[lo, hi]` that none of the (possibly overlapping, unsorted) ranges `used`
/// covers, in order. Sorts `used`.
fn gaps(used: &mut [(u64, u64)], lo: u64, hi: u64) -> Result<KVec<(u64, u64)>> {
    used.sort_unstable_by_key(|r| r.0);
    let mut out = KVec::new();
    gaps_each(used, lo, hi, |r| Ok(out.push(r, GFP_KERNEL)?))?;
    Ok(out)
}

/// The areas intersecting `[first, last]`.
fn areas_in(areas: &RBTree<u64, Area>, first: u64, last: u64) -> AreasIn<'_> {
    AreasIn {
        areas,
        cur: first,
        last,
        done: false,
    }
}

impl IoptState {
    /// The identity of the I/O page table (dma-buf imports track areas by it).
    fn id(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// Tracks the dma-buf area at `iova` in every domain. On error nothing is tracked.
    fn track_all(&self, iova: u64, area: &Area) -> Result {
        for (key, dom) in self.domains.iter() {
            if let Err(e) = area
                .pages
                .track(self.id(), iova, area.length(iova), *key, dom)
            {
                area.pages.untrack(self.id(), iova, None);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether any area intersects `[first, last]`.
    pub(crate) fn area_in(&self, first: u64, last: u64) -> bool {
        areas_in(&self.areas, first, last).next().is_some()
    }

    fn reserved_in(&self, first: u64, last: u64) -> bool {
        self.reserved
            .iter()
            .any(|&(s, l, _)| overlaps(s, l, first, last))
    }

    fn reserved_within(&self, first: u64, last: u64) -> Result<KVec<(u64, u64)>> {
        let mut v = KVec::new();
        for &(s, l, _) in self.reserved.iter() {
            if overlaps(s, l, first, last) {
                v.push((s, l), GFP_KERNEL)?;
            }
        }
        Ok(v)
    }

    /// `EADDRINUSE` unless `[first, last]` may be reserved: no area and no allowed range in it.
    fn check_reservable(&self, first: u64, last: u64) -> Result {
        if self.area_in(first, last)
            || intersecting(&self.allowed, first, last, |&l| l)
                .next()
                .is_some()
        {
            return Err(EADDRINUSE);
        }
        Ok(())
    }

    /// Finds an IOVA for `length` bytes whose user address is `addr`.
    fn alloc_iova(&self, addr: u64, length: u64) -> Result<u64> {
        let page_offset = addr % PAGE_SIZE as u64;
        if length == 0 || length >= u64::MAX / 2 {
            return Err(EOVERFLOW);
        }
        let mut align = length.checked_next_power_of_two().ok_or(EOVERFLOW)?;
        if addr != 0 {
            align = align.min(1u64 << addr.trailing_zeros());
        }
        align = align.min(MAX_AUTO_ALIGNMENT);
        if align < self.iova_alignment {
            return Err(EINVAL);
        }
        let fits = |start: u64, last: u64| -> Option<u64> {
            let aligned = start.checked_add(align - 1)? & !(align - 1);
            let aligned = aligned | page_offset;
            if aligned >= last || last - aligned < length - 1 {
                return None;
            }
            Some(aligned)
        };
        // The lowest fitting IOVA in `[s, l]` that no reserved range and no area intersects
        // (the first fit in the first hole that has one, found without listing the holes): an
        // obstacle that intersects a candidate rules out every start up to its end.
        let first_fit = |s: u64, l: u64| -> Option<u64> {
            let mut start = s;
            loop {
                let iova = fits(start, l)?;
                let last = iova.checked_add(length - 1)?;
                let obstacle = self
                    .reserved
                    .iter()
                    .filter(|&&(rs, rl, _)| overlaps(rs, rl, iova, last))
                    .map(|&(_, rl, _)| rl)
                    .max()
                    .or_else(|| first_area_in(&self.areas, iova, last).map(|(_, al)| al));
                match obstacle {
                    None => return Some(iova),
                    Some(end) => start = end.checked_add(1)?,
                }
            }
        };
        let lo = PAGE_SIZE as u64;
        let hi = u64::MAX - PAGE_SIZE as u64;
        if self.allowed.is_empty() {
            return first_fit(lo, hi).ok_or(ENOSPC);
        }
        intersecting(&self.allowed, lo, hi, |&l| l)
            .find_map(|(s, l)| first_fit(s.max(lo), l.min(hi)))
            .ok_or(ENOSPC)
    }

    fn check_iova(&self, iova: u64, length: u64) -> Result {
        if iova & (self.iova_alignment - 1) != 0 {
            return Err(EINVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
        if self.reserved_in(iova, last) {
            return Err(EINVAL);
        }
        if self.area_in(iova, last) {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// Maps the area at `iova` into `domain`. On error the part mapped is unmapped.
    fn map_area_into(&self, domain: &dyn IoptDomain, iova: u64, area: &Area) -> Result {
        let len = area.length(iova);
        let prot = if area.pages.is_dmabuf() {
            (area.prot & !PROT_CACHE) | PROT_MMIO
        } else {
            area.prot
        };
        let (first, last) = area.all_pages(iova);
        let mut cur_iova = iova;
        // Bytes from `iova` mapped so far (to undo exactly that on failure).
        let mut mapped = 0u64;
        // Runs of physically contiguous memory are mapped in one call; every map happens
        // inside `for_each_run`, under the lock that a dma-buf revoke takes, so a revoke
        // either sees the mapping (and removes it) or prevents it.
        let mut run: Option<(u64, u64, u64)> = None; // (iova, phys, size)
        let mut remaining = len;
        let large = !self.disable_large_pages;
        let res = area.pages.for_each_run(first, last, |i, phys, n| {
            // Without large pages each page is mapped on its own, else the run in one piece.
            let (pieces, per) = if large { (1, n) } else { (n, 1) };
            for k in 0..pieces {
                let pi = i + k * per;
                let in_page = if pi == first {
                    (area.start_byte % PAGE_SIZE) as u64
                } else {
                    0
                };
                // CAST: `usize` fits in `u64`; pages of the range cannot overflow it.
                let size = ((per as u64) * PAGE_SIZE as u64 - in_page).min(remaining);
                let p = phys + ((k * per) as u64) * PAGE_SIZE as u64 + in_page;
                match run {
                    Some((ri, rp, rs)) if large && rp + rs == p => run = Some((ri, rp, rs + size)),
                    Some((ri, rp, rs)) => {
                        domain.map(ri, rp, rs, prot)?;
                        mapped += rs;
                        run = Some((cur_iova, p, size));
                    }
                    None => run = Some((cur_iova, p, size)),
                }
                cur_iova += size;
                remaining -= size;
            }
            if i + n > last {
                if let Some((ri, rp, rs)) = run.take() {
                    domain.map(ri, rp, rs, prot)?;
                    mapped += rs;
                }
            }
            Ok(())
        });
        if res.is_err() && mapped != 0 {
            domain.unmap(iova, mapped);
        }
        res
    }

    /// Makes the area present in every domain: takes the pages' use and maps it.
    fn fill_domains(&mut self, iova: u64) -> Result {
        if self.domains.is_empty() {
            return Ok(());
        }
        let area = self.areas.get(&iova).ok_or(EINVAL)?;
        let (first, last) = area.all_pages(iova);
        area.pages.take(first, last)?;
        if let Err(e) = self.track_all(iova, area) {
            area.pages.put(first, last);
            return Err(e);
        }
        for (n, (_, dom)) in self.domains.iter().enumerate() {
            if let Err(e) = self.map_area_into(&**dom, iova, area) {
                if area.pages.is_dmabuf() {
                    area.pages.untrack(self.id(), iova, None);
                } else {
                    for (_, d) in self.domains.iter().take(n) {
                        d.unmap(iova, area.length(iova));
                    }
                }
                area.pages.put(first, last);
                return Err(e);
            }
        }
        if let Some(a) = self.areas.get_mut(&iova) {
            a.in_domains = true;
        }
        Ok(())
    }

    /// Removes the area from every domain and drops the domains' use of its pages.
    fn unfill_domains(&self, iova: u64, area: &Area) {
        if !area.in_domains {
            return;
        }
        if area.pages.is_dmabuf() {
            area.pages.untrack(self.id(), iova, None);
        } else {
            for (_, d) in self.domains.iter() {
                d.unmap(iova, area.length(iova));
            }
        }
        let (first, last) = area.all_pages(iova);
        area.pages.put(first, last);
    }

    /// Recomputes the IOVA alignment from the domains and accesses.
    fn calc_alignment(&self) -> u64 {
        let mut align = if self.disable_large_pages {
            PAGE_SIZE as u64
        } else {
            1
        };
        for (_, d) in self.domains.iter() {
            align = align.max(d.min_page_size());
        }
        for &(_, a) in self.access_aligns.iter() {
            align = align.max(a);
        }
        align
    }

    /// Whether every area satisfies `align`.
    fn check_alignment(&self, align: u64) -> Result {
        let mask = align - 1;
        for (&iova, area) in self.areas.iter() {
            if iova & mask != 0
                || area.length(iova) & mask != 0
                || (area.start_byte % PAGE_SIZE) as u64 & mask != 0
            {
                return Err(EADDRINUSE);
            }
        }
        Ok(())
    }
}

impl IoPagetable {
    /// The first IOVA of the `nth` area, lowest first (`None` if there are fewer areas): the
    /// selftest's syzkaller mode names IOVAs by area.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) fn nth_area_iova(&self, nth: u32) -> Option<u64> {
        let nth = usize::try_from(nth).ok()?;
        self.state
            .lock()
            .area_ranges()
            .nth(nth)
            .map(|(first, _)| first)
    }
}

impl IoptState {
    /// The IOVA range `(first, last)` of every area, lowest first.
    pub(crate) fn area_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.areas.iter().map(|(&iova, area)| (iova, area.last))
    }
}

impl IoPagetable {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- kernel::new_mutex!(IoptState {
                areas: RBTree::new(),
                allowed: RBTree::new(),
                reserved: KVec::new(),
                domains: InlineVec::new(),
                access_aligns: KVec::new(),
                iova_alignment: 1,
                disable_large_pages: false,
            }),
        })
    }

    /// Places `slices` at consecutive IOVAs starting at `iova` (or at a kernel-chosen IOVA when
    /// `iova` is `None`), mapped into every domain. Returns the first IOVA.
    pub(crate) fn map_pages(
        &self,
        slices: &[PagesSlice],
        iova: Option<u64>,
        prot: u32,
    ) -> Result<u64> {
        let length = slices
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(s.length))
            .ok_or(EOVERFLOW)?;
        // Preallocate the tree nodes so insertion cannot fail half way (one, the common case of
        // `IOMMU_IOAS_MAP`, without a vector).
        let mut one = None;
        let mut many = KVec::new();
        if let [_] = slices {
            one = Some(RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?);
        } else {
            many.reserve(slices.len(), GFP_KERNEL)?;
            for _ in slices {
                many.push(RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?, GFP_KERNEL)?;
            }
        }
        let nodes = Iterator::chain(one.into_iter(), many.drain_all());
        let mut st = self.state.lock();
        if length & (st.iova_alignment - 1) != 0 || length == 0 {
            return Err(EINVAL);
        }
        let first = slices.first().ok_or(EINVAL)?;
        let start = match iova {
            None => {
                let addr = (first.pages.uptr() as u64)
                    .wrapping_sub(first.pages.start_byte() as u64)
                    .wrapping_add(first.start_byte as u64);
                st.alloc_iova(addr, length)?
            }
            Some(iova) => {
                st.check_iova(iova, length)?;
                iova
            }
        };
        // Insert every area, checking each as upstream does. The areas follow each other from
        // `start`, so the first `inserted` of `slices` are at the IOVAs `starts()` gives.
        let starts = || {
            slices.iter().scan(start, |cur, s| {
                let at = *cur;
                *cur = cur.wrapping_add(s.length);
                Some(at)
            })
        };
        let mut cur = start;
        let mut inserted = 0usize;
        let mut err = None;
        for (s, node) in slices.iter().zip(nodes) {
            if prot & PROT_WRITE != 0 && !s.pages.writable() {
                err = Some(EPERM);
                break;
            }
            if (s.start_byte % PAGE_SIZE) as u64 & (st.iova_alignment - 1) != 0 {
                err = Some(EINVAL);
                break;
            }
            let Some(last) = cur.checked_add(s.length - 1) else {
                err = Some(EOVERFLOW);
                break;
            };
            let area = Area {
                last,
                pages: s.pages.clone(),
                start_byte: s.start_byte,
                prot,
                in_domains: false,
                num_accesses: 0,
                num_locks: 0,
                prevent_access: false,
            };
            st.areas.insert(node.into_node(cur, area));
            inserted += 1;
            cur = last.wrapping_add(1);
        }
        if err.is_none() {
            for (n, i) in starts().enumerate() {
                if let Err(e) = st.fill_domains(i) {
                    for j in starts().take(n) {
                        if let Some(a) = st.areas.remove(&j) {
                            st.unfill_domains(j, &a);
                        }
                    }
                    for j in starts().skip(n) {
                        drop(st.areas.remove(&j));
                    }
                    return Err(e);
                }
            }
            return Ok(start);
        }
        for j in starts().take(inserted) {
            drop(st.areas.remove(&j));
        }
        Err(err.unwrap_or(EINVAL))
    }

    /// Unmaps the areas inside `[first, last]`; an area only partly inside is `ENOENT`.
    /// `notify` is called (without the lock) for areas that accesses pin, and must make them
    /// unpin. Returns the bytes unmapped (also on error, for what was done before it).
    pub(crate) fn unmap_range(
        &self,
        mut first: u64,
        last: u64,
        notify: &dyn Fn(u64, u64),
    ) -> (u64, Result) {
        let mut unmapped = 0u64;
        let mut tries = 0u32;
        loop {
            let mut st = self.state.lock();
            let next = first_area_in(&st.areas, first, last);
            let Some((a_first, a_last)) = next else {
                return (unmapped, Ok(()));
            };
            // One lookup for the checks and the removal.
            let Some(mut entry) = st.areas.find_mut(&a_first) else {
                return (unmapped, Err(ENOENT));
            };
            let area = entry.get_mut();
            // An area an internal access locked cannot go while the lock holder exists.
            if area.num_locks != 0 {
                return (unmapped, Err(EBUSY));
            }
            if a_first < first || a_last > last {
                return (unmapped, Err(ENOENT));
            }
            if a_first != first {
                tries = 0;
            }
            if area.num_accesses != 0 {
                area.prevent_access = true;
                first = a_first;
                drop(st);
                notify(a_first, a_last - a_first + 1);
                tries += 1;
                if tries > 100 {
                    return (unmapped, Err(EDEADLK));
                }
                continue;
            }
            let area = entry.remove();
            st.unfill_domains(a_first, &area);
            drop(st);
            drop(area);
            unmapped += a_last - a_first + 1;
            if a_last >= last {
                return (unmapped, Ok(()));
            }
            first = a_last + 1;
        }
    }

    /// The slices of pages backing `[iova, iova + length)`, which areas must cover without gaps
    /// (`ENOENT` otherwise).
    pub(crate) fn get_pages(&self, iova: u64, length: u64) -> Result<KVec<PagesSlice>> {
        let st = self.state.lock();
        let mut out = KVec::new();
        Self::walk(&st, iova, length, |_, area, off, len| {
            out.push(
                PagesSlice {
                    pages: area.pages.clone(),
                    start_byte: area.start_byte + off as usize,
                    length: len,
                },
                GFP_KERNEL,
            )?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Replaces the allowed ranges with `tree` (first -> last, not overlapping). Fails with
    /// `EADDRINUSE` if one of them covers a reserved range.
    pub(crate) fn set_allowed(&self, tree: RBTree<u64, u64>) -> Result {
        let mut st = self.state.lock();
        if tree.iter().any(|(&s, &l)| st.reserved_in(s, l)) {
            return Err(EADDRINUSE);
        }
        st.allowed = tree;
        Ok(())
    }

    /// Reserves `[first, last]` for `owner`. `EADDRINUSE` if mapped or outside allowed ranges.
    pub(crate) fn reserve(&self, first: u64, last: u64, owner: usize) -> Result {
        let mut st = self.state.lock();
        st.check_reservable(first, last)?;
        st.reserved.push((first, last, owner), GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Drops every reserved range of `owner`.
    pub(crate) fn unreserve_owner(&self, owner: usize) {
        let mut st = self.state.lock();
        st.reserved.retain(|r| r.2 != owner);
    }

    /// Attaches `domain` under `key`: raises the alignment if needed and fills the domain with
    /// every area. On error nothing changes.
    pub(crate) fn add_domain(&self, key: usize, domain: Arc<dyn IoptDomain>) -> Result {
        let mut st = self.state.lock();
        let new_align = st.iova_alignment.max(domain.min_page_size());
        if new_align > PAGE_SIZE as u64 {
            return Err(EINVAL);
        }
        if new_align != st.iova_alignment {
            st.check_alignment(new_align)?;
        }
        st.domains.reserve_one(GFP_KERNEL)?;
        // IOVA outside the aperture is reserved for as long as the domain is attached.
        let (ap_start, ap_end) = domain.aperture();
        let below = (ap_start != 0).then(|| (0, ap_start - 1));
        let above = (ap_end != u64::MAX).then(|| (ap_end + 1, u64::MAX));
        let outside = [below, above];
        let outside = || outside.iter().flatten();
        st.reserved.reserve(outside().count(), GFP_KERNEL_ACCOUNT)?;
        for &(s, l) in outside() {
            st.check_reservable(s, l)?;
        }
        for &(s, l) in outside() {
            let _ = st.reserved.push((s, l, key), GFP_KERNEL_ACCOUNT);
        }
        // Map every area in IOVA order; on failure, undo the areas before the one that failed.
        let mut failed = None;
        for (&iova, area) in st.areas.iter() {
            let (first, last) = area.all_pages(iova);
            if !area.in_domains {
                if let Err(e) = area.pages.take(first, last) {
                    failed = Some((iova, e));
                    break;
                }
            }
            let res = area
                .pages
                .track(st.id(), iova, area.length(iova), key, &domain)
                .and_then(|()| {
                    st.map_area_into(&*domain, iova, area).inspect_err(|_| {
                        area.pages.untrack(st.id(), iova, Some(key));
                    })
                });
            if let Err(e) = res {
                if !area.in_domains {
                    area.pages.put(first, last);
                }
                failed = Some((iova, e));
                break;
            }
        }
        if let Some((stop, e)) = failed {
            st.reserved.retain(|r| r.2 != key);
            for (&j, area) in st.areas.iter().take_while(|(&j, _)| j < stop) {
                if area.pages.is_dmabuf() {
                    area.pages.untrack(st.id(), j, Some(key));
                } else {
                    domain.unmap(j, area.length(j));
                }
                if !area.in_domains {
                    let (f, l) = area.all_pages(j);
                    area.pages.put(f, l);
                }
            }
            return Err(e);
        }
        for (_, a) in st.areas.iter_mut() {
            a.in_domains = true;
        }
        let _ = st.domains.push((key, domain), GFP_KERNEL);
        st.iova_alignment = new_align;
        Ok(())
    }

    /// Detaches the domain added under `key`: unmaps every area from it; when it was the last
    /// domain, the areas drop their use of the pages.
    pub(crate) fn remove_domain(&self, key: usize) {
        let mut st = self.state.lock();
        let Some((_, domain)) = st.domains.remove_first(|(k, _)| *k == key) else {
            return;
        };
        let last_domain = st.domains.is_empty();
        for (&iova, area) in st.areas.iter() {
            if area.in_domains {
                if area.pages.is_dmabuf() {
                    area.pages.untrack(st.id(), iova, Some(key));
                } else {
                    domain.unmap(iova, area.length(iova));
                }
                if last_domain {
                    let (f, l) = area.all_pages(iova);
                    area.pages.put(f, l);
                }
            }
        }
        if last_domain {
            for (_, area) in st.areas.iter_mut() {
                area.in_domains = false;
            }
        }
        st.reserved.retain(|r| r.2 != key);
        st.iova_alignment = st.calc_alignment();
        drop(domain);
    }

    /// Registers an access needing `align`; `EADDRINUSE`-style failure if areas do not satisfy it.
    pub(crate) fn add_access(&self, key: usize, align: u64) -> Result {
        let mut st = self.state.lock();
        let new_align = st.iova_alignment.max(align);
        st.check_alignment(new_align)?;
        st.access_aligns.push((key, align), GFP_KERNEL)?;
        st.iova_alignment = new_align;
        Ok(())
    }

    /// Forgets the access registered under `key`.
    pub(crate) fn remove_access(&self, key: usize) {
        let mut st = self.state.lock();
        if let Some(pos) = st.access_aligns.iter().position(|(k, _)| *k == key) {
            let _ = st.access_aligns.remove(pos);
        }
        st.iova_alignment = st.calc_alignment();
    }

    /// `IOMMU_OPTION_HUGE_PAGES` set to `enable`. Disabling is refused with `EINVAL` once
    /// domains have areas mapped.
    pub(crate) fn set_large_pages(&self, enable: bool) -> Result {
        let mut st = self.state.lock();
        if enable {
            st.disable_large_pages = false;
            st.iova_alignment = st.calc_alignment();
            return Ok(());
        }
        if st.disable_large_pages {
            return Ok(());
        }
        if !st.domains.is_empty() && !st.areas.is_empty() {
            return Err(EINVAL);
        }
        st.disable_large_pages = true;
        let align = st.calc_alignment();
        if align > st.iova_alignment {
            if let Err(e) = st.check_alignment(align) {
                st.disable_large_pages = false;
                return Err(e);
            }
        }
        st.iova_alignment = align;
        Ok(())
    }

    /// Whether large pages are used (`IOMMU_OPTION_HUGE_PAGES`).
    pub(crate) fn large_pages(&self) -> bool {
        !self.state.lock().disable_large_pages
    }

    /// The page sizes every attached domain maps (all ones with no domain).
    pub(crate) fn domains_pgsize_bitmap(&self) -> u64 {
        let st = self.state.lock();
        st.domains
            .iter()
            .fold(u64::MAX, |acc, (_, d)| acc & d.pgsize_bitmap())
    }

    /// The ranges of `[0, u64::MAX]` not reserved (allowed ranges ignored), in order.
    pub(crate) fn unreserved_ranges(&self) -> Result<KVec<(u64, u64)>> {
        let st = self.state.lock();
        gaps(&mut st.reserved_within(0, u64::MAX)?, 0, u64::MAX)
    }

    /// What `IOMMU_IOAS_IOVA_RANGES` answers, under one lock, into `out` (empty, in the
    /// caller's frame, so that nothing large is moved): the ranges of `[0, u64::MAX]` not
    /// reserved, in order, and the IOVA alignment. Nothing is allocated while the IOAS has at
    /// most [`RESERVED_INLINE`] reserved ranges and at most [`IovaRanges::INLINE`] ranges to
    /// answer.
    pub(crate) fn iova_ranges(&self, out: &mut IovaRanges) -> Result {
        let st = self.state.lock();
        out.alignment = st.iova_alignment;
        let n = st.reserved.len();
        if n == 0 {
            return out.push((0, u64::MAX));
        }
        if n <= RESERVED_INLINE {
            let mut used = [(0u64, 0u64); RESERVED_INLINE];
            for (slot, &(s, l, _)) in used.iter_mut().zip(st.reserved.iter()) {
                *slot = (s, l);
            }
            let used = used.get_mut(..n).ok_or(EINVAL)?;
            used.sort_unstable_by_key(|r| r.0);
            gaps_each(used, 0, u64::MAX, |r| out.push(r))?;
        } else {
            let mut used = st.reserved_within(0, u64::MAX)?;
            used.sort_unstable_by_key(|r| r.0);
            gaps_each(&used, 0, u64::MAX, |r| out.push(r))?;
        }
        Ok(())
    }

    /// Splits the area containing `iova` so that one area ends at `iova` (VFIO type1 partial
    /// unmaps). Nothing to do if no area contains it or one already ends there.
    pub(crate) fn cut(&self, iova: u64) -> Result {
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut st = self.state.lock();
        let found = first_area_in(&st.areas, iova, iova);
        let Some((a_first, a_last)) = found else {
            return Ok(());
        };
        if a_last == iova {
            return Ok(());
        }
        let align = st.iova_alignment;
        let area = st.areas.get(&a_first).ok_or(EINVAL)?;
        if area.num_accesses != 0 || area.num_locks != 0 || area.prevent_access {
            return Err(EBUSY);
        }
        if area.pages.is_dmabuf() {
            return Err(EOPNOTSUPP);
        }
        let head_len = iova - a_first + 1;
        if head_len & (align - 1) != 0 {
            return Err(EINVAL);
        }
        let tail = Area {
            last: a_last,
            pages: area.pages.clone(),
            start_byte: area.start_byte + head_len as usize,
            prot: area.prot,
            in_domains: area.in_domains,
            num_accesses: 0,
            num_locks: 0,
            prevent_access: false,
        };
        // Both halves hold a use of their pages; a page both touch needs one more.
        if area.in_domains {
            let (_, head_last) = area.page_span(0, head_len);
            let (tail_first, _) = tail.all_pages(iova + 1);
            if head_last == tail_first {
                area.pages.take(tail_first, tail_first)?;
            }
        }
        if let Some(a) = st.areas.get_mut(&a_first) {
            a.last = iova;
        }
        st.areas.insert(node.into_node(iova + 1, tail));
        Ok(())
    }

    /// Walks the areas covering `[iova, iova + length)` without gaps (`ENOENT` otherwise),
    /// calling `f(area_iova, area, offset_in_area, len)` for each piece.
    pub(crate) fn walk(
        st: &IoptState,
        iova: u64,
        length: u64,
        mut f: impl FnMut(u64, &Area, u64, u64) -> Result,
    ) -> Result {
        if length == 0 {
            return Err(EINVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
        let mut cur = iova;
        for (a_first, a_last) in areas_in(&st.areas, iova, last) {
            if a_first > cur {
                return Err(ENOENT);
            }
            let area = st.areas.get(&a_first).ok_or(ENOENT)?;
            let end = a_last.min(last);
            f(a_first, area, cur - a_first, end - cur + 1)?;
            if end == last {
                return Ok(());
            }
            cur = end + 1;
        }
        Err(ENOENT)
    }

    fn check_access_prot(area: &Area, write: bool) -> Result {
        let need = if write { PROT_WRITE } else { PROT_READ };
        if area.prot & need == 0 || (write && !area.pages.writable()) {
            return Err(EPERM);
        }
        Ok(())
    }

    /// Pins `[iova, iova + length)` for an access: the range must start on a page boundary of
    /// the memory and areas may only join at page boundaries. Unmapping a pinned area waits
    /// for the access to unpin it.
    pub(crate) fn access_pin(&self, iova: u64, length: u64, write: bool) -> Result<KVec<PinSeg>> {
        self.pin_for(iova, length, write, false)
    }

    /// Pins `[iova, iova + length)` for an internal access, locking the areas: unmapping them
    /// is `EBUSY` until [`Self::lock_unpin`].
    pub(crate) fn lock_pin(&self, iova: u64, length: u64, write: bool) -> Result<KVec<PinSeg>> {
        self.pin_for(iova, length, write, true)
    }

    /// Releases what [`Self::lock_pin`] pinned.
    pub(crate) fn lock_unpin(&self, segs: &[PinSeg]) {
        self.unpin_for(segs, true)
    }

    fn pin_for(&self, iova: u64, length: u64, write: bool, lock: bool) -> Result<KVec<PinSeg>> {
        let mut st = self.state.lock();
        let mut segs: KVec<PinSeg> = KVec::new();
        let last = iova.wrapping_add(length).wrapping_sub(1);
        let res = Self::walk(&st, iova, length, |a_iova, area, off, len| {
            // Upstream's order: an area being unmapped or a piece not on page boundaries of the
            // memory is `EINVAL`, then the protection.
            let start = area.start_byte + off as usize;
            if area.prevent_access || start % PAGE_SIZE != 0 {
                return Err(EINVAL);
            }
            let piece_last = a_iova + off + len - 1;
            if piece_last != last && (start + len as usize) % PAGE_SIZE != 0 {
                return Err(EINVAL);
            }
            Self::check_access_prot(area, write)?;
            if area.pages.is_dmabuf() {
                return Err(EINVAL);
            }
            let (first, lastp) = area.page_span(off, len);
            segs.reserve(1, GFP_KERNEL)?;
            area.pages.take(first, lastp)?;
            let _ = segs.push(
                PinSeg {
                    area_iova: a_iova,
                    pages: area.pages.clone(),
                    first,
                    last: lastp,
                },
                GFP_KERNEL,
            );
            Ok(())
        });
        if let Err(e) = res {
            for seg in segs.iter() {
                seg.pages.put(seg.first, seg.last);
            }
            return Err(e);
        }
        for seg in segs.iter() {
            if let Some(a) = st.areas.get_mut(&seg.area_iova) {
                a.num_accesses += 1;
                if lock {
                    a.num_locks += 1;
                }
            }
        }
        Ok(segs)
    }

    /// Releases what [`Self::access_pin`] pinned.
    pub(crate) fn access_unpin(&self, segs: &[PinSeg]) {
        self.unpin_for(segs, false)
    }

    fn unpin_for(&self, segs: &[PinSeg], lock: bool) {
        let mut st = self.state.lock();
        for seg in segs {
            seg.pages.put(seg.first, seg.last);
            if let Some(a) = st.areas.get_mut(&seg.area_iova) {
                a.num_accesses = a.num_accesses.saturating_sub(1);
                if lock {
                    a.num_locks = a.num_locks.saturating_sub(1);
                }
            }
        }
    }

    /// Copies between `buf` and the memory mapped at `iova` (any alignment).
    /// Unless `slow`, memory of the current process nobody pinned is copied through its user
    /// address (upstream's fast path); otherwise the pages are pinned for the copy.
    pub(crate) fn access_rw(&self, iova: u64, buf: &mut [u8], write: bool, slow: bool) -> Result {
        let st = self.state.lock();
        let mut done = 0usize;
        Self::walk(&st, iova, buf.len() as u64, |_a_iova, area, off, len| {
            if area.prevent_access {
                return Err(EINVAL);
            }
            Self::check_access_prot(area, write)?;
            if area.pages.is_dmabuf() {
                return Err(EINVAL);
            }
            let (first, last) = area.page_span(off, len);
            let part = buf.get_mut(done..done + len as usize).ok_or(EINVAL)?;
            done += len as usize;
            let byte = area.start_byte + off as usize;
            if !slow && area.pages.rw_through_user(first, last, byte, part, write)? {
                return Ok(());
            }
            area.pages.take(first, last)?;
            let res = area.pages.rw(byte, part, write);
            area.pages.put(first, last);
            res
        })
    }

    /// Calls `f` on the pages of every area.
    pub(crate) fn for_each_pages(&self, mut f: impl FnMut(&Arc<Pages>) -> Result) -> Result {
        let st = self.state.lock();
        for (_, area) in st.areas.iter() {
            f(&area.pages)?;
        }
        Ok(())
    }

    /// Current IOVA alignment.
    pub(crate) fn iova_alignment(&self) -> u64 {
        self.state.lock().iova_alignment
    }
}
