// SPDX-License-Identifier: GPL-2.0

//! The mmap regions of a context: physical ranges a vIOMMU's driver offers user space (a
//! virtual command queue's registers, or the mock's loopback pages), mapped with `mmap()` on the
//! iommufd file at the offset the driver reported (upstream's `ictx->mt_mmap`).
//!
//! Offsets are page aligned, handed out lowest first from `PAGE_SIZE` on (0 is never one, so a
//! caller can tell a returned offset from none). Only the exact region may be mapped, at its
//! offset and with its length (`ENXIO` otherwise). Every VMA of a region holds a user reference
//! on the region's owner, so `IOMMU_DESTROY` of the owner is `EBUSY` while user space maps it.

use kernel::{
    io::PhysAddr,
    mm::{
        mmio,
        virt::{
            flags as vm_flags,
            VmaNew, //
        }, //
    },
    new_mutex,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    object::{
        ObjectRef,
        ObjectType, //
    },
    viommu::Viommu,
    IommufdCtx, //
};

/// One region.
struct Region {
    /// The byte offset user space passes to `mmap()`.
    offset: usize,
    length: usize,
    phys: PhysAddr,
    /// The vIOMMU that offers it, by id and identity (the id may be reused once it is gone).
    owner_id: u32,
    owner: usize,
}

impl Region {
    fn last(&self) -> usize {
        self.offset + (self.length - 1)
    }
}

/// The mmap regions of a context, as the context holds them: the table is made when a vIOMMU
/// first offers a region (most contexts never have one, so most never allocate it).
#[pin_data]
pub(crate) struct Mmaps {
    /// `None` until the first region.
    #[pin]
    table: Mutex<Option<Arc<MmapTable>>>,
}

impl Mmaps {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            table <- new_mutex!(None),
        })
    }

    /// Adds a region (see [`MmapTable::alloc`]), making the table if it is the first.
    pub(crate) fn alloc(
        &self,
        owner_id: u32,
        owner: usize,
        phys: PhysAddr,
        length: usize,
    ) -> Result<MmapRegion> {
        let table = {
            let mut table = self.table.lock();
            match &*table {
                Some(t) => t.clone(),
                None => {
                    let t = MmapTable::new()?;
                    *table = Some(t.clone());
                    t
                }
            }
        };
        table.alloc(owner_id, owner, phys, length)
    }

    /// `mmap()` of the iommufd file: maps the region at the VMA's offset (`ENXIO` where there
    /// is none, as before any region).
    pub(crate) fn mmap(&self, ictx: &IommufdCtx, vma: &VmaNew) -> Result {
        let (offset, length) = vma_range(vma)?;
        let table = self.table.lock().clone().ok_or(ENXIO)?;
        table.map_region(ictx, vma, offset, length)
    }
}

/// The offset and length `vma` asks for; `EINVAL` unless it is shared and whole pages,
/// `EPERM` if it is executable, `ENXIO` for an offset past the end of the address space.
fn vma_range(vma: &VmaNew) -> Result<(usize, usize)> {
    let length = vma.end() - vma.start();
    if length % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    let flags = vma.flags();
    if flags & vm_flags::SHARED == 0 {
        return Err(EINVAL);
    }
    if flags & vm_flags::EXEC != 0 {
        return Err(EPERM);
    }
    let offset = mmio::vma_pgoff(vma)
        .checked_shl(PAGE_SHIFT as u32)
        .ok_or(ENXIO)?;
    Ok((offset, length))
}

/// The regions of one context.
#[pin_data]
pub(crate) struct MmapTable {
    /// Sorted by offset.
    #[pin]
    regions: Mutex<KVec<Region>>,
}

impl MmapTable {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                regions <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Adds a region of `length` bytes at `phys` offered by the vIOMMU `owner_id` (whose
    /// identity is `owner`); `EINVAL` unless both are page aligned and the length is not 0.
    fn alloc(
        self: &Arc<Self>,
        owner_id: u32,
        owner: usize,
        phys: PhysAddr,
        length: usize,
    ) -> Result<MmapRegion> {
        let page = PAGE_SIZE as PhysAddr;
        if phys % page != 0 || length == 0 || length % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let mut regions = self.regions.lock();
        regions.reserve(1, GFP_KERNEL_ACCOUNT)?;
        // The lowest gap from PAGE_SIZE on that fits.
        let mut at = PAGE_SIZE;
        let mut pos = 0;
        for (i, r) in regions.iter().enumerate() {
            if at.checked_add(length).is_some_and(|end| end <= r.offset) {
                break;
            }
            at = r.last().checked_add(1).ok_or(ENOSPC)?;
            pos = i + 1;
        }
        at.checked_add(length - 1).ok_or(ENOSPC)?;
        regions
            .insert_within_capacity(
                pos,
                Region {
                    offset: at,
                    length,
                    phys,
                    owner_id,
                    owner,
                },
            )
            .map_err(|_| ENOMEM)?;
        Ok(MmapRegion {
            table: self.clone(),
            offset: at,
        })
    }

    fn remove(&self, offset: usize) {
        let mut regions = self.regions.lock();
        if let Some(pos) = regions.iter().position(|r| r.offset == offset) {
            let _ = regions.remove(pos);
        }
    }

    /// Maps the region at `offset` into `vma` if it is exactly `length` bytes long.
    fn map_region(&self, ictx: &IommufdCtx, vma: &VmaNew, offset: usize, length: usize) -> Result {
        let (hold, phys) = {
            let regions = self.regions.lock();
            let r = regions
                .iter()
                .find(|r| r.offset <= offset && offset <= r.last())
                .ok_or(ENXIO)?;
            // The owner is looked up under the lock, so the region cannot go meanwhile.
            let owner = ictx
                .objects
                .get(r.owner_id, ObjectType::Viommu)
                .map_err(|_| ENXIO)?;
            let same = owner
                .data::<Viommu>()
                .is_some_and(|v| v.identity() == r.owner);
            // Only the exact region may be mapped.
            if !same || r.offset != offset || r.length != length {
                return Err(ENXIO);
            }
            (
                MmapHold {
                    _owner: owner.into_long_term(),
                },
                r.phys,
            )
        };
        mmio::map_io(vma, phys, Arc::new(hold, GFP_KERNEL)?)
    }
}

/// What a VMA of a region holds: a user reference on the region's owner.
struct MmapHold {
    _owner: ObjectRef,
}

/// A region of a context's table; dropping it takes the region out (mappings made already stay
/// until they are unmapped, and keep the owner, and so the memory, alive).
pub(crate) struct MmapRegion {
    table: Arc<MmapTable>,
    offset: usize,
}

impl MmapRegion {
    /// The offset for `mmap()`.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }
}

impl Drop for MmapRegion {
    fn drop(&mut self) {
        self.table.remove(self.offset);
    }
}
