// SPDX-License-Identifier: GPL-2.0

//! The mock's nesting backend: nested domains through its `iommu_ops` (as the driver's own
//! operations), and its vIOMMU (`IOMMU_VIOMMU_TYPE_SELFTEST`), as the C mock's:
//!
//! - allocation data (`struct iommu_viommu_selftest`) is a loopback: `out_data` is `in_data`,
//!   and two pages holding `in_data` are offered for `mmap()`;
//! - nested domains allocated on the vIOMMU need the attaching device's vDEVICE there;
//! - invalidation entries (`struct iommu_viommu_invalidate_selftest`) clear the cache entries of
//!   the device with the entry's virtual id;
//! - two HW queues of `IOMMU_HW_QUEUE_TYPE_SELFTEST`, where queue 1 needs queue 0 and depends
//!   on it, and whose physical address is checked against the parent's translation.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    device::Device,
    iommu::{
        domain::{
            NestedDomain,
            PagingDomain,
            UserData,
            UserDataArray, //
        },
        driver::{
            BusDevice,
            IommuDevice, //
        },
    },
    mm::mmio::ContigPages,
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
};

use super::{
    HwptSelftest,
    MockDriver,
    MockNested,
    HWPT_ALLOC_PASID,
    IOMMU_HWPT_DATA_SELFTEST,
    IOMMU_TEST_INVALIDATE_FLAG_ALL,
    MOCK_DEV_CACHE_NUM, //
};
use crate::{
    hw::{
        HwQueueHw,
        Nesting,
        ViommuHw, //
    },
    viommu::{
        hw_queue::{
            Dependency,
            HwQueueInit, //
        },
        mmap::MmapRegion,
        ViommuCore,
        ViommuServices, //
    },
};

/// `IOMMU_VIOMMU_TYPE_SELFTEST`.
const IOMMU_VIOMMU_TYPE_SELFTEST: u32 = 0xdeadbeef;
/// `IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`.
const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST: u32 = 0xdeadbeef;
/// `IOMMU_VEVENTQ_TYPE_SELFTEST`.
pub(super) const IOMMU_VEVENTQ_TYPE_SELFTEST: u32 = 0xbeefbeef;
/// `IOMMU_HW_QUEUE_TYPE_SELFTEST`.
const IOMMU_HW_QUEUE_TYPE_SELFTEST: u32 = 0xdeadbeef;
/// `IOMMU_TEST_HW_QUEUE_MAX`.
const IOMMU_TEST_HW_QUEUE_MAX: usize = 2;

/// `struct iommu_viommu_selftest`.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct ViommuSelftest {
    in_data: u32,
    out_data: u32,
    out_mmap_offset: u64,
    out_mmap_length: u64,
}

impl ViommuSelftest {
    /// The first version ended with `out_data`.
    const MIN_LEN: usize = offset_of!(ViommuSelftest, out_data) + size_of::<u32>();
}

// SAFETY: Two `u32`s and two `u64`s, no padding: every bit pattern is valid.
unsafe impl FromBytes for ViommuSelftest {}
// SAFETY: No padding.
unsafe impl AsBytes for ViommuSelftest {}

/// `struct iommu_viommu_invalidate_selftest`.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct ViommuInvalidateSelftest {
    flags: u32,
    vdev_id: u32,
    cache_id: u32,
}

// SAFETY: Three `u32`s, no padding: every bit pattern is valid.
unsafe impl FromBytes for ViommuInvalidateSelftest {}
// SAFETY: No padding.
unsafe impl AsBytes for ViommuInvalidateSelftest {}

/// The mock's backend.
struct MockBackend;

static MOCK_BACKEND: MockBackend = MockBackend;

/// The mock's backend if `dev` is a mock device.
pub(crate) fn backend(dev: &Device) -> Option<&'static dyn Nesting> {
    BusDevice::<MockDriver>::from_device(dev).map(|_| &MOCK_BACKEND as &'static dyn Nesting)
}

impl Nesting for MockBackend {
    fn viommu_supported(&self, _dev: &Device, viommu_type: u32) -> bool {
        viommu_type == IOMMU_VIOMMU_TYPE_SELFTEST
    }

    fn viommu_alloc(
        &self,
        dev: &Device,
        parent: &Arc<PagingDomain>,
        viommu_type: u32,
        data: Option<&UserData>,
        svc: &ViommuServices<'_>,
    ) -> Result<KBox<dyn ViommuHw>> {
        if viommu_type != IOMMU_VIOMMU_TYPE_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        let bdev = BusDevice::<MockDriver>::from_device(dev).ok_or(EINVAL)?;
        let iommu = bdev.iommu().clone();
        // The parent is one of the mock's paging domains (the core checked it is a nest parent).
        iommu.driver_domain(parent).ok_or(EINVAL)?;
        let mmap = match data {
            None => None,
            Some(data) => {
                let mut cfg = data.copy_struct::<ViommuSelftest>(
                    IOMMU_VIOMMU_TYPE_SELFTEST,
                    ViommuSelftest::MIN_LEN,
                )?;
                // Two pages, the first word holding `in_data`, for a loopback through mmap().
                let pages = ContigPages::alloc(1, GFP_KERNEL)?;
                let region = svc.alloc_mmap(pages.phys(), pages.len())?;
                pages.write_u32(0, cfg.in_data)?;
                cfg.out_data = cfg.in_data;
                cfg.out_mmap_length = pages.len() as u64;
                cfg.out_mmap_offset = region.offset() as u64;
                data.write_struct(IOMMU_VIOMMU_TYPE_SELFTEST, ViommuSelftest::MIN_LEN, &cfg)?;
                Some(MockMmap {
                    _region: region,
                    _pages: pages,
                })
            }
        };
        let queues = Arc::pin_init(
            pin_init!(MockQueues {
                slots <- new_mutex!([None; IOMMU_TEST_HW_QUEUE_MAX]),
            }),
            GFP_KERNEL,
        )?;
        Ok(KBox::new(
            MockViommu {
                _mmap: mmap,
                iommu,
                core: svc.core().clone(),
                parent: parent.clone(),
                queues,
            },
            GFP_KERNEL,
        )?)
    }
}

