// SPDX-License-Identifier: GPL-2.0

//! The user memory behind IOAS areas.
//!
//! A [`Pages`] is one range of user memory given to `IOMMU_IOAS_MAP`. Areas (in one or several
//! IOASes, after `IOMMU_IOAS_COPY`) refer to it; whoever needs the memory resident (an area mapped
//! into iommu domains, an access object pinning for an emulated device) takes a use of a page
//! range. A page is pinned when its first use is taken and unpinned when its last use is
//! dropped, so each page is pinned once however many domains map it, and it is charged once to
//! the locked-memory budget of the process that mapped it.
//!
//! A dma-buf range ([`Pages::new_dmabuf`]) is different: its memory is the exporter's physical
//! range, pinned by the import as a whole, never page by page and never charged (see
//! [`crate::dmabuf`]).

use kernel::{
    device::Device,
    fs::File,
    mm::{
        pin::{
            capable_ipc_lock,
            contiguous_pages,
            current_group_leader,
            memlock_limit_pages,
            pin_file_pages_into,
            pin_user_pages_into,
            unpin_pages,
            PinnedPage,
            User, //
        },
        Mm, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    task::Task,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

use crate::{
    ioas::dmabuf::{
        DmaBufImport,
        DmaBufRef, //
    },
    ioas::io_pagetable::IoptDomain, //
};

extern "C" {
    /// `drivers/vfio/api.c`: whether `memfd_pin_folios()` can pin pages of `file` (a shmem or
    /// hugetlbfs file).
    fn iommufd_rs_file_pinnable(file: *mut c_void) -> bool;
}

/// Whether pages of `file` can be pinned (`memfd_pin_folios()` accepts only shmem files, which
/// memfds and tmpfs files are, and hugetlbfs files).
fn file_pinnable(file: &File) -> bool {
    // SAFETY: `file.as_ptr()` is a valid file for the duration of the call (we hold a
    // reference); the helper only reads its mapping and file operations.
    unsafe { iommufd_rs_file_pinnable(file.as_ptr().cast()) }
}

/// How pinned pages are charged (the values of `IOMMU_OPTION_RLIMIT_MODE` map onto `User`/`Mm`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AccountMode {
    /// Not charged: the mapping process had `CAP_IPC_LOCK`.
    None,
    /// Charged to the user's `locked_vm`, limited by `RLIMIT_MEMLOCK`.
    User,
    /// Charged to the address space's `locked_vm`, like VFIO type1.
    Mm,
}

/// A run of consecutive pages of the range, pinned together, and the uses of each.
///
/// A [`Pages::take`] of pages no extent holds pins them into a new extent, with one GUP for the
/// whole run; a take of pages an extent holds counts a use of each (and pins those of them that
/// had none). A [`Pages::put`] unpins the pages left without a use, run by run, and frees the
/// extent when none is left pinned. So a map pins and unpins its range in a few calls, whatever
/// its size, and finds its pages by one tree lookup per extent, not per page.
///
/// # Invariants
///
/// `pages` and `uses` have one slot per page of the extent; a slot's page is pinned (`Some`)
/// exactly when its use count is not zero, and `live` is the number of pinned slots.
struct Extent {
    /// The index of its last page.
    last: usize,
    /// The pinned pages.
    pages: KVVec<Option<PinnedPage>>,
    /// The uses of each page.
    uses: KVVec<u32>,
    /// How many pages are pinned.
    live: usize,
}

/// Where the pages come from and who pays for them; `IOMMU_IOAS_CHANGE_PROCESS` moves it.
pub(crate) struct Source {
    mm: ARef<Mm>,
    task: ARef<Task>,
    user: ARef<User>,
    account: AccountMode,
}

impl Source {
    /// The current process, charged in mode `account`.
    fn current(account: AccountMode) -> Result<Source> {
        Ok(Source {
            mm: Mm::current().ok_or(EFAULT)?,
            task: current_group_leader(),
            user: User::current(),
            account,
        })
    }
}

struct PagesState {
    src: Source,
    /// The extents, by the index of their first page; they do not overlap.
    extents: RBTree<usize, Extent>,
    /// Pages pinned (and charged) right now.
    npinned: usize,
}

/// Where the memory is.
enum Kind {
    /// Anonymous or file-backed memory of the mapping process, at user addresses.
    User,
    /// A memfd, at file offsets.
    File(ARef<File>),
    /// A dma-buf, at offsets into the buffer.
    DmaBuf(DmaBufImport),
}

/// A range of user memory that areas map.
#[pin_data]
pub(crate) struct Pages {
    kind: Kind,
    /// Page-aligned user address (or file offset) of the first page.
    base: usize,
    /// Offset of the first byte of the range within the first page.
    start_byte: usize,
    /// Length of the range in bytes.
    length: usize,
    /// Number of pages the range touches.
    npages: usize,
    /// Whether devices may write to the memory.
    writable: bool,
    #[pin]
    state: Mutex<PagesState>,
}

impl Pages {
    /// Creates the pages for `length` bytes of the current process's memory at `uptr`.
    ///
    /// `mm_mode` selects mm accounting (`IOMMU_OPTION_RLIMIT_MODE` = 1) for processes without
    /// `CAP_IPC_LOCK`.
    pub(crate) fn new_user(
        uptr: usize,
        length: usize,
        writable: bool,
        mm_mode: bool,
    ) -> Result<Arc<Pages>> {
        uptr.checked_add(length).ok_or(EOVERFLOW)?;
        Self::new(Kind::User, uptr, length, writable, mm_mode)
    }

    /// Creates the pages for `length` bytes of the memfd `file` at offset `start`.
    ///
    /// Only files whose pages can be pinned (shmem, hugetlbfs) are taken (`EINVAL`, what
    /// pinning would answer). Upstream takes any file and fails only when pinning, but the
    /// mapping holds the file, and a file that holds the context (the `/dev/iommu` file itself,
    /// a selftest access file) would keep the context alive for ever.
    pub(crate) fn new_file(
        file: ARef<File>,
        start: usize,
        length: usize,
        writable: bool,
        mm_mode: bool,
    ) -> Result<Arc<Pages>> {
        // Upstream's `iopt_alloc_file_pages`: the last byte must be addressable.
        if length != 0 {
            start.checked_add(length - 1).ok_or(EOVERFLOW)?;
        }
        if !file_pinnable(&file) {
            return Err(EINVAL);
        }
        Self::new(Kind::File(file), start, length, writable, mm_mode)
    }

    /// Creates the pages for `length` bytes of the dma-buf `buf` at offset `start`, importing
    /// it for the device `dev`. The range must be inside the buffer (`EINVAL`).
    pub(crate) fn new_dmabuf(
        buf: DmaBufRef,
        dev: &Device,
        start: usize,
        length: usize,
        writable: bool,
    ) -> Result<Arc<Pages>> {
        if length == 0 {
            return Err(EINVAL);
        }
        let last = start.checked_add(length - 1).ok_or(EOVERFLOW)?;
        if buf.size() <= last || length / PAGE_SIZE >= u32::MAX as usize {
            return Err(EINVAL);
        }
        if length > usize::MAX - PAGE_SIZE {
            return Err(EINVAL);
        }
        let import = DmaBufImport::new(buf, dev)?;
        Self::new(Kind::DmaBuf(import), start, length, writable, false)
    }

    fn new(
        kind: Kind,
        uptr: usize,
        length: usize,
        writable: bool,
        mm_mode: bool,
    ) -> Result<Arc<Pages>> {
        // Upstream's `iopt_alloc_pages`: the length must leave room for rounding up to pages.
        if length == 0 || length > usize::MAX - PAGE_SIZE {
            return Err(EINVAL);
        }
        let base = uptr & !(PAGE_SIZE - 1);
        // Cannot overflow: `uptr - base` is below `PAGE_SIZE`, `length` at most `usize::MAX -
        // PAGE_SIZE`.
        let npages = (length + (uptr - base)).div_ceil(PAGE_SIZE);
        let mm = Mm::current().ok_or(EFAULT)?;
        // A dma-buf is not pinned page by page, so it is never charged.
        let account = if matches!(kind, Kind::DmaBuf(_)) || capable_ipc_lock() {
            AccountMode::None
        } else if mm_mode {
            AccountMode::Mm
        } else {
            AccountMode::User
        };
        let task: ARef<Task> = current_group_leader();
        let src = Source {
            mm,
            task,
            user: User::current(),
            account,
        };
        Arc::pin_init(
            pin_init!(Pages {
                kind,
                start_byte: uptr - base,
                base,
                length,
                npages,
                writable,
                state <- new_mutex!(PagesState {
                    src,
                    extents: RBTree::new(),
                    npinned: 0,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Offset of the first byte within the first page.
    pub(crate) fn start_byte(&self) -> usize {
        self.start_byte
    }

    /// Whether devices may write.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// User address of the first byte.
    pub(crate) fn uptr(&self) -> usize {
        self.base + self.start_byte
    }

    /// Whether the memory is a file (only those may move with `IOMMU_IOAS_CHANGE_PROCESS`).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.kind, Kind::File(_))
    }

    /// Whether the memory is a dma-buf.
    pub(crate) fn is_dmabuf(&self) -> bool {
        matches!(self.kind, Kind::DmaBuf(_))
    }

    /// For a dma-buf: records that the area at `iova` (`len` bytes) of the I/O page table
    /// `iopt` is mapped into `domain` (key `key`), so that a revoke unmaps it. Nothing to do
    /// for other memory.
    pub(crate) fn track(
        &self,
        iopt: usize,
        iova: u64,
        len: u64,
        key: usize,
        domain: &Arc<dyn IoptDomain>,
    ) -> Result {
        match &self.kind {
            Kind::DmaBuf(import) => import.track(iopt, iova, len, key, domain),
            _ => Ok(()),
        }
    }

    /// For a dma-buf: unmaps the area at `iova` of `iopt` from the domain with `key` (all for
    /// `None`) unless the buffer was revoked (which unmapped it already), and forgets it.
    pub(crate) fn untrack(&self, iopt: usize, iova: u64, key: Option<usize>) {
        if let Kind::DmaBuf(import) = &self.kind {
            import.untrack(iopt, iova, key);
        }
    }

    /// For `IOMMU_IOAS_CHANGE_PROCESS`: makes the current process the source of the memory and
    /// moves the charge of the pinned pages to it. The count is read and moved under the pages'
    /// lock, so no pin or unpin comes in between. Returns the old source, which
    /// [`Self::restore_source`] takes back; on error nothing changed.
    pub(crate) fn move_to_current(&self) -> Result<Source> {
        let mut st = self.state.lock();
        let new = Source::current(st.src.account)?;
        Self::switch_source(&mut st, new)
    }

    /// Undoes [`Self::move_to_current`] (another range could not move): `old` becomes the
    /// source again, with the pages pinned now. If `old` cannot be charged any more (its limit
    /// was reached meanwhile), the memory stays with the current process, which is charged
    /// for it.
    pub(crate) fn restore_source(&self, old: Source) {
        let mut st = self.state.lock();
        // Dropped after the lock is released.
        let _prev = Self::switch_source(&mut st, old);
    }

    /// Makes `new` the source of the memory, moving the charge of the pinned pages: charged to
    /// `new` (within its limit) before it is dropped from the old source. Returns the old
    /// source; on error nothing changed.
    fn switch_source(st: &mut PagesState, new: Source) -> Result<Source> {
        let n = st.npinned;
        let same_mm = core::ptr::eq::<Mm>(&*st.src.mm, &*new.mm);
        let recharge = match st.src.account {
            AccountMode::None => false,
            AccountMode::Mm => !same_mm,
            AccountMode::User => !same_mm || !core::ptr::eq::<User>(&*st.src.user, &*new.user),
        };
        if recharge {
            Self::charge(&new, n)?;
            Self::uncharge(&st.src, n);
        } else if n != 0 && !same_mm {
            // Not charged (no accounting): only the pinned_vm count follows the pages.
            let n = n as i64;
            st.src.mm.add_pinned_vm(-n);
            new.mm.add_pinned_vm(n);
        }
        Ok(core::mem::replace(&mut st.src, new))
    }

    /// Takes a use of pages `first..=last` (indexes into this range), pinning and charging the
    /// pages that had none. On error nothing changes.
    pub(crate) fn take(&self, first: usize, last: usize) -> Result {
        if first > last || last >= self.npages {
            return Err(EINVAL);
        }
        if self.is_dmabuf() {
            // The import pinned the whole buffer.
            return Ok(());
        }
        let mut st = self.state.lock();
        let mut idx = first;
        while idx <= last {
            // Either the extent holding `idx`, to the end of it, or the gap before the next one.
            let res = match Self::extent_at(&st.extents, idx, last) {
                Found::In(key, ext_last) => {
                    let end = ext_last.min(last);
                    self.take_in(&mut st, key, idx, end).map(|()| end)
                }
                Found::Gap(end) => self.take_new(&mut st, idx, end).map(|()| end),
            };
            match res {
                Ok(end) => idx = end + 1,
                Err(e) => {
                    if idx > first {
                        self.put_locked(&mut st, first, idx - 1);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Where `idx` is: in the extent with first page `key` and last page `last` (`In(key,
    /// last)`), or in a gap that reaches at least to `end`, or to the page before the next
    /// extent (`Gap(end)`).
    fn extent_at(extents: &RBTree<usize, Extent>, idx: usize, end: usize) -> Found {
        let (prev, next) = match extents.cursor_lower_bound(&idx) {
            Some(c) => {
                let (&k, e) = c.current();
                if k == idx {
                    return Found::In(k, e.last);
                }
                (c.peek_prev().map(|(&k, e)| (k, e.last)), Some(k))
            }
            None => (
                extents.cursor_back().map(|c| {
                    let (&k, e) = c.current();
                    (k, e.last)
                }),
                None,
            ),
        };
        match prev {
            Some((k, l)) if l >= idx => Found::In(k, l),
            _ => Found::Gap(next.map_or(end, |n| end.min(n - 1))),
        }
    }

    /// Pins pages `first..=last`, which no extent holds, into a new extent with one use each.
    fn take_new(&self, st: &mut PagesState, first: usize, last: usize) -> Result {
        let n = last - first + 1;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            pages.push(None, GFP_KERNEL_ACCOUNT)?;
        }
        let uses = KVVec::from_elem(1u32, n, GFP_KERNEL_ACCOUNT)?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        self.pin_slots(&st.src, first, &mut pages)?;
        // INVARIANT: every page is pinned now, with one use.
        let ext = Extent {
            last,
            pages,
            uses,
            live: n,
        };
        st.extents.insert(node.into_node(first, ext));
        st.npinned += n;
        crate::stats::pinned_add(n as i64);
        Ok(())
    }

    /// Takes a use of pages `first..=last` of the extent at `key`, pinning those that had none.
    /// On error nothing changes.
    fn take_in(&self, st: &mut PagesState, key: usize, first: usize, last: usize) -> Result {
        let PagesState {
            src,
            extents,
            npinned,
        } = st;
        let ext = extents.get_mut(&key).ok_or(EINVAL)?;
        let (a, b) = (first - key, last - key);
        // Pin the runs of pages without a use.
        let mut pinned = 0usize;
        let mut i = a;
        let mut res = Ok(());
        while let Some((start, run)) = Self::next_unused(&ext.uses, i, b + 1) {
            let slots = ext.pages.get_mut(start..start + run).ok_or(EINVAL);
            res = slots.and_then(|slots| self.pin_slots(src, key + start, slots));
            i = start;
            if res.is_err() {
                break;
            }
            pinned += run;
            i += run;
        }
        if let Err(e) = res {
            // Unpin what this call pinned before `i`: the pinned pages without a use.
            let mut j = a;
            while let Some((start, run)) = Self::next_unused(&ext.uses, j, i) {
                if let Some(slots) = ext.pages.get_mut(start..start + run) {
                    unpin_pages(slots, false);
                }
                j = start + run;
            }
            Self::uncharge(src, pinned);
            return Err(e);
        }
        for u in ext.uses.iter_mut().skip(a).take(b - a + 1) {
            *u += 1;
        }
        // INVARIANT: the pages pinned above got their first use.
        ext.live += pinned;
        *npinned += pinned;
        crate::stats::pinned_add(pinned as i64);
        Ok(())
    }

    /// The first run of pages without a use in `i..end`: its first index and its length.
    fn next_unused(uses: &[u32], i: usize, end: usize) -> Option<(usize, usize)> {
        let tail = uses.get(i..end)?;
        let start = tail.iter().position(|&u| u == 0)?;
        let run = tail.get(start..)?.iter().take_while(|&&u| u == 0).count();
        Some((i + start, run))
    }

    /// Charges and pins the pages from index `first` on into `slots` (all `None`). On error
    /// nothing is pinned or charged.
    fn pin_slots(&self, src: &Source, first: usize, slots: &mut [Option<PinnedPage>]) -> Result {
        let n = slots.len();
        Self::charge(src, n)?;
        // Cannot overflow: `first` is a page of the range, whose end `new` checked.
        let addr = self.base + first * PAGE_SIZE;
        let res = match &self.kind {
            Kind::User => match src.mm.mmget_not_zero() {
                Some(mm) => pin_user_pages_into(&mm, addr, self.writable, slots),
                None => Err(EFAULT),
            },
            Kind::File(file) => pin_file_pages_into(file, addr as u64, slots),
            Kind::DmaBuf(_) => Err(EINVAL),
        };
        if res.is_err() {
            Self::uncharge(src, n);
        }
        res
    }

    /// Drops a use of pages `first..=last`; pages left without a use are unpinned and
    /// uncharged.
    pub(crate) fn put(&self, first: usize, last: usize) {
        // A broken invariant: `WARN_ON`, so that the kernel-log check sees it.
        if kernel::warn_on!(first > last || last >= self.npages) {
            pr_err!("iommufd_rs: bad page range {first}..={last}\n");
            return;
        }
        if self.is_dmabuf() {
            return;
        }
        let mut st = self.state.lock();
        self.put_locked(&mut st, first, last);
    }

    fn put_locked(&self, st: &mut PagesState, first: usize, last: usize) {
        let mut unpinned = 0usize;
        let mut idx = first;
        while idx <= last {
            let (key, end) = match Self::extent_at(&st.extents, idx, last) {
                Found::In(key, ext_last) => (key, ext_last.min(last)),
                Found::Gap(end) => {
                    kernel::warn_on!(true);
                    pr_err!("iommufd_rs: put of unused pages {idx}..={end}\n");
                    idx = end + 1;
                    continue;
                }
            };
            let Some(ext) = st.extents.get_mut(&key) else {
                break;
            };
            let (a, b) = (idx - key, end - key);
            // Drop the uses; unpin each run of pages left without one.
            let mut run_start = None;
            let mut freed = 0usize;
            for i in a..=b + 1 {
                let emptied = i <= b
                    && match ext.uses.get_mut(i) {
                        Some(u) if *u > 1 => {
                            *u -= 1;
                            false
                        }
                        Some(u) if *u == 1 => {
                            *u = 0;
                            true
                        }
                        _ => {
                            kernel::warn_on!(true);
                            pr_err!("iommufd_rs: put of an unused page {}\n", key + i);
                            false
                        }
                    };
                match (emptied, run_start) {
                    (true, None) => run_start = Some(i),
                    (false, Some(s)) => {
                        if let Some(slots) = ext.pages.get_mut(s..i) {
                            freed += unpin_pages(slots, self.writable);
                        }
                        run_start = None;
                    }
                    _ => {}
                }
            }
            // INVARIANT: the pages unpinned are the ones whose last use went.
            ext.live -= freed;
            let empty = ext.live == 0;
            unpinned += freed;
            if empty {
                drop(st.extents.remove(&key));
            }
            idx = end + 1;
        }
        if unpinned != 0 {
            crate::stats::pinned_add(-(unpinned as i64));
            st.npinned -= unpinned;
            Self::uncharge(&st.src, unpinned);
        }
    }

    /// The page at index `i`, if it is pinned.
    fn page(st: &PagesState, i: usize) -> Option<&PinnedPage> {
        let Found::In(key, _) = Self::extent_at(&st.extents, i, i) else {
            return None;
        };
        st.extents.get(&key)?.pages.get(i - key)?.as_ref()
    }

    fn charge(src: &Source, n: usize) -> Result {
        match src.account {
            AccountMode::None => {}
            AccountMode::User => src
                .user
                .charge_locked_vm(n, memlock_limit_pages(&src.task))?,
            AccountMode::Mm => src.mm.account_locked_vm(n, true, &src.task)?,
        }
        src.mm.add_pinned_vm(n as i64);
        Ok(())
    }

    fn uncharge(src: &Source, n: usize) {
        match src.account {
            AccountMode::None => {}
            AccountMode::User => src.user.uncharge_locked_vm(n),
            AccountMode::Mm => {
                let _ = src.mm.account_locked_vm(n, false, &src.task);
            }
        }
        src.mm.add_pinned_vm(-(n as i64));
    }

    /// Calls `f(index, phys)` for every page of `first..=last`, which the caller holds a use of.
    /// For a revoked dma-buf, `f` is not called.
    pub(crate) fn for_each_phys(
        &self,
        first: usize,
        last: usize,
        mut f: impl FnMut(usize, u64) -> Result,
    ) -> Result {
        if let Kind::DmaBuf(import) = &self.kind {
            // Nothing for a revoked buffer: its areas stay unmapped.
            return import.for_each_phys(self.base, first, last, f);
        }
        // The pages of a run are physically contiguous.
        self.for_each_run(first, last, |i, phys, n| {
            for k in 0..n {
                // CAST: `usize` fits in `u64`; `k` pages of the run cannot overflow it.
                f(i + k, phys + (k as u64) * PAGE_SIZE as u64)?;
            }
            Ok(())
        })
    }

    /// Calls `f(index, phys, n)` for each run of `n` physically contiguous pages from `index` on,
    /// in order, covering `first..=last`, which the caller holds a use of. Runs may be cut
    /// short (at most a page each for a dma-buf); the caller coalesces what follows on. For a
    /// revoked dma-buf, `f` is not called.
    pub(crate) fn for_each_run(
        &self,
        first: usize,
        last: usize,
        mut f: impl FnMut(usize, u64, usize) -> Result,
    ) -> Result {
        if let Kind::DmaBuf(import) = &self.kind {
            return import.for_each_phys(self.base, first, last, |i, p| f(i, p, 1));
        }
        let st = self.state.lock();
        let mut idx = first;
        while idx <= last {
            let (key, end) = match Self::extent_at(&st.extents, idx, last) {
                Found::In(key, ext_last) => (key, ext_last.min(last)),
                Found::Gap(_) => return Err(EINVAL),
            };
            let ext = st.extents.get(&key).ok_or(EINVAL)?;
            while idx <= end {
                let slots = ext.pages.get(idx - key..=end - key).ok_or(EINVAL)?;
                let n = contiguous_pages(slots);
                let page = slots.first().and_then(Option::as_ref).ok_or(EINVAL)?;
                f(idx, page.phys(), n)?;
                idx += n;
            }
        }
        Ok(())
    }

    /// Copies between `buf` and the memory `byte` bytes from the start of the first page. The
    /// caller holds a use of the pages touched.
    pub(crate) fn rw(&self, byte: usize, buf: &mut [u8], write: bool) -> Result {
        if self.is_dmabuf() {
            return Err(EINVAL);
        }
        let st = self.state.lock();
        let mut pos = byte;
        let mut done = 0;
        while done < buf.len() {
            let i = pos / PAGE_SIZE;
            let in_page = pos % PAGE_SIZE;
            let n = core::cmp::min(PAGE_SIZE - in_page, buf.len() - done);
            let page = Self::page(&st, i).ok_or(EINVAL)?;
            let part = buf.get_mut(done..done + n).ok_or(EINVAL)?;
            if write {
                page.write(in_page, part)?;
            } else {
                page.read(in_page, part)?;
            }
            done += n;
            pos += n;
        }
        Ok(())
    }
}

impl Pages {
    /// Copies between `buf` and the memory `byte` bytes from the start of the first page
    /// through the user address of the memory, when that is the same memory: user memory of
    /// the current process whose pages `first..=last` nobody pinned. Returns `false` (having
    /// done nothing) otherwise; the caller then pins.
    ///
    /// The copy runs without the pages' lock, as upstream's: a page fault during it may take
    /// long (userfaultfd, FUSE). A pin that starts meanwhile changes nothing for the copy,
    /// which goes to the process's memory at that address, as upstream's always does.
    pub(crate) fn rw_through_user(
        &self,
        first: usize,
        last: usize,
        byte: usize,
        buf: &mut [u8],
        write: bool,
    ) -> Result<bool> {
        if !matches!(self.kind, Kind::User) {
            return Ok(false);
        }
        {
            let st = self.state.lock();
            if !st.src.mm.is_current() || (first..=last).any(|i| Self::page(&st, i).is_some()) {
                return Ok(false);
            }
        }
        let addr = self.base.checked_add(byte).ok_or(EOVERFLOW)?;
        let user = UserSlice::new(UserPtr::from_addr(addr), buf.len());
        if write {
            user.writer().write_slice(buf)?;
        } else {
            user.reader().read_slice(buf)?;
        }
        Ok(true)
    }
}

/// What [`Pages::extent_at`] found.
enum Found {
    /// In the extent with this first and last page.
    In(usize, usize),
    /// In a gap up to this page.
    Gap(usize),
}

impl Drop for PagesState {
    fn drop(&mut self) {
        if kernel::warn_on!(self.npinned != 0) {
            pr_err!("iommufd_rs: {} pages still pinned at free\n", self.npinned);
            let n = self.npinned;
            crate::stats::pinned_add(-(n as i64));
            // Unpin through the extents' drop; uncharge what they held.
            Pages::uncharge(&self.src, n);
        }
    }
}
