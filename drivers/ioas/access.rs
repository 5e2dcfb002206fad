// SPDX-License-Identifier: GPL-2.0

//! In-kernel access objects: emulated devices (and the selftest) pinning, reading and writing
//! the memory an IOAS maps, without an iommu domain.
//!
//! An access is attached to one IOAS. Pages it pins stay pinned until it unpins them; when user
//! space unmaps an area an access pinned, the access is told to unpin first (an emulated device
//! must stop using the memory), and the unmap waits for that.

use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    }, //
};

use crate::{
    ioas::io_pagetable::PinSeg,
    ioas::Ioas,
    object::{
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    vfio::api::errno,
    IommufdCtx, //
};

/// One pinned range, as the owner of the access sees it.
struct Item {
    id: u32,
    iova: u64,
    length: u64,
    segs: KVec<PinSeg>,
}

impl Item {
    /// Whether the item touches `[iova, last]`.
    fn overlaps(&self, iova: u64, last: u64) -> bool {
        let item_last = self.iova.saturating_add(self.length.saturating_sub(1));
        self.iova <= last && iova <= item_last
    }
}

struct AccessState {
    /// The IOAS (held with a user reference, so it cannot be destroyed under us).
    ioas: Option<ObjectRef>,
    items: KVec<Item>,
    next_id: u32,
    /// The access is leaving its IOAS and waits for its owner to unpin (upstream's
    /// `access->ioas == NULL` with `ioas_unpin` still set): no new pin or read/write starts,
    /// unpins still work, and another change fails with `EBUSY`.
    leaving: bool,
}

/// The in-kernel owner of an access created through `iommufd_access_create()` (an emulated VFIO
/// device): its `struct iommufd_access_ops` and their data.
struct KernelOwner {
    ops: *const c_void,
    data: *mut c_void,
    /// The ops have `unmap`: only then may the owner pin pages.
    can_unmap: bool,
}

// SAFETY: The owner's ops and data are for use from any thread (upstream calls `ops->unmap` from
// whichever thread unmaps).
unsafe impl Send for KernelOwner {}
// SAFETY: See above; the pointers are only passed back to C.
unsafe impl Sync for KernelOwner {}

extern "C" {
    /// `drivers/vfio/api.c`: calls `ops->unmap(data, iova, length)`.
    fn iommufd_rs_access_call_unmap(ops: *const c_void, data: *mut c_void, iova: u64, length: u64);
    /// `drivers/vfio/api.c`: bit 0 `ops->needs_pin_pages`, bit 1 `ops->unmap` is set.
    fn iommufd_rs_access_ops_flags(ops: *const c_void) -> u32;
}

/// An access object.
#[pin_data(PinnedDrop)]
pub(crate) struct Access {
    /// Alignment the access needs of IOVAs: `PAGE_SIZE` for accesses that pin pages.
    iova_alignment: u64,
    /// The in-kernel owner, told to unpin when user space unmaps what it pinned; `None` for the
    /// selftest's accesses, whose pins the access drops itself.
    owner: Option<KernelOwner>,
    /// Set once the access is destroyed (`iommufd_access_destroy()` or the selftest's access
    /// file released): no unmap may notify it any more.
    retired: Atomic<bool>,
    /// Unmap notifications running on the access.
    notifying: Atomic<u32>,
    #[pin]
    state: Mutex<AccessState>,
}

impl Access {
    /// Creates an access; `pins` for one that will pin pages.
    pub(crate) fn new(pins: bool) -> Result<Arc<Access>> {
        Self::with_owner(pins, None)
    }

    fn with_owner(pins: bool, owner: Option<KernelOwner>) -> Result<Arc<Access>> {
        Arc::pin_init(
            pin_init!(Access {
                iova_alignment: if pins { PAGE_SIZE as u64 } else { 1 },
                owner,
                retired: Atomic::new(false),
                notifying: Atomic::new(0),
                state <- new_mutex!(AccessState {
                    ioas: None,
                    items: KVec::new(),
                    next_id: 0,
                    leaving: false,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Whether the access pins pages (and so needs page-aligned IOVAs).
    pub(crate) fn pins_pages(&self) -> bool {
        self.iova_alignment == PAGE_SIZE as u64
    }

    fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    fn ioas_of(obj: &ObjectRef) -> Result<&Arc<Ioas>> {
        obj.as_ioas().ok_or(ENOENT)
    }

    /// Attaches the access to the IOAS `ioas_id`, or moves it there. Moving unpins everything
    /// the access pinned in the old IOAS.
    pub(crate) fn attach(&self, ictx: &IommufdCtx, ioas_id: u32) -> Result {
        let new = ictx.objects.get(ioas_id, ObjectType::Ioas)?;
        self.change_ioas(Some(new))
    }

    /// Moves the access to `new` (`None`: leaves its IOAS), upstream's
    /// `iommufd_access_change_ioas()`. Before anything it pinned in the old IOAS is unpinned, an
    /// in-kernel owner is asked to unpin everything (`ops->unmap(data, 0, ULONG_MAX)`, without
    /// the lock); meanwhile no new pin starts. What the owner left pinned is unpinned then.
    fn change_ioas(&self, new: Option<ObjectRef>) -> Result {
        let key = self.key();
        let mut st = self.state.lock();
        if st.leaving {
            // A concurrent change is waiting for the owner.
            return Err(EBUSY);
        }
        if let (Some(old), Some(new)) = (&st.ioas, &new) {
            if old.id() == new.id() {
                return Ok(());
            }
        }
        if let Some(new) = &new {
            Self::ioas_of(new)?
                .iopt
                .add_access(key, self.iova_alignment)?;
        }
        if st.ioas.is_some() {
            if let Some(owner) = self.owner.as_ref().filter(|o| o.can_unmap) {
                st.leaving = true;
                drop(st);
                // SAFETY: The owner's ops and data are valid until the access is destroyed, and
                // the caller is the owner or its destroy.
                unsafe { iommufd_rs_access_call_unmap(owner.ops, owner.data, 0, u64::MAX) };
                st = self.state.lock();
                st.leaving = false;
            }
        }
        let items = core::mem::take(&mut st.items);
        let old = core::mem::replace(&mut st.ioas, new.map(ObjectRef::into_long_term));
        if let Some(old) = old {
            if let Ok(ioas) = Self::ioas_of(&old) {
                for item in items.iter() {
                    ioas.iopt.access_unpin(&item.segs);
                }
                ioas.iopt.remove_access(key);
            }
        }
        Ok(())
    }

    /// Pins `[iova, iova + length)`; returns the id of the new item.
    pub(crate) fn pin(&self, iova: u64, length: u64, write: bool) -> Result<(u32, KVec<u64>)> {
        let mut st = self.state.lock();
        if st.leaving {
            return Err(ENOENT);
        }
        st.items.reserve(1, GFP_KERNEL)?;
        let ioas_obj = st.ioas.as_ref().ok_or(ENOENT)?;
        let ioas = Self::ioas_of(ioas_obj)?.clone();
        let segs = ioas.iopt.access_pin(iova, length, write)?;
        let mut phys = KVec::new();
        for seg in segs.iter() {
            if let Err(e) = seg.pages.for_each_phys(seg.first, seg.last, |_, p| {
                phys.push(p, GFP_KERNEL)?;
                Ok(())
            }) {
                ioas.iopt.access_unpin(&segs);
                return Err(e);
            }
        }
        let id = st.next_id;
        st.next_id = st.next_id.wrapping_add(1);
        let _ = st.items.push(
            Item {
                id,
                iova,
                length,
                segs,
            },
            GFP_KERNEL,
        );
        Ok((id, phys))
    }

    /// Unpins the item `id`.
    pub(crate) fn unpin(&self, id: u32) -> Result {
        let mut st = self.state.lock();
        let pos = st.items.iter().position(|i| i.id == id).ok_or(ENOENT)?;
        let item = st.items.remove(pos).map_err(|_| ENOENT)?;
        if let Some(obj) = &st.ioas {
            if let Ok(ioas) = Self::ioas_of(obj) {
                ioas.iopt.access_unpin(&item.segs);
            }
        }
        Ok(())
    }

    /// Unpins every item, as an owner does before it destroys its access (the selftest's
    /// access file on release), so that no unmap waits for a destroyed access to unpin.
    pub(crate) fn unpin_all(&self) {
        let mut st = self.state.lock();
        let items = core::mem::take(&mut st.items);
        if let Some(obj) = &st.ioas {
            if let Ok(ioas) = Self::ioas_of(obj) {
                for item in items.iter() {
                    ioas.iopt.access_unpin(&item.segs);
                }
            }
        }
    }

    /// Reads or writes `buf` at `iova`.
    pub(crate) fn rw(&self, iova: u64, buf: &mut [u8], write: bool, slow: bool) -> Result {
        let st = self.state.lock();
        if st.leaving {
            return Err(ENOENT);
        }
        let ioas_obj = st.ioas.as_ref().ok_or(ENOENT)?;
        Self::ioas_of(ioas_obj)?
            .iopt
            .access_rw(iova, buf, write, slow)
    }

    /// Whether the access has pinned anything of `[iova, iova + length)` in `ioas`.
    fn pinned_in(&self, ioas: &Ioas, iova: u64, length: u64) -> bool {
        let st = self.state.lock();
        let Some(Ok(mine)) = st.ioas.as_ref().map(Self::ioas_of) else {
            return false;
        };
        if !core::ptr::eq(&**mine, ioas) {
            return false;
        }
        let last = iova.saturating_add(length.saturating_sub(1));
        st.items.iter().any(|it| it.overlaps(iova, last))
    }

    /// Leaves the IOAS, unpinning whatever is still pinned.
    pub(crate) fn detach(&self) {
        // Only fails while a concurrent change waits for the owner, which then leaves the IOAS
        // itself (upstream WARNs: detach and change race only in a broken owner).
        let _ = self.change_ioas(None);
    }

    /// Whether the access is attached to an IOAS.
    fn is_attached(&self) -> bool {
        self.state.lock().ioas.is_some()
    }

    /// Unpins the pin of exactly `[iova, iova + length)` (`ENOENT` if there is none).
    fn unpin_range(&self, iova: u64, length: u64) -> Result {
        let id = {
            let st = self.state.lock();
            st.items
                .iter()
                .find(|i| i.iova == iova && i.length == length)
                .map(|i| i.id)
                .ok_or(ENOENT)?
        };
        self.unpin(id)
    }

    /// The access was destroyed and no notification is running: any later one is a bug (a
    /// callback into an owner that may be gone), which `unmap_notify` warns about.
    pub(crate) fn retire(&self) {
        kernel::warn_on!(self.notifying.load(Relaxed) != 0);
        self.retired.store(true, Relaxed);
    }

    /// `ioas` is unmapping `[iova, iova + length)`: unpin every item that touches it.
    ///
    /// The caller holds a short-term use of the access's object, which its destroyer waits for.
    fn unmap_notify(&self, ioas: &Ioas, iova: u64, length: u64) {
        if kernel::warn_on!(self.retired.load(Relaxed)) {
            return;
        }
        self.notifying.fetch_add(1, Relaxed);
        self.unmap_notify_locked(ioas, iova, length);
        self.notifying.fetch_sub(1, Relaxed);
    }

    fn unmap_notify_locked(&self, ioas: &Ioas, iova: u64, length: u64) {
        if let Some(owner) = &self.owner {
            if owner.can_unmap && self.pinned_in(ioas, iova, length) {
                // The owner unpins from its callback (`iommufd_access_unpin_pages()`), which
                // takes the lock: it is not held here. The unmap checks again afterwards.
                // SAFETY: The owner's ops and data are valid until the access is destroyed,
                // which cannot happen during the callback (the caller holds a reference).
                unsafe { iommufd_rs_access_call_unmap(owner.ops, owner.data, iova, length) };
            }
            return;
        }
        let mut st = self.state.lock();
        let Some(obj) = &st.ioas else {
            return;
        };
        let Ok(mine) = Self::ioas_of(obj) else {
            return;
        };
        if !core::ptr::eq(&**mine, ioas) {
            return;
        }
        let mine = mine.clone();
        let last = iova.saturating_add(length.saturating_sub(1));
        let mut i = 0;
        while i < st.items.len() {
            let hit = st.items.get(i).is_some_and(|it| it.overlaps(iova, last));
            if hit {
                if let Ok(item) = st.items.remove(i) {
                    mine.iopt.access_unpin(&item.segs);
                }
            } else {
                i += 1;
            }
        }
    }
}

impl Drop for AccessState {
    fn drop(&mut self) {
        // The access is going away: unpin what is left and leave the IOAS.
        if let Some(obj) = self.ioas.take() {
            if let Ok(ioas) = Access::ioas_of(&obj) {
                for item in self.items.iter() {
                    ioas.iopt.access_unpin(&item.segs);
                }
            }
            drop(obj);
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Access {
    fn drop(self: Pin<&mut Self>) {
        let key = self.key();
        let st = self.state.lock();
        if let Some(obj) = &st.ioas {
            if let Ok(ioas) = Self::ioas_of(obj) {
                ioas.iopt.remove_access(key);
            }
        }
    }
}

/// Tells every access of `ioas` that `[iova, iova + length)` is being unmapped, so that it
/// unpins what it pinned there.
pub(crate) fn notify_unmap(ictx: &IommufdCtx, ioas: &Ioas, iova: u64, length: u64) {
    ictx.objects.for_each(ObjectType::Access, |obj| {
        if let Some(access) = obj.as_access() {
            access.unmap_notify(ioas, iova, length);
        }
    });
}

/// `IOMMUFD_ACCESS_RW_WRITE`: pin for writing / write into the IOAS.
const IOMMUFD_ACCESS_RW_WRITE: u32 = 1 << 0;
/// `IOMMUFD_ACCESS_RW_KTHREAD`: the caller is a kernel thread, the user address cannot be used.
const IOMMUFD_ACCESS_RW_KTHREAD: u32 = 1 << 1;

/// An access created by an in-kernel user (`struct iommufd_access *` in C, see
/// `drivers/vfio/api.rs`): the ACCESS object, a long-term use of it (user space cannot destroy
/// it) and a reference to the context.
pub(crate) struct KernelAccess {
    ictx: Arc<IommufdCtx>,
    access: Arc<Access>,
    /// The owner's use of the object; taken when the access is destroyed.
    obj: Option<ObjectRef>,
    /// The object's id.
    id: u32,
}

impl KernelAccess {
    fn create(ictx: Arc<IommufdCtx>, ops: *const c_void, data: *mut c_void) -> Result<KBox<Self>> {
        // SAFETY: `ops` is the caller's valid ops table.
        let flags = unsafe { iommufd_rs_access_ops_flags(ops) };
        let owner = KernelOwner {
            ops,
            data,
            can_unmap: flags & 2 != 0,
        };
        let access = Access::with_owner(flags & 1 != 0, Some(owner))?;
        let new = ictx.objects.alloc(ObjectKind::Access(access.clone()))?;
        let id = new.id();
        new.finalize()?;
        let obj = ictx.objects.get(id, ObjectType::Access)?.into_long_term();
        // If the allocation fails, dropping the new `KernelAccess` takes the object out again.
        let b = KBox::new(
            KernelAccess {
                ictx,
                access,
                obj: Some(obj),
                id,
            },
            GFP_KERNEL,
        )?;
        Ok(b)
    }
}

impl Drop for KernelAccess {
    fn drop(&mut self) {
        // `iommufd_access_destroy()`: once no unmap is notifying the access any more (and none
        // can start), it leaves its IOAS and the object goes. No callback into the owner runs
        // after this returns.
        if let Some(obj) = self.obj.take() {
            let access = &self.access;
            self.ictx
                .objects
                .destroy_user(&self.ictx, obj, || access.detach());
            self.access.retire();
        }
    }
}

/// Borrows the access behind a `struct iommufd_access *`.
///
/// # Safety
///
/// `access` must come from [`iommufd_rs_access_create`] and not be destroyed yet.
unsafe fn kaccess<'a>(access: *const KernelAccess) -> &'a KernelAccess {
    // SAFETY: By the function's safety requirements the box is alive.
    unsafe { &*access }
}

/// `iommufd_access_create()`: a new access of the context for an emulated device; `ops` tell it
/// whether the device pins pages and how to make it unpin.
///
/// # Safety
///
/// `ictx` must be a live context reference (`drivers/vfio/api.rs`); `ops` and `data` must stay
/// valid until the access is destroyed; `out` and `id` must be valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_create(
    ictx: *const IommufdCtx,
    ops: *const c_void,
    data: *mut c_void,
    out: *mut *mut KernelAccess,
    id: *mut u32,
) -> c_int {
    // SAFETY: The context reference is live by the function's safety requirements.
    let ctx: Arc<IommufdCtx> = unsafe { crate::vfio::api::ctx(ictx) }.into();
    match KernelAccess::create(ctx, ops, data) {
        Ok(b) => {
            let obj_id = b.id;
            // SAFETY: `out` and `id` are valid for writes.
            unsafe {
                *id = obj_id;
                *out = KBox::into_raw(b);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_access_destroy()`: unpins what is left, leaves the IOAS and destroys the object.
///
/// # Safety
///
/// `access` must come from [`iommufd_rs_access_create`] and not be destroyed yet; it is freed.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_destroy(access: *mut KernelAccess) {
    // SAFETY: The box was handed out by `iommufd_rs_access_create` and is given back once.
    drop(unsafe { KBox::from_raw(access) });
}

/// `iommufd_access_attach()` (`replace` false: `EINVAL` if attached) and
/// `iommufd_access_replace()` (`replace` true: `ENOENT` if not attached).
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_attach(
    access: *const KernelAccess,
    ioas_id: u32,
    replace: bool,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    let attached = ka.access.is_attached();
    if attached != replace {
        return if replace { ENOENT } else { EINVAL }.to_errno();
    }
    errno(ka.access.attach(&ka.ictx, ioas_id))
}

/// `iommufd_access_detach()`.
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_detach(access: *const KernelAccess) {
    // SAFETY: By the function's safety requirements.
    unsafe { kaccess(access) }.access.detach();
}

/// `iommufd_access_pin_pages()`: pins `[iova, iova + length)` and writes the page frame numbers
/// of its pages to `out_pfns` (the C shim turns them into `struct page` pointers).
///
/// # Safety
///
/// `access` must be a live access; `out_pfns` must have room for every page the range touches.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_pin_pages(
    access: *const KernelAccess,
    iova: usize,
    length: usize,
    out_pfns: *mut usize,
    flags: u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    let can_unmap = ka.access.owner.as_ref().is_some_and(|o| o.can_unmap);
    if !ka.access.pins_pages() || !can_unmap || length == 0 {
        return EINVAL.to_errno();
    }
    if iova.checked_add(length - 1).is_none() {
        return EOVERFLOW.to_errno();
    }
    let write = flags & IOMMUFD_ACCESS_RW_WRITE != 0;
    match ka.access.pin(iova as u64, length as u64, write) {
        Ok((_, phys)) => {
            for (i, p) in phys.iter().enumerate() {
                // SAFETY: The caller's array has room for every page of the range, and `phys`
                // has one entry per page.
                unsafe { *out_pfns.add(i) = (*p >> kernel::page::PAGE_SHIFT) as usize };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_access_unpin_pages()`: unpins a range pinned before with exactly these bounds.
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_unpin_pages(
    access: *const KernelAccess,
    iova: usize,
    length: usize,
) {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    if ka.access.unpin_range(iova as u64, length as u64).is_err() {
        pr_warn!("iommufd_access_unpin_pages: nothing pinned at {iova:#x}+{length:#x}\n");
    }
}

/// `iommufd_access_rw()`: reads or writes `len` bytes at `data` from or to the IOAS at `iova`.
///
/// # Safety
///
/// `access` must be a live access and `data` valid for `len` bytes of reads and writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_rw(
    access: *const KernelAccess,
    iova: usize,
    data: *mut u8,
    len: usize,
    flags: u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    if len == 0 {
        return EINVAL.to_errno();
    }
    if iova.checked_add(len - 1).is_none() {
        return EOVERFLOW.to_errno();
    }
    // SAFETY: `data` is valid for `len` bytes by the function's safety requirements.
    let buf = unsafe { core::slice::from_raw_parts_mut(data, len) };
    let write = flags & IOMMUFD_ACCESS_RW_WRITE != 0;
    let kthread = flags & IOMMUFD_ACCESS_RW_KTHREAD != 0;
    errno(ka.access.rw(iova as u64, buf, write, kthread))
}
