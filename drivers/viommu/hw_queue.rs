// SPDX-License-Identifier: GPL-2.0

//! HW queue objects (`IOMMU_HW_QUEUE_ALLOC`): a queue in guest memory that the IOMMU hardware
//! reads directly (a virtual command queue), started on a vIOMMU.
//!
//! The hardware reads the queue by physical address, so its pages must be physically
//! contiguous and must not go away while the queue runs: the core pins them through the nest
//! parent's IOAS as an internal access that locks the areas (an `IOMMU_IOAS_UNMAP` of them is
//! `EBUSY` until the queue is destroyed), checks the contiguity (`EFAULT`), and hands the
//! physical address to the backend. A backend may make a queue depend on another of the same
//! vIOMMU ([`HwQueueInit::depend`]): the other one cannot be destroyed first (`EBUSY`).

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    io::PhysAddr,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        Arc,
        UniqueArc, //
    }, //
};
use zerocopy_derive::Immutable;

use super::Viommu;
use crate::{
    hw::HwQueueHw,
    ioas::{
        access::Access,
        io_pagetable::PinSeg,
        Ioas, //
    },
    object::{
        ObjectData,
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};

/// `IOMMU_HW_QUEUE_TYPE_DEFAULT`: reserved.
const IOMMU_HW_QUEUE_TYPE_DEFAULT: u32 = 0;

/// `struct iommu_hw_queue_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwQueueAlloc {
    size: u32,
    flags: u32,
    viommu_id: u32,
    queue_type: u32,
    index: u32,
    out_hw_queue_id: u32,
    nesting_parent_iova: u64,
    length: u64,
}

const _: () = assert!(size_of::<IommuHwQueueAlloc>() == 40);

impl UserCmd for IommuHwQueueAlloc {
    const MIN_SIZE: usize = offset_of!(IommuHwQueueAlloc, length) + size_of::<u64>();
}

/// What a backend gets to start a queue.
#[cfg_attr(
    not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
    expect(dead_code)
)]
pub(crate) struct HwQueueInit<'a> {
    /// `IOMMU_HW_QUEUE_TYPE_*`.
    pub(crate) queue_type: u32,
    /// The queue's index on the vIOMMU, as user space gave it.
    pub(crate) index: u32,
    /// The physical address of the queue's first byte.
    pub(crate) base_pa: PhysAddr,
    /// Its address in the nest parent (user space's `nesting_parent_iova`).
    pub(crate) base_iova: u64,
    /// The id the queue's object will have.
    pub(crate) id: u32,
    ictx: &'a IommufdCtx,
}

impl HwQueueInit<'_> {
    /// Makes the new queue depend on the queue object `id` of the same context (upstream's
    /// `iommufd_hw_queue_depend()`): until the returned value is dropped, which the backend does
    /// when the new queue stops, `id` cannot be destroyed (`EBUSY`). `EINVAL` for the queue
    /// itself; `ENOENT` if `id` is no HW queue.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn depend(&self, id: u32) -> Result<Dependency> {
        if id == self.id {
            return Err(EINVAL);
        }
        let obj = self.ictx.objects.get(id, ObjectType::HwQueue)?;
        Ok(Dependency {
            _obj: obj.into_long_term(),
        })
    }
}

/// A queue's dependency on another; dropping it ends it.
pub(crate) struct Dependency {
    _obj: ObjectRef,
}

/// The pages of a queue, pinned and locked in the IOAS of the nest parent.
///
/// # Invariants
///
/// An access of alignment `PAGE_SIZE` is registered with the IOAS under `key` for as long as
/// the pin lives.
struct QueuePin {
    ioas: Arc<Ioas>,
    segs: KVec<PinSeg>,
    key: usize,
}

impl QueuePin {
    /// Pins `[aligned_iova, aligned_iova + length)` (page aligned) and returns the physical
    /// address of its first page; `EFAULT` unless the pages are physically contiguous.
    ///
    /// As upstream's internal access, the pin first raises the IOAS's IOVA alignment to
    /// `PAGE_SIZE` (`EADDRINUSE` if a mapping there is not page aligned, before any lookup),
    /// registered under `key`. Pins sharing a key share an alignment, so which of their entries
    /// goes with which pin does not matter.
    fn new(ioas: &Arc<Ioas>, key: usize, aligned_iova: u64, length: u64) -> Result<(Self, u64)> {
        ioas.iopt.add_access(key, PAGE_SIZE as u64)?;
        let segs = match ioas.iopt.lock_pin(aligned_iova, length, false) {
            Ok(segs) => segs,
            Err(e) => {
                ioas.iopt.remove_access(key);
                return Err(e);
            }
        };
        // INVARIANT: The access was registered above.
        let pin = QueuePin {
            ioas: ioas.clone(),
            segs,
            key,
        };
        let mut first: Option<u64> = None;
        let mut prev: Option<u64> = None;
        let mut contiguous = true;
        for seg in pin.segs.iter() {
            seg.pages.for_each_phys(seg.first, seg.last, |_, p| {
                if let Some(q) = prev {
                    if q.checked_add(PAGE_SIZE as u64) != Some(p) {
                        contiguous = false;
                    }
                }
                first.get_or_insert(p);
                prev = Some(p);
                Ok(())
            })?;
        }
        match (contiguous, first) {
            (true, Some(p)) => Ok((pin, p)),
            _ => Err(EFAULT),
        }
    }
}

