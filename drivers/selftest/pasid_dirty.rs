// SPDX-License-Identifier: GPL-2.0

//! The test operations for dirty tracking (`IOMMU_TEST_OP_DIRTY`) and PASID attachments
//! (`IOMMU_TEST_OP_PASID_ATTACH`, `_REPLACE`, `_DETACH`, `_CHECK_HWPT`).

use kernel::{
    iommu::domain::DomainOwner,
    prelude::*,
    sync::ArcBorrow,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};
use zerocopy_derive::Immutable;

use super::{
    args,
    set_args,
    IommuTestCmd,
    StDev, //
};
use crate::{
    hwpt::{
        Hwpt,
        HwptPaging, //
    },
    object::{
        ObjectRef,
        ObjectType, //
    },
    ucmd::Ucmd, //
};

/// `dirty`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct Dirty {
    flags: u32,
    pad: u32,
    iova: u64,
    length: u64,
    page_size: u64,
    uptr: u64,
    out_nr_dirty: u64,
}

/// `pasid_attach` / `pasid_replace`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct PasidAttachArgs {
    pasid: u32,
    pt_id: u32,
}

/// `pasid_detach`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct PasidDetachArgs {
    pasid: u32,
}

/// `pasid_check`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct PasidCheckArgs {
    pasid: u32,
    hwpt_id: u32,
}

/// Converts a `u64` argument to `usize`.
fn ulong(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| EINVAL)
}

/// `IOMMU_TEST_OP_DIRTY`: marks pages of a mock domain dirty from a user bitmap.
pub(super) fn dirty(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: Dirty = args(&ucmd.cmd)?;
    if a.uptr == 0 {
        return Err(EINVAL);
    }
    let (iova, length, page_size) = (ulong(a.iova)?, ulong(a.length)?, ulong(a.page_size)?);
    crate::hw::mock::MockIommu::check_dirty_args(iova, length, page_size)?;
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::HwptPaging)?;
    let hwpt = obj.data::<HwptPaging>().ok_or(ENOENT)?;
    let mock = crate::mock()?;
    let uptr = UserPtr::from_addr(ulong(a.uptr)?);
    a.out_nr_dirty = mock.set_dirty(&hwpt.domain, iova, length, page_size, |buf| {
        UserSlice::new(uptr, buf.len()).reader().read_slice(buf)
    })?;
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()
}

/// The selftest device `id` (`ENOENT` if there is no selftest object with that id).
fn stdev(ucmd: &Ucmd<'_, IommuTestCmd>) -> Result<ObjectRef> {
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::Selftest)?;
    obj.data::<StDev>().ok_or(ENOENT)?;
    Ok(obj)
}

/// The selftest device behind `obj`.
fn st_of(obj: &ObjectRef) -> Result<ArcBorrow<'_, StDev>> {
    obj.data::<StDev>().ok_or(ENOENT)
}

/// `IOMMU_TEST_OP_PASID_ATTACH`.
pub(super) fn pasid_attach(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: PasidAttachArgs = args(&ucmd.cmd)?;
    let obj = stdev(ucmd)?;
    let st = st_of(&obj)?;
    let idev = st.idev()?;
    a.pt_id = st.with_reports_held(|| idev.pasid_attach(&ucmd.ictx, a.pasid, a.pt_id))?;
    let res = set_args(&mut ucmd.cmd, &a).and_then(|()| ucmd.respond());
    if res.is_err() {
        idev.pasid_detach(&ucmd.ictx, a.pasid);
    }
    res
}

/// `IOMMU_TEST_OP_PASID_REPLACE`.
pub(super) fn pasid_replace(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: PasidAttachArgs = args(&ucmd.cmd)?;
    let obj = stdev(ucmd)?;
    let st = st_of(&obj)?;
    a.pt_id = st.with_reports_held(|| st.idev()?.pasid_replace(&ucmd.ictx, a.pasid, a.pt_id))?;
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()
}

/// `IOMMU_TEST_OP_PASID_DETACH`.
pub(super) fn pasid_detach(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: PasidDetachArgs = args(&ucmd.cmd)?;
    let obj = stdev(ucmd)?;
    let st = st_of(&obj)?;
    let idev = st.idev()?;
    st.with_reports_held(|| idev.pasid_detach(&ucmd.ictx, a.pasid));
    Ok(())
}

/// `IOMMU_TEST_OP_PASID_CHECK_HWPT`: `EINVAL` unless `pasid` is attached to the domain of
/// `hwpt_id` (or, for `hwpt_id` 0, to nothing).
pub(super) fn pasid_check_hwpt(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: PasidCheckArgs = args(&ucmd.cmd)?;
    let obj = stdev(ucmd)?;
    let attached = st_of(&obj)?.idev()?.pasid_domain(a.pasid);
    if a.hwpt_id == 0 {
        return match attached {
            Some(_) => Err(EINVAL),
            None => Ok(()),
        };
    }
    let pt = ucmd.ictx.objects.get_any(a.hwpt_id)?;
    let hwpt = Hwpt::of(&pt).ok_or(EINVAL)?;
    match attached {
        Some(d) if core::ptr::eq(d.domain().as_raw(), hwpt.domain().domain().as_raw()) => Ok(()),
        _ => Err(EINVAL),
    }
}
