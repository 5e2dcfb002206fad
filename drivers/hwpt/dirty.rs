// SPDX-License-Identifier: GPL-2.0

//! Dirty tracking of paging HWPTs: `IOMMU_HWPT_SET_DIRTY_TRACKING` and
//! `IOMMU_HWPT_GET_DIRTY_BITMAP`.
//!
//! Both commands hold the lock of the IOAS's page table while they work on the domain, so no
//! area can be unmapped (and its IOVA reused) while its dirty bits are cleared or read. Dirty
//! bits are only read where areas are mapped: a range is walked area by area, as far as the
//! areas cover it without a gap.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    iommu::domain::{
        Domain,
        IovaBitmap,
        DIRTY_NO_CLEAR, //
    },
    prelude::*,
    uaccess::UserPtr, //
};
use zerocopy_derive::Immutable;

use crate::{
    hwpt::HwptPaging,
    ioas::io_pagetable::{
        IoPagetable,
        IoptState, //
    },
    object::ObjectType,
    ucmd::{
        Ucmd,
        UserCmd, //
    }, //
};

/// `IOMMU_HWPT_DIRTY_TRACKING_ENABLE`.
const IOMMU_HWPT_DIRTY_TRACKING_ENABLE: u32 = 1 << 0;
/// `IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`.
const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: u32 = 1 << 0;

/// `struct iommu_hwpt_set_dirty_tracking`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwptSetDirtyTracking {
    size: u32,
    flags: u32,
    hwpt_id: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<IommuHwptSetDirtyTracking>() == 16);

impl UserCmd for IommuHwptSetDirtyTracking {
    const MIN_SIZE: usize = offset_of!(IommuHwptSetDirtyTracking, reserved) + size_of::<u32>();
}

/// `struct iommu_hwpt_get_dirty_bitmap`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwptGetDirtyBitmap {
    size: u32,
    hwpt_id: u32,
    flags: u32,
    reserved: u32,
    iova: u64,
    length: u64,
    page_size: u64,
    data: u64,
}

const _: () = assert!(size_of::<IommuHwptGetDirtyBitmap>() == 48);

impl UserCmd for IommuHwptGetDirtyBitmap {
    const MIN_SIZE: usize = offset_of!(IommuHwptGetDirtyBitmap, data) + size_of::<u64>();
}

/// Converts an IOVA or a length to the kernel's `unsigned long`.
fn ulong(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| EOVERFLOW)
}

/// Clears the dirty bits of every area in `domain`, so tracking starts from a clean state.
fn clear_dirty(st: &IoptState, domain: &Domain) -> Result {
    for (first, last) in st.area_ranges() {
        let length = ulong(last - first)?.checked_add(1).ok_or(EOVERFLOW)?;
        domain.read_and_clear_dirty(ulong(first)?, length, 0, None)?;
    }
    Ok(())
}

/// `IOMMU_HWPT_SET_DIRTY_TRACKING`: starts or stops dirty tracking on a paging HWPT.
pub(crate) fn set_dirty_tracking_ioctl(ucmd: &mut Ucmd<'_, IommuHwptSetDirtyTracking>) -> Result {
    let cmd = &ucmd.cmd;
    if cmd.flags & !IOMMU_HWPT_DIRTY_TRACKING_ENABLE != 0 {
        return Err(EOPNOTSUPP);
    }
    let obj = ucmd.ictx.objects.get(cmd.hwpt_id, ObjectType::HwptPaging)?;
    let hwpt = obj.data::<HwptPaging>().ok_or(ENOENT)?;
    let domain: &Domain = &hwpt.domain;
    if !domain.has_dirty_ops() {
        return Err(EOPNOTSUPP);
    }
    let enable = cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE != 0;
    let ioas = hwpt.ioas()?;
    let st = ioas.iopt.state.lock();
    if enable {
        clear_dirty(&st, domain)?;
    }
    domain.set_dirty_tracking(enable)
}

/// Checks the range and granule of a bitmap request against the IOAS's alignment `align`.
fn check_iova_range(cmd: &IommuHwptGetDirtyBitmap, align: u64) -> Result {
    if cmd.length == 0 {
        return Err(EINVAL);
    }
    let last = cmd.iova.checked_add(cmd.length - 1).ok_or(EOVERFLOW)?;
    ulong(last)?;
    let end = last.wrapping_add(1);
    let mask = align.wrapping_sub(1);
    if cmd.iova & mask != 0 || end & mask != 0 {
        return Err(EINVAL);
    }
    if cmd.page_size == 0 {
        return Err(EINVAL);
    }
    let mask = cmd.page_size - 1;
    if cmd.iova & mask != 0 || end & mask != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Reads (and unless `flags` has [`DIRTY_NO_CLEAR`], clears) the dirty bits of the areas in
/// `[iova, iova + length)` into `chunk`.
fn read_dirty_chunk(
    st: &IoptState,
    domain: &Domain,
    flags: u64,
    chunk: &kernel::iommu::domain::IovaBitmapChunk,
    iova: usize,
    length: usize,
) -> Result {
    IoPagetable::walk(
        st,
        iova as u64,
        length as u64,
        |area_iova, _area, off, len| {
            let start = ulong(area_iova + off)?;
            domain.read_and_clear_dirty(start, ulong(len)?, flags, Some(chunk))?;
            Ok(())
        },
    )
}

/// `IOMMU_HWPT_GET_DIRTY_BITMAP`: reports the dirty pages of a range into a user bitmap.
pub(crate) fn get_dirty_bitmap_ioctl(ucmd: &mut Ucmd<'_, IommuHwptGetDirtyBitmap>) -> Result {
    let cmd = &ucmd.cmd;
    if cmd.flags & !IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR != 0 || cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let obj = ucmd.ictx.objects.get(cmd.hwpt_id, ObjectType::HwptPaging)?;
    let hwpt = obj.data::<HwptPaging>().ok_or(ENOENT)?;
    let ioas = hwpt.ioas()?;
    check_iova_range(cmd, ioas.iopt.iova_alignment())?;
    let domain: &Domain = &hwpt.domain;
    let flags = if cmd.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR != 0 {
        DIRTY_NO_CLEAR
    } else {
        0
    };
    let st = ioas.iopt.state.lock();
    if !domain.has_dirty_ops() {
        return Err(EOPNOTSUPP);
    }
    let data = UserPtr::from_addr(ulong(cmd.data)?);
    let mut bitmap = IovaBitmap::alloc(
        ulong(cmd.iova)?,
        ulong(cmd.length)?,
        ulong(cmd.page_size)?,
        data,
    )
    .map_err(|_| ENOMEM)?;
    // As upstream, a failure part way (a gap between areas, a driver error) is not reported:
    // the bitmap holds what was read until then.
    let _ = bitmap
        .for_each(|chunk, iova, length| read_dirty_chunk(&st, domain, flags, chunk, iova, length));
    Ok(())
}