impl Drop for QueuePin {
    fn drop(&mut self) {
        self.ioas.iopt.lock_unpin(&self.segs);
        self.ioas.iopt.remove_access(self.key);
    }
}

/// A HW queue object.
pub(crate) struct HwQueue {
    /// The backend's queue; stopped first, before its pages are unpinned.
    _hw: KBox<dyn HwQueueHw>,
    _pin: QueuePin,
    /// The vIOMMU, with a long-term user reference.
    _viommu: ObjectRef,
    /// The queue's access object, with a long-term user reference: upstream pins a queue through
    /// an internal access, an object of the context with an id of its own (taken after the
    /// queue's, so the next object's id is the one upstream gives), `EBUSY` to `IOMMU_DESTROY`
    /// and gone with the queue.
    access: ObjectRef,
}

impl ObjectData for HwQueue {
    const TYPE: ObjectType = ObjectType::HwQueue;

    fn on_destroy(&self, ictx: &IommufdCtx, _id: u32) {
        ictx.objects.remove_same(&self.access);
    }
}

/// `IOMMU_HW_QUEUE_ALLOC`, with upstream's checks in upstream's order.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuHwQueueAlloc>) -> Result {
    let ictx: &IommufdCtx = &ucmd.ictx;
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.queue_type == IOMMU_HW_QUEUE_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    if cmd.length == 0 {
        return Err(EINVAL);
    }
    if cmd
        .nesting_parent_iova
        .checked_add(cmd.length - 1)
        .is_none()
    {
        return Err(EOVERFLOW);
    }
    let viommu_obj = ictx.objects.get(cmd.viommu_id, ObjectType::Viommu)?;
    let viommu = Arc::from(viommu_obj.data::<Viommu>().ok_or(ENOENT)?);
    if !viommu.hw.hw_queue_supported(cmd.queue_type) {
        return Err(EOPNOTSUPP);
    }
    let mut new = ictx.objects.reserve()?;
    // The pages the queue touches, whole.
    let page = PAGE_SIZE as u64;
    let aligned = cmd.nesting_parent_iova & !(page - 1);
    let offset = cmd.nesting_parent_iova - aligned;
    let length = offset
        .checked_add(cmd.length)
        .and_then(|l| l.checked_add(page - 1))
        .ok_or(ERANGE)?
        & !(page - 1);
    // Upstream first allocates a page pointer per page with `kvzalloc`, which refuses more than
    // `INT_MAX` bytes: `ENOMEM` before the IOAS is looked at.
    if length / page > i32::MAX as u64 / size_of::<usize>() as u64 {
        return Err(ENOMEM);
    }
    // Upstream's internal access takes its id here; it is published with the queue.
    let access_new = ictx.objects.reserve()?;
    let ioas = Arc::from(viommu.hwpt().ioas()?);
    // The vIOMMU's address is the key of its queues' pins (all of the same alignment).
    let key = Arc::as_ptr(&viommu) as usize;
    let (pin, first_pa) = QueuePin::new(&ioas, key, aligned, length)?;
    let init = HwQueueInit {
        queue_type: cmd.queue_type,
        index: cmd.index,
        base_pa: first_pa + offset,
        base_iova: cmd.nesting_parent_iova,
        id: new.id(),
        ictx,
    };
    let hw = viommu.hw.hw_queue_init(&init)?;
    // Allocated first: once the access is published, nothing may fail before the queue that
    // takes it out again on its destroy holds it.
    let slot = UniqueArc::new_uninit(GFP_KERNEL_ACCOUNT)?;
    let access_id = access_new.id();
    access_new.publish(ObjectKind::new(Access::new(true)?))?;
    // Gone already only if user space destroyed the id it could guess.
    let access = ictx
        .objects
        .get(access_id, ObjectType::Access)?
        .into_long_term();
    let q: Arc<HwQueue> = slot
        .write(HwQueue {
            _hw: hw,
            _pin: pin,
            _viommu: viommu_obj.into_long_term(),
            access,
        })
        .into();
    let mut res = new.prepare(ObjectKind::new(q.clone()));
    if res.is_ok() {
        ucmd.cmd.out_hw_queue_id = new.id();
        res = ucmd.respond().and_then(|()| new.finalize());
    }
    if res.is_err() {
        ictx.objects.remove_same(&q.access);
    }
    res
}
