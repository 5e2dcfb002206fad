// SPDX-License-Identifier: GPL-2.0

//! The IOMMU hardware this module drives itself.
//!
//! Today that is the mock IOMMU the selftests use ([`mock`], only with `CONFIG_IOMMUFD_TEST`): a
//! Rust IOMMU driver on a private bus whose domains the selftest ops inspect. The per-hardware
//! nesting backends (mock, SMMUv3, VT-d) join it here, behind one trait.

#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) mod mock;
#[cfg(not(CONFIG_IOMMUFD_TEST))]
#[path = "hw/mock/none.rs"]
pub(crate) mod mock;
