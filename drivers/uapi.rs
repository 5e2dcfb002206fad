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

/// `struct iommu_ioas_allow_iovas`: sets the IOVA ranges the kernel may use.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasAllowIovas {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// The IOAS.
    pub(crate) ioas_id: u32,
    /// Entries in `allowed_iovas`.
    pub(crate) num_iovas: u32,
    /// Must be 0.
    pub(crate) reserved: u32,
    /// User pointer to an array of [`IommuIovaRange`].
    pub(crate) allowed_iovas: u64,
}

/// `IOMMU_IOAS_MAP_FIXED_IOVA`.
pub(crate) const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
/// `IOMMU_IOAS_MAP_WRITEABLE`.
pub(crate) const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
/// `IOMMU_IOAS_MAP_READABLE`.
pub(crate) const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

/// `struct iommu_ioas_map`: maps user memory into an IOAS.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasMap {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub(crate) flags: u32,
    /// The IOAS.
    pub(crate) ioas_id: u32,
    /// Must be 0.
    pub(crate) reserved: u32,
    /// User address of the memory.
    pub(crate) user_va: u64,
    /// Bytes to map.
    pub(crate) length: u64,
    /// IOVA (input with FIXED_IOVA, else output).
    pub(crate) iova: u64,
}

/// `struct iommu_ioas_copy`: maps what one IOAS maps into another.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasCopy {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub(crate) flags: u32,
    /// Destination IOAS.
    pub(crate) dst_ioas_id: u32,
    /// Source IOAS.
    pub(crate) src_ioas_id: u32,
    /// Bytes to copy.
    pub(crate) length: u64,
    /// Destination IOVA (input with FIXED_IOVA, else output).
    pub(crate) dst_iova: u64,
    /// Source IOVA.
    pub(crate) src_iova: u64,
}

/// `struct iommu_ioas_unmap`: unmaps a range of an IOAS.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasUnmap {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// The IOAS.
    pub(crate) ioas_id: u32,
    /// First IOVA.
    pub(crate) iova: u64,
    /// Bytes (output: bytes unmapped).
    pub(crate) length: u64,
}

/// `struct iommu_ioas_map_file`: maps part of a memfd into an IOAS.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasMapFile {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// `IOMMU_IOAS_MAP_*`.
    pub(crate) flags: u32,
    /// The IOAS.
    pub(crate) ioas_id: u32,
    /// The memfd (or dma-buf).
    pub(crate) fd: i32,
    /// File offset of the first byte.
    pub(crate) start: u64,
    /// Bytes to map.
    pub(crate) length: u64,
    /// IOVA (input with FIXED_IOVA, else output).
    pub(crate) iova: u64,
}

/// `struct iommu_ioas_change_process`: moves the pinned-page charge to the caller.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuIoasChangeProcess {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) reserved: u32,
}

/// `IOMMU_OPTION_RLIMIT_MODE`.
pub(crate) const IOMMU_OPTION_RLIMIT_MODE: u32 = 0;
/// `IOMMU_OPTION_HUGE_PAGES`.
pub(crate) const IOMMU_OPTION_HUGE_PAGES: u32 = 1;
/// `IOMMU_OPTION_OP_SET`.
pub(crate) const IOMMU_OPTION_OP_SET: u16 = 0;
/// `IOMMU_OPTION_OP_GET`.
pub(crate) const IOMMU_OPTION_OP_GET: u16 = 1;

/// `struct iommu_option`: reads or writes an option.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuOption {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// `IOMMU_OPTION_*`.
    pub(crate) option_id: u32,
    /// `IOMMU_OPTION_OP_*`.
    pub(crate) op: u16,
    /// Must be 0.
    pub(crate) reserved: u16,
    /// Object the option applies to, or 0 for global options.
    pub(crate) object_id: u32,
    /// The value.
    pub(crate) val64: u64,
}

/// `IOMMU_VFIO_IOAS_GET`.
pub(crate) const IOMMU_VFIO_IOAS_GET: u16 = 0;
/// `IOMMU_VFIO_IOAS_SET`.
pub(crate) const IOMMU_VFIO_IOAS_SET: u16 = 1;
/// `IOMMU_VFIO_IOAS_CLEAR`.
pub(crate) const IOMMU_VFIO_IOAS_CLEAR: u16 = 2;

/// `struct iommu_vfio_ioas`: the IOAS used by the VFIO compatibility ioctls.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuVfioIoas {
    /// Size as user space knows it.
    pub(crate) size: u32,
    /// The IOAS (input for SET, output for GET).
    pub(crate) ioas_id: u32,
    /// `IOMMU_VFIO_IOAS_*`.
    pub(crate) op: u16,
    /// Must be 0.
    pub(crate) reserved: u16,
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
assert_size!(IommuIoasAllowIovas, 24);
assert_size!(IommuIoasMap, 40);
assert_size!(IommuIoasCopy, 40);
assert_size!(IommuIoasUnmap, 24);
assert_size!(IommuOption, 24);
assert_size!(IommuVfioIoas, 12);
assert_size!(IommuIoasMapFile, 40);
assert_size!(IommuIoasChangeProcess, 8);

/// `IOMMU_HWPT_DATA_VTD_S1`: a nested HWPT described by [`HwptVtdS1`].
pub(crate) const IOMMU_HWPT_DATA_VTD_S1: u32 = 1;
/// `IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`: invalidation entries of type [`InvalidateVtdS1`].
pub(crate) const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: u32 = 0;

/// `struct iommu_hwpt_vtd_s1`: a VT-d first-stage table (the VT-d backend's and the shadow
/// engine's input). Read with [`kernel::iommu::domain::UserData::copy_struct`], hence the
/// kernel crate's byte traits rather than `zerocopy`'s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Zeroable)]
pub(crate) struct HwptVtdS1 {
    pub(crate) flags: u64,
    pub(crate) pgtbl_addr: u64,
    pub(crate) addr_width: u32,
    pub(crate) reserved: u32,
}

/// `struct iommu_hwpt_vtd_s1_invalidate`: one first-stage invalidation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Zeroable)]
pub(crate) struct InvalidateVtdS1 {
    pub(crate) addr: u64,
    pub(crate) npages: u64,
    pub(crate) flags: u32,
    pub(crate) reserved: u32,
}

const _: () = assert!(size_of::<HwptVtdS1>() == 24);
const _: () = assert!(size_of::<InvalidateVtdS1>() == 24);

// SAFETY: Two `u64`s and two `u32`s, no padding; every bit pattern is valid.
unsafe impl kernel::transmute::FromBytes for HwptVtdS1 {}
// SAFETY: No padding.
unsafe impl kernel::transmute::AsBytes for HwptVtdS1 {}
// SAFETY: Two `u64`s and two `u32`s, no padding; every bit pattern is valid.
unsafe impl kernel::transmute::FromBytes for InvalidateVtdS1 {}
// SAFETY: No padding.
unsafe impl kernel::transmute::AsBytes for InvalidateVtdS1 {}
