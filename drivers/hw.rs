// SPDX-License-Identifier: GPL-2.0

//! The IOMMU hardware: what the object layer asks of a particular IOMMU, behind one trait.
//!
//! [`Nesting`] is the backend trait of the nesting core: allocating a nested domain over a nest
//! parent and handing it user space's cache invalidations (and, with the vIOMMU, the vIOMMU's
//! operations). [`backend`] selects the backend of a device: by default
//! [`DriverOps`], the IOMMU driver's own operations (`iommu_ops.domain_alloc_nested`, the nested
//! domain's `cache_invalidate_user`), which is how the mock IOMMU nests (a Rust driver on the
//! kernel crate's [`kernel::iommu::driver`]) and how C drivers nest upstream, unless a backend
//! of this module serves the hardware: [`smmuv3`] (vIOMMUs) and [`vtd`] (nested domains over
//! a nest parent), each on the mechanism its C driver exports.
//!
//! [`mock`] is the mock IOMMU the selftests use (only with `CONFIG_IOMMUFD_TEST`): a Rust IOMMU
//! driver on a private bus whose domains the selftest ops inspect.

use kernel::{
    device::Device,
    iommu::domain::{
        device_can_nest,
        Domain,
        HwInfoData,
        NestedDomain,
        PagingDomain,
        UserData,
        UserDataArray, //
    },
    prelude::*,
    sync::Arc,
    transmute::AsBytes,
};

use crate::viommu::{
    hw_queue::HwQueueInit,
    ViommuServices, //
};

#[cfg(CONFIG_ARM_SMMU_V3_RUST_NESTING)]
pub(crate) mod smmuv3;
#[cfg(CONFIG_INTEL_IOMMU_RUST_NESTING)]
pub(crate) mod vtd;

#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) mod mock;
#[cfg(not(CONFIG_IOMMUFD_TEST))]
#[path = "hw/mock/none.rs"]
pub(crate) mod mock;
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) mod selfcheck;

/// The nesting operations of one kind of IOMMU hardware.
///
/// Two ways of nesting meet here. VT-d style: a nested domain is allocated over a nest-parent
/// paging domain ([`Nesting::alloc_nested`]) and invalidated through itself
/// ([`Nesting::cache_invalidate`]). SMMUv3 style: a vIOMMU is made over the nest parent
/// ([`Nesting::viommu_alloc`]), and nested domains, invalidations, virtual devices and hardware
/// queues go through it ([`ViommuHw`]).
pub(crate) trait Nesting: Sync {
    /// Whether the hardware of `dev` can have nested domains over a nest parent at all
    /// (upstream: the driver has `domain_alloc_nested`); `EOPNOTSUPP` before any other check
    /// otherwise.
    fn can_nest(&self, dev: &Device) -> bool {
        device_can_nest(dev)
    }

    /// Allocates a nested domain for `dev` over `parent`, a nest-parent paging domain of the
    /// device's IOMMU, from user space's `data` (`IOMMU_HWPT_DATA_*`). By default through the
    /// IOMMU driver's own `domain_alloc_nested` (`EOPNOTSUPP` without one).
    fn alloc_nested(
        &self,
        dev: &Device,
        parent: &PagingDomain,
        flags: u32,
        data: &UserData,
    ) -> Result<NestedDomain> {
        NestedDomain::alloc(dev, parent, flags, data)
    }

    /// Carries out user space's cache invalidations for `nested`; `array` tells afterwards how
    /// many entries were handled. By default the nested domain's own `cache_invalidate_user`.
    fn cache_invalidate(&self, nested: &NestedDomain, array: &mut UserDataArray) -> Result {
        nested.cache_invalidate_user(array)
    }

    /// Whether the hardware of `dev` has vIOMMUs of `viommu_type` (upstream's
    /// `get_viommu_size() != 0`); checked before anything else is looked up.
    fn viommu_supported(&self, _dev: &Device, _viommu_type: u32) -> bool {
        false
    }

    /// Makes the hardware part of a vIOMMU of `viommu_type` (`IOMMU_VIOMMU_TYPE_*`) for `dev`
    /// over `parent`, a nest-parent paging domain, from user space's `data` (if any).
    ///
    /// `EOPNOTSUPP` for a type the hardware does not have (the default). The backend may
    /// write results back into `data` and offer mmap regions through `svc`.
    fn viommu_alloc(
        &self,
        _dev: &Device,
        _parent: &Arc<PagingDomain>,
        _viommu_type: u32,
        _data: Option<&UserData>,
        _svc: &ViommuServices<'_>,
    ) -> Result<KBox<dyn ViommuHw>> {
        Err(EOPNOTSUPP)
    }

