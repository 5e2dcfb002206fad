// SPDX-License-Identifier: GPL-2.0

//! The mock IOMMU driver the iommufd selftests run against.
//!
//! This is the Rust counterpart of the mock in the C iommufd's selftest
//! support (`IOMMUFD_TEST`), written on the kernel crate's IOMMU driver
//! abstraction ([`kernel::iommu::driver`]). It behaves as the selftests of
//! Linux 7.3 expect: devices on a private bus (`iommufd_rs_mock`, named
//! `iommufd_rs_mock<N>`; the C mock's bus is `iommufd_mock`, so both modules
//! can be loaded one after the other), paging domains with a 2 KiB page
//! size and the mock aperture, optional dirty tracking, the selftest
//! hardware information, PASIDs, and the per-device cache array.
//!
//! # API for the rest of the module
//!
//! - [`MockIommu::register`]`(module) -> Result<MockIommu>`: registers the
//!   mock IOMMU and its bus (once, at module init). `MockIommu` is a cheap
//!   handle (`Clone`); the instance is unregistered when the last handle,
//!   device and domain are gone.
//! - [`MockDevice::create`]`(&MockIommu, flags: u32) -> Result<MockDevice>`:
//!   adds a device (`MOCK_FLAGS_DEVICE_*`, others are `EINVAL`), probed by
//!   the IOMMU core, so it has a group. Dropping it removes the device.
//!   Accessors: [`MockDevice::device`] (`&kernel::device::Device`),
//!   [`MockDevice::id`], [`MockDevice::flags`], [`MockDevice::pasid_capable`],
//!   [`MockDevice::check_cache`]`(cache_id, value) -> Result` (the check of
//!   `IOMMU_TEST_OP_DEV_CHECK_CACHE`), [`MockDevice::invalidate_cache`].
//!   [`MockDevice::from_device`] finds the mock device behind a `Device`.
//! - [`MockIommu::is_mock_domain`]`(&Domain) -> bool`: the domain is a paging
//!   domain of this mock (what `get_md_pagetable()` checks in C).
//! - [`MockIommu::set_dirty`]`(&Domain, iova, length, page_size, read_bitmap)
//!   -> Result<u64>`: `IOMMU_TEST_OP_DIRTY` (with the C mock's errors).
//! - [`MockIommu::page_size`]`(&Domain) -> Result<usize>`: the smallest page
//!   size of a mock domain (`IOMMU_TEST_OP_MD_CHECK_MAP`).
//! - [`selfcheck`]: the self-test run at module init with `mock_selfcheck=1`.
//!
//! - [`MockIommu::check_iotlb`]`(&Domain, id, value) -> Result`: the IOTLB
//!   check of a nested domain (`IOMMU_TEST_OP_MD_CHECK_IOTLB`).
//!
//! Nested domains ([`MockNested`]) hold only an IOTLB array that
//! invalidations clear; on a vIOMMU they need the attaching device's vDEVICE.
//! The mock's vIOMMU, vDEVICEs and HW queues are its nesting backend
//! ([`viommu`]); IO page faults go through its fault queue
//! (`IOMMU_TEST_OP_TRIGGER_IOPF`), vEVENTs through the vIOMMU of the device's
//! nested domain (`IOMMU_TEST_OP_TRIGGER_VEVENT`). Domains keep no per-device
//! attach state beyond what the selftests check.
//!
//! The mock is built only with `CONFIG_IOMMUFD_TEST`, as upstream's (the
//! IOMMU core builds its private-bus registration only then); without it the
//! module has no mock (`mock/none.rs`).

use core::mem::size_of;
use kernel::{
    alloc::Flags,
    dma::DmaAddress,
    io::PhysAddr,
    iommu::{
        domain::{
            Capability,
            Domain,
            Geometry,
            UserData,
            UserDataArray, //
        },
        driver::{
            BusDevice,
            BusDeviceOwner,
            DeviceType,
            DirtyBitmap,
            DomainConfig,
            DomainOps,
            Driver,
            DriverDomain,
            HwInfo,
            IommuDevice,
            NestedDomainOps, //
        },
        fault::{
            report_device_fault,
            IopfQueue,
            PageRequest,
            ResponseCode,
            PAGE_REQUEST_LAST_PAGE,
            PAGE_REQUEST_PASID_VALID, //
        },
    },
    new_mutex,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex,
        SpinLock, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    }, //
};

use crate::viommu::ViommuCore;

mod pagetable;
mod selfcheck;
mod viommu;

use pagetable::{
    Mapped,
    PageTable,
    Table,
    TablePool, //
};

pub(crate) use selfcheck::selfcheck;
pub(crate) use viommu::backend;
use viommu::IOMMU_VEVENTQ_TYPE_SELFTEST;

