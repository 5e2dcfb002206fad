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
        ArcBorrow,
        Mutex, //
    }, //
};

use crate::{
    ioas::io_pagetable::PinSeg,
    ioas::Ioas,
    object::ObjectData,
    object::{
        ObjectRef,
        ObjectType, //
    },
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

impl ObjectData for Access {
    const TYPE: ObjectType = ObjectType::Access;
}

impl Access {
    /// Creates an access; `pins` for one that will pin pages.
    pub(crate) fn new(pins: bool) -> Result<Arc<Access>> {
        Self::with_owner(pins, None)
    }

    /// A new access for an in-kernel owner (`iommufd_access_create()`): whether it pins pages
    /// and whether it can be told to unpin come from its ops.
    ///
    /// # Safety
    ///
    /// `ops` must be a valid `struct iommufd_access_ops`, and `ops` and `data` must stay valid
    /// until the access is destroyed.
    pub(crate) unsafe fn for_kernel_owner(
        ops: *const c_void,
        data: *mut c_void,
    ) -> Result<Arc<Access>> {
        // SAFETY: `ops` is a valid ops table (the function's safety requirements).
        let flags = unsafe { iommufd_rs_access_ops_flags(ops) };
        let owner = KernelOwner {
            ops,
            data,
            can_unmap: flags & 2 != 0,
        };
        Self::with_owner(flags & 1 != 0, Some(owner))
    }

    /// Whether the access has an in-kernel owner that can be told to unpin (`ops->unmap`).
    pub(crate) fn owner_can_unmap(&self) -> bool {
        self.owner.as_ref().is_some_and(|o| o.can_unmap)
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

    fn ioas_of(obj: &ObjectRef) -> Result<ArcBorrow<'_, Ioas>> {
        obj.data::<Ioas>().ok_or(ENOENT)
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
        let ioas = Arc::from(Self::ioas_of(ioas_obj)?);
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
        if !core::ptr::eq(&*mine, ioas) {
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

    /// The IOAS the access is attached to, if any.
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub(crate) fn ioas(&self) -> Option<Arc<Ioas>> {
        let st = self.state.lock();
        st.ioas
            .as_ref()
            .and_then(|obj| Self::ioas_of(obj).ok())
            .map(Arc::from)
    }

    /// Whether the access is attached to an IOAS.
    pub(crate) fn is_attached(&self) -> bool {
        self.state.lock().ioas.is_some()
    }

    /// Unpins the pin of exactly `[iova, iova + length)` (`ENOENT` if there is none).
    pub(crate) fn unpin_range(&self, iova: u64, length: u64) -> Result {
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
        if !core::ptr::eq(&*mine, ioas) {
            return;
        }
        let mine = Arc::from(mine);
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
        if let Some(access) = obj.data::<Access>() {
            access.unmap_notify(ioas, iova, length);
        }
    });
}