    /// The hardware information of `dev` (`IOMMU_GET_HW_INFO`) for the `requested` type
    /// (`IOMMU_HW_INFO_TYPE_*`, `DEFAULT` for the hardware's own), when the backend reports it
    /// itself; `None` leaves it to the IOMMU driver's `hw_info`.
    fn hw_info(&self, _dev: &Device, _requested: u32) -> Option<Result<HwInfoData>> {
        None
    }
}

/// The answer of [`Nesting::hw_info`]: `val`, the driver's uAPI structure of `info_type`, as
/// bytes.
#[cfg_attr(
    not(any(CONFIG_ARM_SMMU_V3_RUST_NESTING, CONFIG_INTEL_IOMMU_RUST_NESTING)),
    expect(dead_code)
)]
pub(crate) fn hw_info_data<T: AsBytes>(info_type: u32, val: &T) -> Result<HwInfoData> {
    let mut data = KVec::new();
    data.extend_from_slice(val.as_bytes(), GFP_KERNEL)?;
    Ok(HwInfoData { info_type, data })
}

/// The hardware part of a vIOMMU (upstream's `struct iommufd_viommu_ops` and the driver's
/// structure around `struct iommufd_viommu`). Dropping it is the vIOMMU's destroy.
///
/// Every operation has upstream's answer for a driver without it as default.
pub(crate) trait ViommuHw: Send + Sync {
    /// Allocates a nested domain of the vIOMMU from user space's `data`; `flags` are the
    /// `IOMMU_HWPT_ALLOC_*` flags meant for the driver.
    fn alloc_nested(&self, _flags: u32, _data: &UserData) -> Result<NestedDomain> {
        Err(EOPNOTSUPP)
    }

    /// Carries out user space's cache invalidations (guest commands) in `array`, recording how
    /// many entries were handled.
    fn cache_invalidate(&self, array: &mut UserDataArray) -> Result {
        array.set_done(0);
        Err(EOPNOTSUPP)
    }

    /// Accepts a new virtual device `virt_id` for `dev` (upstream's `vdevice_init`); what it
    /// returns is dropped when the vDEVICE goes (upstream's `vdevice->destroy`).
    fn vdevice_init(&self, _dev: &Device, _virt_id: u64) -> Result<Option<KBox<dyn VDeviceHw>>> {
        Ok(None)
    }

    /// Whether the hardware has queues of `queue_type` (`IOMMU_HW_QUEUE_TYPE_*`): upstream's
    /// `get_hw_queue_size() != 0`.
    fn hw_queue_supported(&self, _queue_type: u32) -> bool {
        false
    }

    /// Starts a hardware queue described by `q` (type, index, and the physical address of the
    /// guest memory the core pinned for it). Dropping what it returns stops the queue.
    fn hw_queue_init(&self, _q: &HwQueueInit<'_>) -> Result<KBox<dyn HwQueueHw>> {
        Err(EOPNOTSUPP)
    }
}

/// The hardware part of a vDEVICE; dropping it is the vDEVICE's destroy.
pub(crate) trait VDeviceHw: Send + Sync {}

/// The hardware part of a HW queue; dropping it stops the queue.
pub(crate) trait HwQueueHw: Send + Sync {}

/// The IOMMU driver's own nesting operations, through its `struct iommu_ops`.
pub(crate) struct DriverOps;

impl Nesting for DriverOps {}

/// The backend of `dev`: the mock's for mock devices, the SMMUv3 or VT-d backend for devices
/// those drivers translate (when the kernel offers their nesting mechanism), otherwise the
/// driver's own operations.
pub(crate) fn backend(dev: &Device) -> &'static dyn Nesting {
    if let Some(mock) = mock::backend(dev) {
        return mock;
    }
    #[cfg(CONFIG_ARM_SMMU_V3_RUST_NESTING)]
    if let Some(smmu) = smmuv3::backend(dev) {
        return smmu;
    }
    #[cfg(CONFIG_INTEL_IOMMU_RUST_NESTING)]
    if let Some(vtd) = vtd::backend(dev) {
        return vtd;
    }
    &DriverOps
}

/// The backend that allocated `domain`.
#[cfg_attr(not(CONFIG_INTEL_IOMMU_RUST_NESTING), expect(unused_variables))]
pub(crate) fn backend_of(domain: &Domain) -> &'static dyn Nesting {
    #[cfg(CONFIG_INTEL_IOMMU_RUST_NESTING)]
    if let Some(vtd) = vtd::backend_of(domain) {
        return vtd;
    }
    &DriverOps
}