/// First IOVA of a default mock domain's aperture (`MOCK_APERTURE_START`).
pub(crate) const MOCK_APERTURE_START: u64 = 1 << 24;
/// Last IOVA of a default mock domain's aperture (`MOCK_APERTURE_LAST`).
pub(crate) const MOCK_APERTURE_LAST: u64 = (1 << 31) - 1;
/// Page size of the mock (`MOCK_PAGE_SIZE`).
pub(crate) const MOCK_PAGE_SIZE: usize = 2048;
/// Huge page size of the mock (`MOCK_HUGE_PAGE_SIZE`).
pub(crate) const MOCK_HUGE_PAGE_SIZE: usize = 512 * MOCK_PAGE_SIZE;
/// Device without dirty tracking (`MOCK_FLAGS_DEVICE_NO_DIRTY`).
pub(crate) const MOCK_FLAGS_DEVICE_NO_DIRTY: u32 = 1 << 0;
/// Device with PASIDs (`MOCK_FLAGS_DEVICE_PASID`).
pub(crate) const MOCK_FLAGS_DEVICE_PASID: u32 = 1 << 2;
/// Number of entries of a device's cache (`MOCK_DEV_CACHE_NUM`).
pub(crate) const MOCK_DEV_CACHE_NUM: usize = 4;
/// Initial value of the cache entries (`IOMMU_TEST_DEV_CACHE_DEFAULT`).
pub(crate) const IOMMU_TEST_DEV_CACHE_DEFAULT: u32 = 0xbaddad;
/// PASID width of PASID-capable mock devices (`MOCK_PASID_WIDTH`).
pub(crate) const MOCK_PASID_WIDTH: u32 = 20;
/// The PASID whose second attach fails, to test the core's rollback
/// (`IOMMU_TEST_PASID_RESERVED`).
pub(crate) const IOMMU_TEST_PASID_RESERVED: u32 = 1024;
/// `IOMMU_HW_INFO_TYPE_SELFTEST`.
pub(crate) const IOMMU_HW_INFO_TYPE_SELFTEST: u32 = 0xfeedbeef;
/// `IOMMU_HW_INFO_SELFTEST_REGVAL`.
pub(crate) const IOMMU_HW_INFO_SELFTEST_REGVAL: u32 = 0xdeadbeef;
/// `IOMMU_HWPT_DATA_SELFTEST`: driver data of a mock domain allocation.
pub(crate) const IOMMU_HWPT_DATA_SELFTEST: u32 = 0xdead;
/// `MOCK_IOMMUPT_DEFAULT`: 2 KiB pages and the mock aperture.
pub(crate) const MOCK_IOMMUPT_DEFAULT: u32 = 0;
/// `MOCK_IOMMUPT_HUGE`: only `MOCK_HUGE_PAGE_SIZE` and `PAGE_SIZE` pages.
pub(crate) const MOCK_IOMMUPT_HUGE: u32 = 1;
/// Number of IOTLB entries of a mock nested domain (`MOCK_NESTED_DOMAIN_IOTLB_NUM`).
pub(crate) const MOCK_NESTED_DOMAIN_IOTLB_NUM: usize = 4;
/// `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`: the invalidation entries of a mock nested domain.
pub(crate) const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST: u32 = 0xdeadbeef;
/// `IOMMU_TEST_INVALIDATE_FLAG_ALL`: invalidate every entry, whatever the id.
pub(crate) const IOMMU_TEST_INVALIDATE_FLAG_ALL: u32 = 1 << 0;

/// `IOMMU_HW_INFO_TYPE_DEFAULT`.
const HW_INFO_TYPE_DEFAULT: u32 = 0;
/// `IOMMU_HWPT_DATA_NONE`.
const HWPT_DATA_NONE: u32 = 0;
/// `IOMMU_HWPT_ALLOC_NEST_PARENT`.
const HWPT_ALLOC_NEST_PARENT: u32 = 1 << 0;
/// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
const HWPT_ALLOC_DIRTY_TRACKING: u32 = 1 << 1;
/// `IOMMU_HWPT_ALLOC_PASID`.
const HWPT_ALLOC_PASID: u32 = 1 << 3;

/// Bits of IOVA the mock page table translates: 2 KiB pages, 512 entries per
/// level and three levels, as the C mock's table (so `2^38` bytes).
const MOCK_VA_BITS: u32 = pagetable::VA_BITS;
/// Bits of physical address the mock page table can hold.
const MOCK_PA_BITS: u32 = 51;
/// Page sizes of a default mock domain: every power of two from 2 KiB up to
/// half the IOVA space, as the C mock's table.
const MOCK_PGSIZE_BITMAP: usize = ((1usize << (MOCK_VA_BITS - 1)) - 1) & !(MOCK_PAGE_SIZE - 1);
/// Largest number of bytes `IOMMU_TEST_OP_DIRTY` may cover, in bits (`SZ_16M * 8`).
const MOCK_DIRTY_MAX_BITS: usize = (16 << 20) * 8;

/// Per-device state of a mock device.
pub(crate) struct MockDevData {
    flags: u32,
    cache: [Atomic<u32>; MOCK_DEV_CACHE_NUM],
    pasid_reserved_fails_next: Atomic<bool>,
    /// The mock IOMMU's fault queue.
    iopfq: Arc<IopfQueue>,
    /// The device's locks, in one allocation (the device data itself is not pinned).
    locks: Pin<KBox<MockDevLocks>>,
}