/// The mmap region of a mock vIOMMU and its pages; the region goes first.
struct MockMmap {
    _region: MmapRegion,
    _pages: ContigPages,
}

/// The HW queues of a mock vIOMMU, by index: the object ids of the queues started.
#[pin_data]
struct MockQueues {
    #[pin]
    slots: Mutex<[Option<u32>; IOMMU_TEST_HW_QUEUE_MAX]>,
}

/// A mock vIOMMU.
struct MockViommu {
    /// Dropped first: no new mapping of the pages after this.
    _mmap: Option<MockMmap>,
    /// The mock IOMMU, held while the vIOMMU exists (the C mock's `users`).
    iommu: Arc<IommuDevice<MockDriver>>,
    core: Arc<ViommuCore>,
    /// The stage 2 (HW queue addresses are checked against its translation).
    parent: Arc<PagingDomain>,
    queues: Arc<MockQueues>,
}

impl MockViommu {
    /// Handles the entries in order until one fails; returns how many were handled.
    fn invalidate(&self, cmds: &[ViommuInvalidateSelftest]) -> (u32, Result) {
        let mut done = 0;
        for cur in cmds {
            if cur.flags & !IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
                return (done, Err(EOPNOTSUPP));
            }
            if cur.cache_id as usize >= MOCK_DEV_CACHE_NUM {
                return (done, Err(EINVAL));
            }
            let all = cur.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL != 0;
            let found = self.core.with_dev(u64::from(cur.vdev_id), |dev| {
                let data = BusDevice::<MockDriver>::from_device(dev).map(|d| d.data());
                match data {
                    Some(d) => d.invalidate_cache((!all).then_some(cur.cache_id)),
                    None => Err(EINVAL),
                }
            });
            match found {
                Some(Ok(())) => done += 1,
                Some(Err(e)) => return (done, Err(e)),
                None => return (done, Err(EINVAL)),
            }
        }
        (done, Ok(()))
    }
}

impl ViommuHw for MockViommu {
    fn alloc_nested(&self, flags: u32, data: &UserData) -> Result<NestedDomain> {
        if flags & !HWPT_ALLOC_PASID != 0 || data.data_type() != IOMMU_HWPT_DATA_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        let cfg =
            data.copy_struct::<HwptSelftest>(IOMMU_HWPT_DATA_SELFTEST, HwptSelftest::MIN_LEN)?;
        self.iommu
            .new_nested_domain(MockNested::new(&cfg, Some(self.core.clone())))
    }

    fn cache_invalidate(&self, array: &mut UserDataArray) -> Result {
        // A zero-length array only checks the type.
        if array.entry_num() == 0 && array.data_type() == IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST {
            array.set_done(0);
            return Ok(());
        }
        let cmds = match array
            .entries::<ViommuInvalidateSelftest>(IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST)
        {
            Ok(cmds) => cmds,
            Err(e) => {
                array.set_done(0);
                return Err(e);
            }
        };
        let (done, res) = self.invalidate(&cmds);
        array.set_done(done);
        res
    }

    fn hw_queue_supported(&self, queue_type: u32) -> bool {
        queue_type == IOMMU_HW_QUEUE_TYPE_SELFTEST
    }

    fn hw_queue_init(&self, q: &HwQueueInit<'_>) -> Result<KBox<dyn HwQueueHw>> {
        if q.queue_type != IOMMU_HW_QUEUE_TYPE_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        let index = usize::try_from(q.index).map_err(|_| EINVAL)?;
        if index >= IOMMU_TEST_HW_QUEUE_MAX {
            return Err(EINVAL);
        }
        // Allocated before the lock: a `MockHwQueue` that is dropped takes it.
        let uninit = KBox::<MockHwQueue>::new_uninit(GFP_KERNEL)?;
        let mut slots = self.queues.slots.lock();
        if slots[index].is_some() {
            return Err(EEXIST);
        }
        let prev = match index.checked_sub(1) {
            None => None,
            Some(p) => Some(slots[p].ok_or(EIO)?),
        };
        // The core's physical address must be the parent's translation of the queue's IOVA.
        if q.base_pa != self.parent.iova_to_phys(q.base_iova) {
            return Err(EFAULT);
        }
        let dep = prev.map(|id| q.depend(id)).transpose()?;
        let hwq = uninit.write(MockHwQueue {
            queues: self.queues.clone(),
            index,
            _dep: dep,
        });
        slots[index] = Some(q.id);
        drop(slots);
        Ok(hwq)
    }
}

/// A HW queue of a mock vIOMMU.
struct MockHwQueue {
    queues: Arc<MockQueues>,
    index: usize,
    /// Queue `index - 1`, which this one depends on.
    _dep: Option<Dependency>,
}

impl HwQueueHw for MockHwQueue {}

impl Drop for MockHwQueue {
    fn drop(&mut self) {
        if let Some(slot) = self.queues.slots.lock().get_mut(self.index) {
            *slot = None;
        }
    }
}
