// SPDX-License-Identifier: GPL-2.0

//! Without `CONFIG_IOMMUFD_TEST` there is no `IOMMU_TEST_CMD` (its ioctl number is `ENOTTY`, as
//! upstream's) and no selftest object. The type exists so that the object table builds the same
//! way; it cannot have a value.

use crate::IommufdCtx;

/// A selftest device; never exists.
pub(crate) enum StDev {}

impl StDev {
    /// Cannot be called: there is no [`StDev`].
    pub(crate) fn teardown(&self, _ictx: &IommufdCtx) {
        match *self {}
    }
}