/// The locks of a mock device.
#[pin_data]
struct MockDevLocks {
    /// Which attachments of the device are to domains that handle faults; the device is in the
    /// fault queue while any is. Changed in the attach callbacks, which the group mutex
    /// serialises.
    #[pin]
    iopf: Mutex<IopfUsers>,
    /// Held while faults are reported for the device and while its attachments change, so that
    /// a report never sees an attachment's handle go (the C mock's `iopf_rwsem`).
    #[pin]
    report: Mutex<()>,
    /// The vIOMMU of the nested domain the device is attached to, with the device's virtual id
    /// there (what `IOMMU_TEST_OP_TRIGGER_VEVENT` reports); set by every attach.
    #[pin]
    viommu: Mutex<Option<VirtIdOn>>,
}

/// A device's virtual id on a vIOMMU.
type VirtIdOn = (Arc<ViommuCore>, u64);

/// The attachments of a mock device to domains that handle faults.
struct IopfUsers {
    rid: bool,
    pasids: KVec<u32>,
}

impl IopfUsers {
    fn count(&self) -> usize {
        usize::from(self.rid) + self.pasids.len()
    }
}

impl MockDevData {
    /// Records the vIOMMU (and the device's virtual id on it) of the domain the device is now
    /// attached to; `None` for domains of no vIOMMU.
    fn set_viommu(dev: &BusDevice<MockDriver>, viommu: Option<VirtIdOn>) {
        let old = core::mem::replace(&mut *dev.data().locks.viommu.lock(), viommu);
        drop(old);
    }

    /// Records that the attachment `pasid` (`None`: without PASID) of `dev` is now to a domain
    /// that handles faults (`iopf`) or not, adding the device to the fault queue with its first
    /// such attachment and removing it with its last.
    fn set_iopf(dev: &BusDevice<MockDriver>, pasid: Option<u32>, iopf: bool) -> Result {
        let data = dev.data();
        let mut users = data.locks.iopf.lock();
        let had = match pasid {
            None => users.rid,
            Some(p) => users.pasids.contains(&p),
        };
        if iopf == had {
            return Ok(());
        }
        if iopf {
            if users.count() == 0 {
                data.iopfq.add_device(dev.device())?;
            }
            match pasid {
                None => users.rid = true,
                Some(p) => {
                    if let Err(e) = users.pasids.push(p, GFP_KERNEL) {
                        if users.count() == 0 {
                            data.iopfq.remove_device(dev.device());
                        }
                        return Err(e.into());
                    }
                }
            }
        } else {
            match pasid {
                None => users.rid = false,
                Some(p) => users.pasids.retain(|q| *q != p),
            }
            if users.count() == 0 {
                data.iopfq.remove_device(dev.device());
            }
        }
        Ok(())
    }
}

/// The mock IOMMU driver (the `iommu_ops` of the mock).
pub(crate) struct MockDriver;

#[vtable]
impl Driver for MockDriver {
    type DeviceData = MockDevData;
    type Domain = MockDomain;
    type NestedDomain = MockNested;

    const MAX_PASIDS: u32 = 1 << MOCK_PASID_WIDTH;
    const USER_PASID_TABLE: bool = true;
    const DEVICE_TYPE: &'static DeviceType<Self> = kernel::iommu_device_type!(MockDriver);

    fn capable(dev: &BusDevice<Self>, cap: Capability) -> bool {
        match cap {
            Capability::CacheCoherency => true,
            Capability::DirtyTracking => dev.data().flags & MOCK_FLAGS_DEVICE_NO_DIRTY == 0,
            _ => false,
        }
    }

    fn hw_info(_dev: &BusDevice<Self>, requested: u32) -> Result<HwInfo> {
        if requested != HW_INFO_TYPE_DEFAULT && requested != IOMMU_HW_INFO_TYPE_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        // `struct iommu_test_hw_info { __u32 flags; __u32 test_reg; }`.
        let mut info = [0u8; 8];
        info[4..].copy_from_slice(&IOMMU_HW_INFO_SELFTEST_REGVAL.to_ne_bytes());
        HwInfo::new(IOMMU_HW_INFO_TYPE_SELFTEST, &info)
    }

