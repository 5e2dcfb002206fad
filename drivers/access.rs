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
        Arc,
        Mutex, //
    }, //
};

use crate::{
    io_pagetable::PinSeg,
    ioas::Ioas,
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

struct AccessState {
    /// The IOAS (held with a user reference, so it cannot be destroyed under us).
    ioas: Option<ObjectRef>,
    items: KVec<Item>,
    next_id: u32,
}

/// An access object.
#[pin_data(PinnedDrop)]
pub(crate) struct Access {
    /// Alignment the access needs of IOVAs: `PAGE_SIZE` for accesses that pin pages.
    iova_alignment: u64,
    #[pin]
    state: Mutex<AccessState>,
}

impl Access {
    /// Creates an access; `pins` for one that will pin pages.
    pub(crate) fn new(pins: bool) -> Result<Arc<Access>> {
        Arc::pin_init(
            pin_init!(Access {
                iova_alignment: if pins { PAGE_SIZE as u64 } else { 1 },
                state <- new_mutex!(AccessState {
                    ioas: None,
                    items: KVec::new(),
                    next_id: 0,
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
        let mut st = self.state.lock();
        if let Some(old) = &st.ioas {
            if old.id() == ioas_id {
                return Ok(());
            }
        }
        Self::ioas_of(&new)?
            .iopt
            .add_access(self.key(), self.iova_alignment)?;
        let old = st.ioas.replace(new);
        if let Some(old) = old {
            let items = core::mem::take(&mut st.items);
            if let Ok(ioas) = Self::ioas_of(&old) {
                for item in items.iter() {
                    ioas.iopt.access_unpin(&item.segs);
                }
                ioas.iopt.remove_access(self.key());
            }
        }
        Ok(())
    }

    /// Pins `[iova, iova + length)`; returns the id of the new item.
    pub(crate) fn pin(&self, iova: u64, length: u64, write: bool) -> Result<(u32, KVec<u64>)> {
        let mut st = self.state.lock();
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

    /// Reads or writes `buf` at `iova`.
    pub(crate) fn rw(&self, iova: u64, buf: &mut [u8], write: bool, slow: bool) -> Result {
        let st = self.state.lock();
        let ioas_obj = st.ioas.as_ref().ok_or(ENOENT)?;
        Self::ioas_of(ioas_obj)?
            .iopt
            .access_rw(iova, buf, write, slow)
    }

    /// `ioas` is unmapping `[iova, iova + length)`: unpin every item that touches it.
    fn unmap_notify(&self, ioas: &Ioas, iova: u64, length: u64) {
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
            let hit = st.items.get(i).is_some_and(|it| {
                let it_last = it.iova.saturating_add(it.length.saturating_sub(1));
                it.iova <= last && iova <= it_last
            });
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
