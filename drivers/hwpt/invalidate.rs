// SPDX-License-Identifier: GPL-2.0

//! `IOMMU_HWPT_INVALIDATE`: user space's cache invalidation requests, handed to the driver of a
//! HWPT_NESTED (VT-d style: the nested domain invalidates) or of a vIOMMU (SMMUv3 style: guest
//! commands).
//!
//! The command carries an array of driver-defined entries. The core bounds it so that one call
//! cannot pin a CPU or make the driver scan an unbounded tail, and reports back in `entry_num`
//! how many entries the driver handled, also when it fails part way.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    iommu::domain::UserDataArray,
    page::PAGE_SIZE,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::UserPtr, //
};
use zerocopy_derive::Immutable;

use super::nested::{
    HwptNested,
    NestedHw, //
};
use crate::{
    hw,
    ucmd::{
        Ucmd,
        UserCmd, //
    }, //
    viommu::Viommu,
};

/// Upstream's cap on the entries of one call, far above any real batch.
const ENTRY_NUM_MAX: u32 = 1 << 19;

/// `struct iommu_hwpt_invalidate`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwptInvalidate {
    size: u32,
    hwpt_id: u32,
    data_uptr: u64,
    data_type: u32,
    entry_len: u32,
    entry_num: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<IommuHwptInvalidate>() == 32);

impl UserCmd for IommuHwptInvalidate {
    const MIN_SIZE: usize = offset_of!(IommuHwptInvalidate, reserved) + size_of::<u32>();
}

/// Checks the command and hands the entries to the driver; returns how many it handled and the
/// result.
fn invalidate(ucmd: &Ucmd<'_, IommuHwptInvalidate>) -> (u32, Result) {
    let cmd = &ucmd.cmd;
    if cmd.reserved != 0 {
        return (0, Err(EOPNOTSUPP));
    }
    // Bounds first, so that neither the driver nor its tail checks run long.
    if cmd.entry_num != 0
        && (cmd.data_uptr == 0
            || cmd.entry_len == 0
            || cmd.entry_len as usize > PAGE_SIZE
            || cmd.entry_num > ENTRY_NUM_MAX)
    {
        return (0, Err(EINVAL));
    }
    let obj = match ucmd.ictx.objects.get_any(cmd.hwpt_id) {
        Ok(obj) => obj,
        Err(e) => return (0, Err(e)),
    };
    let Ok(uptr) = usize::try_from(cmd.data_uptr) else {
        return (0, Err(EFAULT));
    };
    let mut array = UserDataArray::new(
        cmd.data_type,
        UserPtr::from_addr(uptr),
        cmd.entry_len as usize,
        cmd.entry_num,
    );
    let res = if let Some(nested) = obj.data::<HwptNested>() {
        match &nested.hw {
            NestedHw::Native(d) => hw::backend_of(d).cache_invalidate(d, &mut array),
            NestedHw::Shadow(s) => s.invalidate(&mut array),
        }
    } else if let Some(viommu) = obj.data::<Viommu>() {
        viommu.hw.cache_invalidate(&mut array)
    } else {
        return (0, Err(EINVAL));
    };
    (array.entry_num(), res)
}

/// Carries out the entries of `array` one by one with `f`, with upstream's rules for a driver
/// that reads its entries in turn: another data type than `data_type` is `EINVAL` with nothing
/// done; each entry is copied (`entry_len` against `T`'s size, as
/// `iommu_copy_struct_from_user_array`) and handed to `f`; the first failure stops the array,
/// and `entry_num` says how many were done.
pub(crate) fn each_entry<T: FromBytes + AsBytes + Zeroable>(
    array: &mut UserDataArray,
    data_type: u32,
    mut f: impl FnMut(&T) -> Result,
) -> Result {
    if array.data_type() != data_type {
        array.set_done(0);
        return Err(EINVAL);
    }
    let mut done = 0u32;
    let mut res = Ok(());
    for index in 0..array.entry_num() {
        if let Err(e) = array
            .entry::<T>(data_type, index, size_of::<T>())
            .and_then(|e| f(&e))
        {
            res = Err(e);
            break;
        }
        done += 1;
    }
    array.set_done(done);
    res
}

/// `IOMMU_HWPT_INVALIDATE`.
pub(crate) fn invalidate_ioctl(ucmd: &mut Ucmd<'_, IommuHwptInvalidate>) -> Result {
    let (done, res) = invalidate(ucmd);
    ucmd.cmd.entry_num = done;
    // As upstream: the count goes back even when the request failed.
    ucmd.respond().map_err(|_| EFAULT)?;
    res
}