    fn domain_alloc_paging(
        dev: &BusDevice<Self>,
        flags: u32,
        user_data: Option<&UserData>,
    ) -> Result<(DomainConfig, impl PinInit<MockDomain, Error>)> {
        let valid = HWPT_ALLOC_DIRTY_TRACKING | HWPT_ALLOC_NEST_PARENT | HWPT_ALLOC_PASID;
        let dirty = flags & HWPT_ALLOC_DIRTY_TRACKING != 0;
        if flags & !valid != 0 || (dirty && dev.data().flags & MOCK_FLAGS_DEVICE_NO_DIRTY != 0) {
            return Err(EOPNOTSUPP);
        }
        let pagetable_type = match user_data {
            None => MOCK_IOMMUPT_DEFAULT,
            Some(data) => {
                if data.data_type() != IOMMU_HWPT_DATA_SELFTEST
                    && data.data_type() != HWPT_DATA_NONE
                {
                    return Err(EOPNOTSUPP);
                }
                data.copy_struct::<HwptSelftest>(IOMMU_HWPT_DATA_SELFTEST, HwptSelftest::MIN_LEN)?
                    .pagetable_type
            }
        };
        let cfg = match pagetable_type {
            MOCK_IOMMUPT_DEFAULT => DomainConfig {
                pgsize_bitmap: MOCK_PGSIZE_BITMAP,
                geometry: Geometry {
                    aperture_start: MOCK_APERTURE_START,
                    aperture_end: MOCK_APERTURE_LAST,
                    force_aperture: true,
                },
                dirty_tracking: dirty,
            },
            // Huge mode: user space maps huge pages only, but iommufd needs
            // PAGE_SIZE in the bitmap to accept the domain.
            MOCK_IOMMUPT_HUGE => DomainConfig {
                pgsize_bitmap: MOCK_HUGE_PAGE_SIZE | kernel::page::PAGE_SIZE,
                geometry: Geometry {
                    aperture_start: 0,
                    aperture_end: (1 << MOCK_VA_BITS) - 1,
                    force_aperture: true,
                },
                dirty_tracking: dirty,
            },
            _ => return Err(EOPNOTSUPP),
        };
        let init = try_pin_init!(MockDomain {
            table <- new_spinlock!(PageTable::new(GFP_KERNEL_ACCOUNT)?, "MockDomain::table"),
            dirty_ops: dirty,
            tracking: Atomic::new(false),
        });
        Ok((cfg, init))
    }

    fn domain_alloc_nested(
        _dev: &BusDevice<Self>,
        _parent: &DriverDomain<Self>,
        flags: u32,
        data: &UserData,
    ) -> Result<impl PinInit<MockNested, Error>> {
        if flags & !HWPT_ALLOC_PASID != 0 || data.data_type() != IOMMU_HWPT_DATA_SELFTEST {
            return Err(EOPNOTSUPP);
        }
        let cfg =
            data.copy_struct::<HwptSelftest>(IOMMU_HWPT_DATA_SELFTEST, HwptSelftest::MIN_LEN)?;
        Ok(MockNested::new(&cfg, None))
    }

    fn page_response(_dev: &BusDevice<Self>, _pasid: u32, _grpid: u32, _code: ResponseCode) {
        // The mock's device does not wait for the answer.
    }

    fn blocked_attach_dev(dev: &BusDevice<Self>) -> Result {
        MockDevData::set_viommu(dev, None);
        MockDevData::set_iopf(dev, None, false)
    }

    fn blocked_set_dev_pasid(dev: &BusDevice<Self>, pasid: u32) -> Result {
        if pasid == IOMMU_TEST_PASID_RESERVED {
            dev.data().pasid_reserved_fails_next.store(false, Relaxed);
        }
        MockDevData::set_iopf(dev, Some(pasid), false)
    }
}

/// `struct iommu_hwpt_selftest`: the driver data of a mock domain.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct HwptSelftest {
    iotlb: u32,
    pagetable_type: u32,
}

impl HwptSelftest {
    /// The first version ended with `iotlb`.
    const MIN_LEN: usize = size_of::<u32>();
}

// SAFETY: Two `u32`s, no padding: every bit pattern is valid.
unsafe impl FromBytes for HwptSelftest {}
// SAFETY: Two `u32`s, no padding.
unsafe impl AsBytes for HwptSelftest {}

/// `struct iommu_hwpt_invalidate_selftest`: one invalidation request of a mock nested domain.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct InvalidateSelftest {
    flags: u32,
    iotlb_id: u32,
}

impl InvalidateSelftest {
    /// The first version ended with `iotlb_id`.
    const MIN_LEN: usize = 2 * size_of::<u32>();
}

// SAFETY: Two `u32`s, no padding: every bit pattern is valid.
unsafe impl FromBytes for InvalidateSelftest {}
// SAFETY: Two `u32`s, no padding.
unsafe impl AsBytes for InvalidateSelftest {}

/// The PASID attach of every mock domain: the first attach of the reserved PASID arms a failure
/// of the next one, so the core's rollback of a failed replace can be tested.
fn mock_set_dev_pasid(domain: &Domain, dev: &BusDevice<MockDriver>, pasid: u32) -> Result {
    if pasid == IOMMU_TEST_PASID_RESERVED {
        let fail = &dev.data().pasid_reserved_fails_next;
        if fail.xchg(false, Relaxed) {
            return Err(ENOMEM);
        }
        fail.store(true, Relaxed);
    }
    MockDevData::set_iopf(dev, Some(pasid), domain.has_iopf_handler())
}

/// A nested domain of the mock: no translation, only an IOTLB of
/// [`MOCK_NESTED_DOMAIN_IOTLB_NUM`] entries that user space fills at allocation and clears with
/// invalidations (`IOMMU_TEST_OP_MD_CHECK_IOTLB` reads it).
#[pin_data]
pub(crate) struct MockNested {
    iotlb: [Atomic<u32>; MOCK_NESTED_DOMAIN_IOTLB_NUM],
    /// The vIOMMU the domain was allocated on: a device attaches only with a virtual id there.
    viommu: Option<Arc<ViommuCore>>,
}

