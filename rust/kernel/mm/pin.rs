// SPDX-License-Identifier: GPL-2.0

//! Long-term pinning of user pages, and the locked-memory accounting that goes with it.
//!
//! A subsystem that lets a device reach user memory (an IOMMU mapping, an emulated device reading
//! guest memory) pins the pages with `FOLL_PIN | FOLL_LONGTERM` and charges them to a locked-memory
//! budget: either the `locked_vm` of the user (the method io_uring uses) or the `locked_vm` of the
//! address space (the method of VFIO type1). Both also count the pages in the address space's
//! `pinned_vm`, which is what `/proc/<pid>/status` shows as `VmPin`.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/sched/user.h`](srctree/include/linux/sched/user.h)

use crate::{
    bindings,
    error::{
        code::*,
        to_result,
        Result, //
    },
    mm::{
        Mm,
        MmWithUser, //
    },
    page::{
        BorrowedPage,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    task::Task,
    types::Opaque, //
};
use core::ptr::NonNull;

/// One user page held by a long-term pin (`FOLL_PIN | FOLL_LONGTERM`).
///
/// Dropping it releases the pin.
///
/// It has the layout of a `struct page *`, and `Option<PinnedPage>` that of a nullable one, so
/// that arrays of them can be handed to GUP and to the unpin functions directly.
///
/// # Invariants
///
/// `page` points to a valid `struct page` on which this object owns one `FOLL_PIN` reference.
#[repr(transparent)]
pub struct PinnedPage {
    page: NonNull<bindings::page>,
}

// SAFETY: A pin is not tied to the thread that took it; it may be released from any thread.
unsafe impl Send for PinnedPage {}
// SAFETY: The methods taking `&self` only read the page frame number or copy bytes through a
// temporary kernel mapping; they may run in parallel.
unsafe impl Sync for PinnedPage {}

impl PinnedPage {
    /// Returns the raw `struct page` pointer.
    pub fn as_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }

    /// Returns the page frame number.
    pub fn pfn(&self) -> usize {
        // SAFETY: By the type invariant the page is valid (and stays valid while pinned).
        unsafe { bindings::page_to_pfn(self.page.as_ptr()) }
    }

    /// Returns the physical address of the start of the page.
    pub fn phys(&self) -> u64 {
        (self.pfn() as u64) << PAGE_SHIFT
    }

    /// Copies `dst.len()` bytes from the page, starting at `offset`, into `dst`.
    ///
    /// Returns [`EINVAL`] if the range does not fit in the page.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result {
        // SAFETY: By the type invariant the page is valid, and the pin keeps it valid for the
        // lifetime of the borrow.
        let page = unsafe { BorrowedPage::from_raw(self.page) };
        // SAFETY: `dst` is valid for writing `dst.len()` bytes. The page is user memory that no
        // Rust reference points into; user space or a device may change it concurrently, which
        // only affects the bytes copied, as with `copy_from_user`.
        unsafe { page.read_raw(dst.as_mut_ptr(), offset, dst.len()) }
    }

    /// Copies `src` into the page, starting at `offset`.
    ///
    /// Returns [`EINVAL`] if the range does not fit in the page.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result {
        // SAFETY: By the type invariant the page is valid, and the pin keeps it valid for the
        // lifetime of the borrow.
        let page = unsafe { BorrowedPage::from_raw(self.page) };
        // SAFETY: `src` is valid for reading `src.len()` bytes. The page is user memory that no
        // Rust reference points into (see `read`).
        unsafe { page.write_raw(src.as_ptr(), offset, src.len()) }
    }

    /// Releases the pin and marks the page dirty, for pages a device may have written to.
    pub fn unpin_dirty(self) {
        let page = self.page.as_ptr();
        core::mem::forget(self);
        // SAFETY: By the type invariant we own one pin on `page`; `forget` above makes sure it is
        // released only here.
        unsafe { bindings::unpin_user_page_range_dirty_lock(page, 1, true) };
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one pin on the page.
        unsafe { bindings::unpin_user_page(self.page.as_ptr()) };
    }
}

/// Most pages handed to GUP in one call of [`pin_user_pages_into`] (GUP takes an `int`).
const PIN_CALL_MAX: usize = 1 << 20;

