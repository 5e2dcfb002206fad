// SPDX-License-Identifier: GPL-2.0

//! `IOMMU_GET_HW_INFO`: what the IOMMU behind a bound device is and can do.
//!
//! The driver's own structure is copied to the user buffer (as much as fits; a larger buffer
//! gets its tail zeroed) and its full length is reported back. The capabilities are the
//! generic ones iommufd knows how to use: dirty tracking, ATS, and the PASID width.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    iommu::domain::{
        device_capable,
        device_has_hw_info,
        device_hw_info,
        device_max_pasids,
        Capability, //
    },
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};
use zerocopy_derive::Immutable;

use crate::{
    device::IDevice,
    hw,
    object::ObjectType,
    ucmd::{
        Ucmd,
        UserCmd, //
    }, //
};

/// `IOMMU_HW_INFO_FLAG_INPUT_TYPE`: `in_data_type` names the type user space wants.
const IOMMU_HW_INFO_FLAG_INPUT_TYPE: u32 = 1 << 0;
/// `IOMMU_HW_INFO_TYPE_NONE`: the driver reports no data.
const IOMMU_HW_INFO_TYPE_NONE: u32 = 0;
/// `IOMMU_HW_INFO_TYPE_DEFAULT`: the driver's own type (the same value as `NONE`).
const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
/// `IOMMU_HW_CAP_DIRTY_TRACKING`.
const IOMMU_HW_CAP_DIRTY_TRACKING: u64 = 1 << 0;
/// `IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED`.
const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED: u64 = 1 << 3;

/// `struct iommu_hw_info`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwInfo {
    size: u32,
    flags: u32,
    dev_id: u32,
    data_len: u32,
    data_uptr: u64,
    /// `in_data_type` on input, `out_data_type` on output.
    data_type: u32,
    out_max_pasid_log2: u8,
    reserved: [u8; 3],
    out_capabilities: u64,
}

const _: () = assert!(size_of::<IommuHwInfo>() == 40);

impl UserCmd for IommuHwInfo {
    const MIN_SIZE: usize = offset_of!(IommuHwInfo, reserved) + 3;
}

/// `IOMMU_GET_HW_INFO`.
pub(crate) fn get_hw_info_ioctl(ucmd: &mut Ucmd<'_, IommuHwInfo>) -> Result {
    let cmd = &mut ucmd.cmd;
    if cmd.flags & !IOMMU_HW_INFO_FLAG_INPUT_TYPE != 0 || cmd.reserved != [0; 3] {
        return Err(EOPNOTSUPP);
    }
    if cmd.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE == 0 {
        cmd.data_type = IOMMU_HW_INFO_TYPE_DEFAULT;
    }
    let obj = ucmd.ictx.objects.get(cmd.dev_id, ObjectType::Device)?;
    let idev = obj.data::<IDevice>().ok_or(ENOENT)?;
    let dev = idev.device();

    let (info_type, data) = if let Some(info) = hw::backend(dev).hw_info(dev, cmd.data_type) {
        let info = info?;
        (info.info_type, info.data)
    } else if device_has_hw_info(dev) {
        let info = device_hw_info(dev, cmd.data_type)?;
        if info.info_type == IOMMU_HW_INFO_TYPE_NONE {
            // A driver with `hw_info` must report a type of its own.
            return Err(EOPNOTSUPP);
        }
        (info.info_type, info.data)
    } else {
        (IOMMU_HW_INFO_TYPE_NONE, KVec::new())
    };
    cmd.data_type = info_type;

    let user_len = cmd.data_len as usize;
    let copy_len = user_len.min(data.len());
    let mut writer = UserSlice::new(UserPtr::from_addr(cmd.data_uptr as usize), user_len).writer();
    writer.write_slice(data.get(..copy_len).ok_or(EINVAL)?)?;
    // A larger user buffer gets its tail zeroed.
    let zeros = [0u8; 64];
    while !writer.is_empty() {
        let n = writer.len().min(zeros.len());
        writer.write_slice(&zeros[..n])?;
    }
    cmd.data_len = u32::try_from(data.len()).map_err(|_| EOVERFLOW)?;

    cmd.out_capabilities = 0;
    if device_capable(dev, Capability::DirtyTracking) {
        cmd.out_capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
    }
    if !device_capable(dev, Capability::PciAtsSupported) {
        cmd.out_capabilities |= IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED;
    }
    // TODO: Report the PCI PASID capabilities (`IOMMU_HW_CAP_PCI_PASID_EXEC`, `_PRIV`) of PCI
    // devices once devices other than the mock's can be bound; the width is generic.
    let max_pasids = device_max_pasids(dev);
    cmd.out_max_pasid_log2 = if max_pasids != 0 {
        // CAST: `ilog2` of a `u32` is below 32.
        max_pasids.ilog2() as u8
    } else {
        0
    };
    ucmd.respond()
}