impl MockNested {
    /// A nested domain from user space's `cfg`, on `viommu` if given.
    fn new(cfg: &HwptSelftest, viommu: Option<Arc<ViommuCore>>) -> impl PinInit<Self, Error> {
        let iotlb = cfg.iotlb;
        try_pin_init!(MockNested {
            iotlb: core::array::from_fn(|_| Atomic::new(iotlb)),
            viommu,
        })
    }

    /// Handles the entries of `array` in order until one fails; returns how many were handled
    /// and the result.
    fn invalidate(&self, array: &UserDataArray) -> (u32, Result) {
        if array.data_type() != IOMMU_HWPT_INVALIDATE_DATA_SELFTEST {
            return (0, Err(EINVAL));
        }
        // Entries of the structure's size are read in batches, in one user copy each; other
        // sizes, and a batch that faults, one by one, so that `done` counts exactly the entries
        // handled before a failure.
        const BATCH: usize = 16;
        let mut batch = [InvalidateSelftest::zeroed(); BATCH];
        let num = array.entry_num();
        let mut done = 0u32;
        while done < num {
            // CAST: `BATCH` fits in `u32`.
            let n = (num - done).min(BATCH as u32);
            let Some(part) = batch.get_mut(..n as usize) else {
                return (done, Err(EINVAL));
            };
            let bulk = array
                .entries_into(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, done, part)
                .unwrap_or(false);
            for i in 0..n {
                let inv = match part.get(i as usize) {
                    Some(inv) if bulk => *inv,
                    _ => match array.entry::<InvalidateSelftest>(
                        IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
                        done,
                        InvalidateSelftest::MIN_LEN,
                    ) {
                        Ok(inv) => inv,
                        Err(e) => return (done, Err(e)),
                    },
                };
                if let Err(e) = self.invalidate_one(&inv) {
                    return (done, Err(e));
                }
                done += 1;
            }
        }
        (done, Ok(()))
    }

    /// Handles one invalidation request.
    fn invalidate_one(&self, inv: &InvalidateSelftest) -> Result {
        if inv.flags & !IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
            return Err(EOPNOTSUPP);
        }
        let entry = usize::try_from(inv.iotlb_id)
            .ok()
            .and_then(|id| self.iotlb.get(id))
            .ok_or(EINVAL)?;
        if inv.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
            for e in &self.iotlb {
                e.store(0, Relaxed);
            }
        } else {
            entry.store(0, Relaxed);
        }
        Ok(())
    }
}

#[vtable]
impl NestedDomainOps for MockNested {
    type Driver = MockDriver;

    fn attach_dev(&self, domain: &Domain, dev: &BusDevice<MockDriver>) -> Result {
        // A domain of a vIOMMU needs the device's vDEVICE there first (`ENOENT`).
        let viommu = match &self.viommu {
            Some(core) => Some((core.clone(), core.vdev_id_of(dev.device())?)),
            None => None,
        };
        MockDevData::set_viommu(dev, viommu);
        MockDevData::set_iopf(dev, None, domain.has_iopf_handler())
    }

    fn set_dev_pasid(&self, domain: &Domain, dev: &BusDevice<MockDriver>, pasid: u32) -> Result {
        mock_set_dev_pasid(domain, dev, pasid)
    }

    fn cache_invalidate_user(&self, array: &mut UserDataArray) -> Result {
        let (done, res) = self.invalidate(array);
        array.set_done(done);
        res
    }
}

/// A paging domain of the mock.
///
/// Each map call adds one entry per page, of the page size the core chose,
/// as a real page table would ([`pagetable`]); dirty bits are per entry, so
/// marking one byte dirty reports the whole entry, as the selftests expect.
#[pin_data]
pub(crate) struct MockDomain {
    #[pin]
    table: SpinLock<PageTable>,
    /// The domain was allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
    dirty_ops: bool,
    /// Dirty tracking is on (the C mock's `MOCK_DIRTY_TRACK`).
    tracking: Atomic<bool>,
}

impl MockDomain {
    /// Marks the mapping containing `iova` dirty; false if nothing is mapped there.
    fn set_dirty(&self, iova: usize) -> bool {
        self.table.lock().set_dirty(iova)
    }

    /// Returns whether the mapping containing `iova` is dirty.
    pub(crate) fn is_dirty(&self, iova: usize) -> Option<bool> {
        self.table.lock().lookup(iova).map(|e| e.dirty)
    }
}

#[vtable]
impl DomainOps for MockDomain {
    type Driver = MockDriver;

    fn attach_dev(&self, domain: &Domain, dev: &BusDevice<MockDriver>) -> Result {
        if self.dirty_ops && dev.data().flags & MOCK_FLAGS_DEVICE_NO_DIRTY != 0 {
            return Err(EINVAL);
        }
        MockDevData::set_viommu(dev, None);
        MockDevData::set_iopf(dev, None, domain.has_iopf_handler())
    }

