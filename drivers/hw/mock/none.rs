// SPDX-License-Identifier: GPL-2.0

//! Without `CONFIG_IOMMUFD_TEST` there is no mock IOMMU (the IOMMU core builds its private-bus
//! registration only then, and upstream's mock is selftest-only too). The type exists so that
//! device objects build the same way; it cannot have a value.

/// A mock device; never exists.
pub(crate) enum MockDevice {}

/// No device is a mock device.
pub(crate) fn backend(_dev: &kernel::device::Device) -> Option<&'static dyn super::Nesting> {
    None
}