/// Pins the user pages of `mm` from the page-aligned address `start` on into `out`, one page per
/// slot, every slot of which must be `None`.
///
/// `write` requests pages the device may write to (`FOLL_WRITE`). GUP writes straight into
/// `out`, as many pages per call as it gives (the fast path when `mm` is the address space of the
/// current task, `pin_user_pages_remote` otherwise). On error, the pages pinned by this call are
/// released again and `out` is all `None`, as it was.
pub fn pin_user_pages_into(
    mm: &MmWithUser,
    start: usize,
    write: bool,
    out: &mut [Option<PinnedPage>],
) -> Result {
    if start % PAGE_SIZE != 0 || out.iter().any(Option::is_some) {
        return Err(EINVAL);
    }
    let mut gup_flags = bindings::FOLL_LONGTERM;
    if write {
        gup_flags |= bindings::FOLL_WRITE;
    }
    let local = core::ptr::eq(current_mm(), mm.as_raw());
    let nr = out.len();
    let mut done = 0;
    while done < nr {
        let want = core::cmp::min(PIN_CALL_MAX, nr - done);
        let res = start
            .checked_add(done * PAGE_SIZE)
            .ok_or(EFAULT)
            .and_then(|addr| {
                let slots = out.get_mut(done..done + want).ok_or(EINVAL)?;
                // CAST: `Option<PinnedPage>` has the layout of a nullable `struct page *` (see
                // the type's documentation).
                let ptr = slots.as_mut_ptr().cast::<*mut bindings::page>();
                // SAFETY: `ptr` has room for `want` page pointers, all null now (`None`); GUP
                // writes a pinned page into each of the first `got` and leaves the rest.
                let got = unsafe { gup_call(mm, local, addr, want, gup_flags, ptr) };
                if got < 0 {
                    return Err(crate::error::Error::from_errno(got as _));
                }
                if got == 0 {
                    return Err(EFAULT);
                }
                // CAST: `got` is positive and at most `want`.
                Ok(core::cmp::min(got as usize, want))
            });
        match res {
            // INVARIANT: GUP filled `got` slots, each with one pin that the slot now owns.
            Ok(got) => done += got,
            Err(e) => {
                // Only this call's pages are in `out` (it was all `None`).
                unpin_pages(out, false);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// One GUP call: pins up to `nr` pages of `mm` from `addr` into `pages`. Returns the number
/// pinned or a negative errno.
///
/// # Safety
///
/// `pages` must be valid for writing `nr` page pointers.
unsafe fn gup_call(
    mm: &MmWithUser,
    local: bool,
    addr: usize,
    nr: usize,
    gup_flags: u32,
    pages: *mut *mut bindings::page,
) -> isize {
    if local {
        // SAFETY: By the safety requirements `pages` has room for `nr` page pointers; `mm` is
        // the current address space, which the fast path walks.
        let n = unsafe { bindings::pin_user_pages_fast(addr, nr as _, gup_flags as _, pages) };
        return n as isize;
    }
    let mut locked: crate::ffi::c_int = 1;
    // SAFETY: `mm` has a user (`MmWithUser`), so its mappings stay valid while we hold the mmap
    // lock taken here.
    unsafe { bindings::mmap_read_lock(mm.as_raw()) };
    // SAFETY: The mmap lock is held (`locked == 1`); by the safety requirements `pages` has room
    // for `nr` pointers.
    let got = unsafe {
        bindings::pin_user_pages_remote(
            mm.as_raw(),
            addr,
            nr as _,
            gup_flags as _,
            pages,
            &mut locked,
        )
    };
    if locked != 0 {
        // SAFETY: GUP left the lock held (`locked != 0`), so we release it.
        unsafe { bindings::mmap_read_unlock(mm.as_raw()) };
    }
    got as isize
}

/// Returns how many pages from the start of `pages` are pinned and physically contiguous: 0 when
/// the first slot is `None`. A run may end early where the page frames are contiguous but their
/// `struct page`s are not (`num_pages_contiguous()`); the caller goes on from there.
pub fn contiguous_pages(pages: &[Option<PinnedPage>]) -> usize {
    let pinned = pages.iter().take_while(|p| p.is_some()).count();
    if pinned == 0 {
        return 0;
    }
    // CAST: `Option<PinnedPage>` has the layout of a nullable `struct page *`.
    let ptr = pages.as_ptr().cast::<*mut bindings::page>().cast_mut();
    // SAFETY: The first `pinned` slots at `ptr` are valid pinned pages; C only reads them
    // (and the `struct page`s they point to), and reads at least one (`pinned >= 1`).
    unsafe { bindings::num_pages_contiguous(ptr, pinned) }
}

/// Releases the pins of the pages in `pages`, leaving every slot `None`, and returns how many
/// there were. With `dirty`, the pages are marked dirty first (a device may have written to
/// them). Each run of consecutive pinned slots goes to `unpin_user_pages_dirty_lock` in one call,
/// which releases the pins of the pages of one folio together.
pub fn unpin_pages(pages: &mut [Option<PinnedPage>], dirty: bool) -> usize {
    let mut unpinned = 0;
    let mut i = 0;
    while i < pages.len() {
        let run = pages
            .get(i..)
            .map_or(0, |rest| rest.iter().take_while(|p| p.is_some()).count());
        if run == 0 {
            i += 1;
            continue;
        }
        if let Some(slots) = pages.get_mut(i..i + run) {
            // CAST: `Option<PinnedPage>` has the layout of a nullable `struct page *`.
            let ptr = slots.as_mut_ptr().cast::<*mut bindings::page>();
            // SAFETY: The `run` slots at `ptr` each own one pin (they are `Some`); C releases
            // exactly those pins, and the slots are emptied below without dropping them.
            unsafe { bindings::unpin_user_pages_dirty_lock(ptr, run as _, dirty) };
            for slot in slots.iter_mut() {
                // The pin went with the call above.
                core::mem::forget(slot.take());
            }
        }
        unpinned += run;
        i += run;
    }
    unpinned
}

fn current_mm() -> *mut bindings::mm_struct {
    // SAFETY: Reads `current->mm`, which is stable for the current task.
    unsafe { bindings::get_current_mm_raw() }
}

/// A reference-counted `struct user_struct`, the per-user accounting record.
///
/// # Invariants
///
/// Values are always reference counted with `get_uid`/`free_uid`.
#[repr(transparent)]
pub struct User(Opaque<bindings::user_struct>);

// SAFETY: `free_uid` may be called from any thread.
unsafe impl Send for User {}
// SAFETY: The methods only touch atomics.
unsafe impl Sync for User {}

// SAFETY: By the type invariant, `get_uid`/`free_uid` manage the lifetime.
unsafe impl AlwaysRefCounted for User {
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means the refcount is non-zero.
        unsafe { bindings::get_uid(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up one reference; `User` is transparent over `user_struct`.
        unsafe { bindings::free_uid(obj.cast().as_ptr()) };
    }
}

impl User {
    /// Returns the user of the current task's credentials.
    pub fn current() -> ARef<User> {
        // SAFETY: `get_current_user` returns `current_user()` with a new reference.
        let ptr = unsafe { bindings::get_current_user() };
        // SAFETY: `ptr` is valid and carries the reference `ARef` takes over; `User` is
        // transparent over `user_struct`.
        unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast())) }
    }

    fn locked_vm(&self) -> *mut bindings::atomic_long_t {
        // SAFETY: `self.0` is a valid `user_struct`; the helper only forms a pointer to the
        // field (through C, so the layout is the one the C compiler chose).
        unsafe { bindings::user_locked_vm(self.0.get()) }
    }

    /// Whether this is the user of the current task's credentials.
    pub fn is_current(&self) -> bool {
        let cur = User::current();
        core::ptr::eq(cur.0.get(), self.0.get())
    }

    /// Number of pages charged to this user's `locked_vm`.
    pub fn locked_vm_pages(&self) -> usize {
        // SAFETY: The pointer is to a valid atomic.
        unsafe { bindings::atomic_long_read(self.locked_vm()) as usize }
    }

    /// Charges `npages` to the user's `locked_vm` unless the total would exceed `limit` pages, in
    /// which case it returns [`ENOMEM`] and charges nothing.
    pub fn charge_locked_vm(&self, npages: usize, limit: usize) -> Result {
        let v = self.locked_vm();
        // SAFETY: The pointer is to a valid atomic.
        let mut cur = unsafe { bindings::atomic_long_read(v) };
        loop {
            let new = (cur as usize).checked_add(npages).ok_or(ENOMEM)?;
            if new > limit {
                return Err(ENOMEM);
            }
            // SAFETY: The pointer is to a valid atomic; `cur` is a valid `long` to update.
            if unsafe { bindings::atomic_long_try_cmpxchg(v, &mut cur, new as _) } {
                return Ok(());
            }
        }
    }

    /// Removes `npages` from the user's `locked_vm`.
    pub fn uncharge_locked_vm(&self, npages: usize) {
        // SAFETY: The pointer is to a valid atomic.
        unsafe { bindings::atomic_long_sub(npages as _, self.locked_vm()) };
    }
}

/// Returns the thread group leader of the current task, with a reference.
///
/// The layout of `struct task_struct` is read in C: bindgen's view of it is not reliable when
/// the kernel is built with GCC.
pub fn current_group_leader() -> ARef<Task> {
    // SAFETY: The helper returns `current->group_leader` with a new reference.
    let ptr = unsafe { bindings::get_current_group_leader() };
    // SAFETY: `ptr` is a valid task carrying the reference `ARef` takes over; `Task` is
    // transparent over `task_struct`.
    unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast())) }
}