    fn set_dev_pasid(&self, domain: &Domain, dev: &BusDevice<MockDriver>, pasid: u32) -> Result {
        mock_set_dev_pasid(domain, dev, pasid)
    }

    fn map_pages(
        &self,
        iova: usize,
        paddr: PhysAddr,
        pgsize: usize,
        pgcount: usize,
        _prot: u32,
        gfp: Flags,
        mapped: &mut usize,
    ) -> Result {
        *mapped = 0;
        if pgcount == 0 {
            return Ok(());
        }
        let size = pgsize.checked_mul(pgcount).ok_or(EOVERFLOW)?;
        let last = iova.checked_add(size - 1).ok_or(EOVERFLOW)?;
        let pa_last = paddr.checked_add(size as u64 - 1).ok_or(EOVERFLOW)?;
        if (last as u64) >> MOCK_VA_BITS != 0 || pa_last >> MOCK_PA_BITS != 0 {
            return Err(ERANGE);
        }
        // The tables the entries need are allocated without the lock, then counted again.
        let mut pool = TablePool::new();
        loop {
            let need = match self
                .table
                .lock()
                .map(iova, paddr, pgsize, pgcount, &mut pool)?
            {
                Mapped::Done => {
                    *mapped = size;
                    return Ok(());
                }
                Mapped::NeedTables(need) => need,
            };
            pool.reserve(need, gfp)?;
            while pool.len() < need {
                pool.push(Table::new(gfp)?, gfp)?;
            }
        }
    }

    fn unmap_pages(&self, iova: usize, pgsize: usize, pgcount: usize) -> usize {
        let Some(size) = pgsize.checked_mul(pgcount) else {
            return 0;
        };
        // Whole entries only: stop at a hole or in the middle of an entry;
        // an entry that reaches past the end goes completely (and counts).
        self.table.lock().unmap(iova, size)
    }

    fn iova_to_phys(&self, iova: DmaAddress) -> PhysAddr {
        let Ok(iova) = usize::try_from(iova) else {
            return 0;
        };
        let table = self.table.lock();
        table
            .lookup(iova)
            .map_or(0, |e| e.paddr + (iova - e.iova) as u64)
    }

    fn set_dirty_tracking(&self, enable: bool) -> Result {
        if enable && !self.dirty_ops {
            return Err(EINVAL);
        }
        self.tracking.store(enable, Relaxed);
        Ok(())
    }

    fn read_and_clear_dirty(
        &self,
        iova: usize,
        size: usize,
        flags: u64,
        dirty: &DirtyBitmap,
    ) -> Result {
        if size == 0 {
            return Ok(());
        }
        let last = iova.saturating_add(size - 1);
        let clear = flags & kernel::iommu::domain::DIRTY_NO_CLEAR == 0;
        // Recording into a user bitmap may pin its pages, which can sleep: dirty entries are
        // collected in batches under the lock and recorded after it is dropped.
        const BATCH: usize = 32;
        let mut next = Some(iova);
        while let Some(from) = next {
            let mut batch = [(0usize, 0usize); BATCH];
            let mut n = 0usize;
            next = None;
            {
                let mut table = self.table.lock();
                let start = table.lookup(from).map_or(from, |e| e.iova);
                table.for_each_mut(start, last, &mut |e, dirty| {
                    if !*dirty {
                        return true;
                    }
                    // The whole entry is reported, as a hardware table would; one that
                    // follows the previous one extends its range.
                    match n.checked_sub(1).and_then(|p| batch.get_mut(p)) {
                        Some((key, len)) if key.wrapping_add(*len) == e.iova => *len += e.size,
                        _ => {
                            let Some(slot) = batch.get_mut(n) else {
                                next = Some(e.iova);
                                return false;
                            };
                            *slot = (e.iova, e.size);
                            n += 1;
                        }
                    }
                    if clear {
                        *dirty = false;
                    }
                    true
                });
            }
            for &(key, len) in batch.iter().take(n) {
                dirty.record(key, len);
            }
        }
        Ok(())
    }
}

/// The registered mock IOMMU (a handle; see the module documentation).
#[derive(Clone)]
pub(crate) struct MockIommu {
    iommu: Arc<IommuDevice<MockDriver>>,
    /// The fault queue of the mock IOMMU ("mock-iopfq"); its devices hold it too.
    iopfq: Arc<IopfQueue>,
}

impl MockIommu {
    /// Registers the mock IOMMU and its private bus.
    pub(crate) fn register(module: &'static ThisModule) -> Result<Self> {
        let iommu = IommuDevice::register_private_bus(
            module,
            c"iommufd_rs_mock_iommu",
            c"iommufd_rs_mock",
            c"iommufd_rs_mock",
        )?;
        let iopfq = Arc::new(IopfQueue::new(c"mock-iopfq")?, GFP_KERNEL)?;
        Ok(Self { iommu, iopfq })
    }

