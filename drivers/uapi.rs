// SPDX-License-Identifier: GPL-2.0

//! The iommufd uAPI structures this module reads and writes.
//!
//! C header: [`include/uapi/linux/iommufd.h`](srctree/include/uapi/linux/iommufd.h)
//!
//! Each structure has the layout of its C counterpart (`#[repr(C)]`, the same
//! fields in the same order). The `zerocopy` derives check at compile time
//! that every bit pattern is valid and that there is no padding, so the
//! structures can be copied from and to user memory as plain bytes. The
//! layout is also asserted against the sizes the C header gives.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::prelude::*;
use zerocopy_derive::Immutable;

/// `IOMMUFD_TYPE`: the ioctl type of every iommufd command.
pub(crate) const IOMMUFD_TYPE: u32 = b';' as u32;

/// `IOMMUFD_CMD_BASE`: the ioctl number of the first iommufd command.
pub(crate) const IOMMUFD_CMD_BASE: u32 = 0x80;

/// The ioctl number of the last iommufd command in Linux 7.3
/// (`IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA`).
pub(crate) const IOMMUFD_CMD_LAST: u32 = 0x95;

/// `struct iommu_destroy`: destroys any object by id.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuDestroy {
    /// `sizeof(struct iommu_destroy)` as user space knows it.
    pub(crate) size: u32,
    /// The object to destroy.
    pub(crate) id: u32,
}

/// `struct iommu_ioas_alloc`: creates an IOAS.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasAlloc {
    /// `sizeof(struct iommu_ioas_alloc)` as user space knows it.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) flags: u32,
    /// Output: the id of the new IOAS.
    pub(crate) out_ioas_id: u32,
}

/// `struct iommu_iova_range`: one inclusive range of IOVA.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIovaRange {
    /// The first IOVA of the range.
    pub(crate) start: u64,
    /// The last IOVA of the range (inclusive).
    pub(crate) last: u64,
}

/// `struct iommu_ioas_iova_ranges`: reports the IOVA ranges an IOAS allows.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasIovaRanges {
    /// `sizeof(struct iommu_ioas_iova_ranges)` as user space knows it.
    pub(crate) size: u32,
    /// The IOAS to query.
    pub(crate) ioas_id: u32,
    /// Input: entries in `allowed_iovas`; output: ranges the IOAS allows.
    pub(crate) num_iovas: u32,
    /// `__reserved`: must be 0.
    pub(crate) reserved: u32,
    /// User pointer to an array of [`IommuIovaRange`].
    pub(crate) allowed_iovas: u64,
    /// Output: the alignment every mapping's IOVA and length must have.
    pub(crate) out_iova_alignment: u64,
}

/// Asserts that a structure has the size the C header gives it.
macro_rules! assert_size {
    ($t:ty, $size:expr) => {
        const _: () = assert!(size_of::<$t>() == $size);
    };
}

assert_size!(IommuDestroy, 8);
assert_size!(IommuIoasAlloc, 12);
assert_size!(IommuIovaRange, 16);
assert_size!(IommuIoasIovaRanges, 32);
const _: () = assert!(offset_of!(IommuIoasIovaRanges, allowed_iovas) == 16);