/// Returns the `RLIMIT_MEMLOCK` soft limit of `task`, in pages.
pub fn memlock_limit_pages(task: &Task) -> usize {
    // SAFETY: `task` is a valid task; `task_rlimit` reads its signal struct's limits.
    let bytes = unsafe { bindings::task_rlimit(task.as_ptr(), bindings::RLIMIT_MEMLOCK) };
    (bytes as usize) >> PAGE_SHIFT
}

/// Returns whether the current task may lock memory beyond its limits (`CAP_IPC_LOCK`).
pub fn capable_ipc_lock() -> bool {
    capable(bindings::CAP_IPC_LOCK)
}

/// Returns whether the current task has the capability `cap` (`CAP_*`).
pub fn capable(cap: u32) -> bool {
    // SAFETY: `capable` has no preconditions; an unknown capability number is refused by it.
    unsafe { bindings::capable(cap as _) }
}

impl Mm {
    /// Adds `npages` to the address space's `pinned_vm` (or removes them when negative).
    pub fn add_pinned_vm(&self, npages: i64) {
        // SAFETY: `self.as_raw()` is a valid `mm_struct` (we hold an `mmgrab` reference).
        unsafe { bindings::mm_add_pinned_vm(self.as_raw(), npages) };
    }

    /// Charges (`inc`) or uncharges `npages` to the address space's `locked_vm` on behalf of
    /// `task`, honouring `task`'s `RLIMIT_MEMLOCK` without any capability bypass.
    ///
    /// Returns [`ENOMEM`] if the charge would exceed the limit.
    pub fn account_locked_vm(&self, npages: usize, inc: bool, task: &Task) -> Result {
        let mm = self.as_raw();
        // SAFETY: `mm` is a valid `mm_struct` (we hold an `mmgrab` reference).
        unsafe { bindings::mmap_write_lock(mm) };
        // SAFETY: The mmap lock is held for writing, as `__account_locked_vm` requires; `task`
        // is a valid task.
        let rc =
            unsafe { bindings::__account_locked_vm(mm, npages as _, inc, task.as_ptr(), false) };
        // SAFETY: Taken above.
        unsafe { bindings::mmap_write_unlock(mm) };
        to_result(rc)
    }

