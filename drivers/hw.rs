// SPDX-License-Identifier: GPL-2.0

//! The IOMMU hardware: what the object layer asks of a particular IOMMU, behind one trait.
//!
//! [`Nesting`] is the backend trait of the nesting core: allocating a nested domain over a nest
//! parent and handing it user space's cache invalidations (and, with the vIOMMU, the vIOMMU's
//! operations). [`backend`] selects the backend of a device. Today every device uses
//! [`DriverOps`], the IOMMU driver's own operations (`iommu_ops.domain_alloc_nested`, the nested
//! domain's `cache_invalidate_user`), which is how the mock IOMMU nests (a Rust driver on the
//! kernel crate's [`kernel::iommu::driver`]) and how C drivers such as VT-d's nest upstream. The
//! Rust SMMUv3 and VT-d backends are selected here when they exist.
//!
//! [`mock`] is the mock IOMMU the selftests use (only with `CONFIG_IOMMUFD_TEST`): a Rust IOMMU
//! driver on a private bus whose domains the selftest ops inspect.

use kernel::{
    device::Device,
    iommu::domain::{
        Domain,
        NestedDomain,
        PagingDomain,
        UserData,
        UserDataArray, //
    },
    prelude::*,
};

#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) mod mock;
#[cfg(not(CONFIG_IOMMUFD_TEST))]
#[path = "hw/mock/none.rs"]
pub(crate) mod mock;

/// The nesting operations of one kind of IOMMU hardware.
pub(crate) trait Nesting: Sync {
    /// Allocates a nested domain for `dev` over `parent`, a nest-parent paging domain of the
    /// device's IOMMU, from user space's `data` (`IOMMU_HWPT_DATA_*`).
    fn alloc_nested(
        &self,
        dev: &Device,
        parent: &PagingDomain,
        flags: u32,
        data: &UserData,
    ) -> Result<NestedDomain>;

    /// Carries out user space's cache invalidations for `nested`; `array` tells afterwards how
    /// many entries were handled.
    fn cache_invalidate(&self, nested: &NestedDomain, array: &mut UserDataArray) -> Result;
}

/// The IOMMU driver's own nesting operations, through its `struct iommu_ops`.
pub(crate) struct DriverOps;

impl Nesting for DriverOps {
    fn alloc_nested(
        &self,
        dev: &Device,
        parent: &PagingDomain,
        flags: u32,
        data: &UserData,
    ) -> Result<NestedDomain> {
        NestedDomain::alloc(dev, parent, flags, data)
    }

    fn cache_invalidate(&self, nested: &NestedDomain, array: &mut UserDataArray) -> Result {
        nested.cache_invalidate_user(array)
    }
}

/// The backend of `dev`.
pub(crate) fn backend(_dev: &Device) -> &'static dyn Nesting {
    &DriverOps
}

/// The backend that allocated `domain`.
pub(crate) fn backend_of(_domain: &Domain) -> &'static dyn Nesting {
    &DriverOps
}