    fn mock_domain<'a>(&self, domain: &'a Domain) -> Option<&'a MockDomain> {
        self.iommu.driver_domain(domain).map(|d| d.inner())
    }

    /// Returns whether `domain` is a paging domain of the mock.
    pub(crate) fn is_mock_domain(&self, domain: &Domain) -> bool {
        self.mock_domain(domain).is_some()
    }

    /// `IOMMU_TEST_OP_MD_CHECK_IOTLB`: `EINVAL` unless `domain` is a mock nested domain whose
    /// IOTLB entry `id` exists and holds `value`.
    pub(crate) fn check_iotlb(&self, domain: &Domain, id: u32, value: u32) -> Result {
        let nested = self.iommu.nested_domain(domain).ok_or(EINVAL)?;
        let entry = usize::try_from(id)
            .ok()
            .and_then(|i| nested.inner().iotlb.get(i))
            .ok_or(EINVAL)?;
        if entry.load(Relaxed) != value {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Returns the smallest page size of a mock domain; `EINVAL` for others.
    pub(crate) fn page_size(&self, domain: &Domain) -> Result<usize> {
        self.mock_domain(domain).ok_or(EINVAL)?;
        Ok(domain.min_page_size())
    }

    /// `IOMMU_TEST_OP_DIRTY`: marks dirty the pages of `domain` whose bit is
    /// set in the bitmap, one bit per `page_size` bytes from `iova`, and
    /// returns the number of set bits.
    ///
    /// `read_bitmap` fills the bitmap (`ceil(length / page_size / 8)` bytes,
    /// bit `i` in byte `i / 8`, bit `i % 8`) from user memory; it is called
    /// after the checks, as the C mock copies the bitmap. Errors as the C
    /// mock: `EINVAL` for a zero or unaligned size or IOVA (the caller checks
    /// a NULL bitmap pointer first, also `EINVAL`), `EOVERFLOW` beyond 16M
    /// bytes of bitmap, `EINVAL` for a domain that is not a mock domain or
    /// does not track dirty pages. The caller looks the HWPT up after the
    /// argument checks and before calling this for the domain checks; use
    /// [`MockIommu::check_dirty_args`] for the first part.
    pub(crate) fn set_dirty(
        &self,
        domain: &Domain,
        iova: usize,
        length: usize,
        page_size: usize,
        read_bitmap: impl FnOnce(&mut [u8]) -> Result,
    ) -> Result<u64> {
        let nbits = Self::check_dirty_args(iova, length, page_size)?;
        let mock = self.mock_domain(domain).ok_or(EINVAL)?;
        if !mock.dirty_ops || !mock.tracking.load(Relaxed) {
            return Err(EINVAL);
        }
        let mut bitmap = KVVec::from_elem(0u8, nbits.div_ceil(8), GFP_KERNEL_ACCOUNT)?;
        read_bitmap(&mut bitmap)?;
        let mut count = 0u64;
        for (byte_index, byte) in bitmap.iter().enumerate() {
            for bit in 0..8 {
                let i = byte_index * 8 + bit;
                if i >= nbits || byte & (1 << bit) == 0 {
                    continue;
                }
                // As in C, a bit over an unmapped page still counts, and so does a bit past the
                // top of the address space (user space chooses `iova`; C's sum wraps, here
                // nothing is marked).
                if let Some(at) = i.checked_mul(page_size).and_then(|o| iova.checked_add(o)) {
                    mock.set_dirty(at);
                }
                count += 1;
            }
        }
        Ok(count)
    }

    /// The argument checks of `IOMMU_TEST_OP_DIRTY`; returns the number of bits.
    pub(crate) fn check_dirty_args(iova: usize, length: usize, page_size: usize) -> Result<usize> {
        if page_size == 0 || length == 0 || iova % page_size != 0 || length % page_size != 0 {
            return Err(EINVAL);
        }
        let nbits = length / page_size;
        if nbits > MOCK_DIRTY_MAX_BITS {
            return Err(EOVERFLOW);
        }
        Ok(nbits)
    }
}

/// A mock device on the mock IOMMU's bus; dropping it removes the device.
pub(crate) struct MockDevice {
    dev: BusDeviceOwner<MockDriver>,
}

impl MockDevice {
    /// Adds a mock device with `MOCK_FLAGS_DEVICE_*` `flags`.
    ///
    /// Inlined into its callers: the device's creation allocates and frees some forty times in
    /// the driver core, and a debug kernel records the stack of each (see
    /// [`crate::object::ObjectData::free_after`]), so one frame fewer is measurable there.
    #[inline(always)]
    pub(crate) fn create(iommu: &MockIommu, flags: u32) -> Result<Self> {
        if flags & !(MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID) != 0 {
            return Err(EINVAL);
        }
        let data = MockDevData {
            flags,
            cache: [const { Atomic::new(IOMMU_TEST_DEV_CACHE_DEFAULT) }; MOCK_DEV_CACHE_NUM],
            pasid_reserved_fails_next: Atomic::new(false),
            iopfq: iommu.iopfq.clone(),
            locks: KBox::pin_init(
                pin_init!(MockDevLocks {
                    iopf <- new_mutex!(IopfUsers {
                        rid: false,
                        pasids: KVec::new(),
                    }),
                    report <- new_mutex!(()),
                    viommu <- new_mutex!(None),
                }),
                GFP_KERNEL,
            )?,
        };
        let pasid_bits = if flags & MOCK_FLAGS_DEVICE_PASID != 0 {
            MOCK_PASID_WIDTH
        } else {
            0
        };
        let dev = iommu.iommu.add_device(data, pasid_bits)?;
        Ok(Self { dev })
    }

    fn bus_device(&self) -> &BusDevice<MockDriver> {
        &self.dev
    }

    /// Returns the generic device (for binding it to iommufd).
    pub(crate) fn device(&self) -> &kernel::device::Device {
        self.bus_device().device()
    }

    /// Returns the device's number (its name is `iommufd_rs_mock<id>`).
    pub(crate) fn id(&self) -> u32 {
        self.bus_device().id()
    }

    /// Returns the `MOCK_FLAGS_DEVICE_*` flags the device was created with.
    pub(crate) fn flags(&self) -> u32 {
        self.bus_device().data().flags
    }

    /// Returns whether the device has PASIDs.
    pub(crate) fn pasid_capable(&self) -> bool {
        self.flags() & MOCK_FLAGS_DEVICE_PASID != 0
    }

    /// Returns the mock device data behind `dev`, if `dev` is a mock device.
    pub(crate) fn from_device(dev: &kernel::device::Device) -> Option<&MockDevData> {
        BusDevice::<MockDriver>::from_device(dev).map(|d| d.data())
    }

    /// `IOMMU_TEST_OP_DEV_CHECK_CACHE`: `EINVAL` unless entry `cache_id` exists and holds `value`.
    pub(crate) fn check_cache(&self, cache_id: u32, value: u32) -> Result {
        self.bus_device().data().check_cache(cache_id, value)
    }

    /// Clears cache entry `cache_id`, or all of them (a vIOMMU invalidation).
    pub(crate) fn invalidate_cache(&self, cache_id: Option<u32>) -> Result {
        self.bus_device().data().invalidate_cache(cache_id)
    }
}

impl MockDevData {
    /// See [`MockDevice::check_cache`].
    pub(crate) fn check_cache(&self, cache_id: u32, value: u32) -> Result {
        let entry = usize::try_from(cache_id)
            .ok()
            .and_then(|i| self.cache.get(i))
            .ok_or(EINVAL)?;
        if entry.load(Relaxed) != value {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// See [`MockDevice::invalidate_cache`].
    pub(crate) fn invalidate_cache(&self, cache_id: Option<u32>) -> Result {
        match cache_id {
            None => {
                for entry in &self.cache {
                    entry.store(0, Relaxed);
                }
            }
            Some(id) => {
                let entry = usize::try_from(id)
                    .ok()
                    .and_then(|i| self.cache.get(i))
                    .ok_or(EINVAL)?;
                entry.store(0, Relaxed);
            }
        }
        Ok(())
    }

    /// Returns the device's `MOCK_FLAGS_DEVICE_*` flags.
    pub(crate) fn flags(&self) -> u32 {
        self.flags
    }

    /// `IOMMU_TEST_OP_TRIGGER_VEVENT`: reports a selftest vEVENT with the device's virtual id
    /// to the vIOMMU of the nested domain it is attached to; `ENOENT` if there is none (or the
    /// id is 0), and the vIOMMU's answer otherwise (`EOPNOTSUPP` without a selftest vEVENTQ).
    pub(crate) fn trigger_vevent(&self) -> Result {
        let viommu = self.locks.viommu.lock();
        match &*viommu {
            Some((core, virt_id)) if *virt_id != 0 => {
                // CAST: `struct iommu_viommu_event_selftest` carries the id as a `__u32`.
                let event = (*virt_id as u32).to_ne_bytes();
                core.report_event(IOMMU_VEVENTQ_TYPE_SELFTEST, &event)
            }
            _ => Err(ENOENT),
        }
    }

    /// Runs `f`, which changes the device's attachments, with fault reports held off.
    pub(crate) fn with_reports_held<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.locks.report.lock();
        f()
    }

    /// `IOMMU_TEST_OP_TRIGGER_IOPF`: reports a one-page fault group of `dev` (this device), on
    /// `pasid` unless it is `IOMMU_NO_PASID`. As in C, what becomes of the report is not
    /// returned: the fault is queued where the device's attachment sends it, or answered.
    pub(crate) fn trigger_iopf(
        &self,
        dev: &kernel::device::Device,
        pasid: u32,
        grpid: u32,
        perm: u32,
        addr: u64,
    ) {
        let mut flags = PAGE_REQUEST_LAST_PAGE;
        if pasid != 0 {
            flags |= PAGE_REQUEST_PASID_VALID;
        }
        let _guard = self.locks.report.lock();
        let _ = report_device_fault(
            dev,
            PageRequest {
                flags,
                pasid,
                grpid,
                perm,
                addr,
            },
        );
    }
}