    /// Returns the address space of the current task, if it has one.
    pub fn current() -> Option<ARef<Mm>> {
        let mm = current_mm();
        // SAFETY: `current->mm` is valid while the current task runs; `Mm` is transparent over
        // `mm_struct`, and `ARef::from` takes an `mmgrab` reference.
        NonNull::new(mm).map(|p| ARef::from(unsafe { Mm::from_raw(p.as_ptr()) }))
    }

    /// Returns whether this is the address space of the current task.
    pub fn is_current(&self) -> bool {
        core::ptr::eq(current_mm(), self.as_raw())
    }
}

/// What [`user_page_info`] found about one user page.
pub struct UserPageInfo {
    /// The page frame number.
    pub pfn: usize,
    /// Long-term pins on the page (`page_ref_count / GUP_PIN_COUNTING_BIAS`); `None` for a
    /// compound page, whose pins are counted elsewhere.
    pub pins: Option<u32>,
}

/// Looks up the page mapped at the user address `addr` of the current process.
///
/// Meant for tests that check that pinning is balanced and maps the right pages.
pub fn user_page_info(addr: usize) -> Result<UserPageInfo> {
    let mut page: *mut bindings::page = core::ptr::null_mut();
    // SAFETY: `page` has room for one page pointer.
    let n = unsafe { bindings::get_user_pages_fast(addr, 1, 0, &mut page) };
    if n < 0 {
        return Err(crate::error::Error::from_errno(n));
    }
    if n != 1 || page.is_null() {
        return Err(EFAULT);
    }
    // SAFETY: GUP returned `page` with a reference we hold until `put_page` below.
    let compound = unsafe { bindings::PageCompound(page) };
    let pins = if compound {
        None
    } else {
        // SAFETY: As above.
        let refs = unsafe { bindings::page_ref_count(page) } as u32;
        Some(refs / bindings::GUP_PIN_COUNTING_BIAS)
    };
    // SAFETY: As above.
    let pfn = unsafe { bindings::page_to_pfn(page) };
    // SAFETY: Drops the reference GUP took.
    unsafe { bindings::put_page(page) };
    Ok(UserPageInfo { pfn, pins })
}

/// Pins the pages of the memfd (shmem or hugetlbfs file) `file` from the page-aligned file
/// offset `offset` on into `out`, one page per slot, every slot of which must be `None`. On
/// error, the pages pinned by this call are released and `out` is all `None`, as it was. Other
/// files give `EINVAL`, as does a range past the end of the file.
pub fn pin_file_pages_into(
    file: &crate::fs::File,
    offset: u64,
    out: &mut [Option<PinnedPage>],
) -> Result {
    if offset % PAGE_SIZE as u64 != 0 || out.iter().any(Option::is_some) {
        return Err(EINVAL);
    }
    let mut res = Ok(());
    for (i, slot) in out.iter_mut().enumerate() {
        res = pin_file_page(file, offset, i).map(|page| *slot = Some(page));
        if res.is_err() {
            break;
        }
    }
    if res.is_err() {
        unpin_pages(out, false);
    }
    res
}

/// Pins page `i` of `file` from the page-aligned offset `offset`.
fn pin_file_page(file: &crate::fs::File, offset: u64, i: usize) -> Result<PinnedPage> {
    let start = u64::try_from(i)
        .ok()
        .and_then(|i| i.checked_mul(PAGE_SIZE as u64))
        .and_then(|o| offset.checked_add(o))
        .ok_or(EOVERFLOW)?;
    // `start` is page aligned: its page's last byte cannot overflow.
    let end = start | (PAGE_SIZE as u64 - 1);
    let mut folio: *mut bindings::folio = core::ptr::null_mut();
    let mut in_folio: crate::ffi::c_ulong = 0;
    // SAFETY: `file` is a valid file; `folio` and `in_folio` are valid for one entry.
    let n = unsafe {
        bindings::memfd_pin_folios(
            file.as_ptr(),
            start as _,
            end as _,
            &mut folio,
            1,
            &mut in_folio,
        )
    };
    if n < 0 {
        return Err(crate::error::Error::from_errno(n as i32));
    }
    if n != 1 || folio.is_null() {
        return Err(EFAULT);
    }
    // SAFETY: `folio` is pinned once; the page `in_folio / PAGE_SIZE` lies in it.
    let page = unsafe { bindings::folio_page(folio, (in_folio as usize) >> PAGE_SHIFT) };
    let Some(page) = NonNull::new(page) else {
        // SAFETY: Release the pin taken above.
        unsafe { bindings::unpin_folio(folio) };
        return Err(EFAULT);
    };
    // INVARIANT: Unpinning any page of a folio releases one pin of the folio, so this page
    // carries the pin `memfd_pin_folios` took.
    Ok(PinnedPage { page })
}

/// Takes a reference to the file of the descriptor `fd`, to pin pages of it later.
pub fn fget_for_pinning(fd: i32) -> Result<ARef<crate::fs::File>> {
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = crate::fs::LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: The file is only used to pin its pages (`memfd_pin_folios`), never for I/O at a
    // file position, so no `fdget_pos` section can be affected by sharing it across threads.
    Ok(unsafe { crate::fs::LocalFile::assume_no_fdget_pos(file) })
}
