// SPDX-License-Identifier: GPL-2.0

//! The Intel VT-d nesting backend.
//!
//! On Intel, a VMM nests by allocating a nested HWPT (`IOMMU_HWPT_DATA_VTD_S1`) over a
//! nest-parent second-stage HWPT: the guest owns the first-stage table, names it by its guest
//! physical address, and forwards its first-stage invalidations to the nested HWPT. The C
//! VT-d driver keeps the mechanism ([`kernel::iommu::intel_vtd`]: the nested domain with its
//! domain ID per unit and its cache tags, the PASID-table write and its flushes, the
//! invalidation queue, page requests through iopf). This backend makes the decisions:
//!
//! - which description a unit accepts and the PASID-table entry a nested attach writes
//!   ([`s1`], at every attach, for the device's unit);
//! - the user invalidations accepted and the descriptors they become per cache tag ([`inv`]);
//! - `hw_info` (`IOMMU_HW_INFO_TYPE_INTEL_VTD`), the same bytes as the C driver's.
//!
//! # Domain IDs
//!
//! Every nested domain has a domain ID of its own on each unit it is attached through (the
//! driver's `domain_attach_iommu()`), and its parent carries a nesting tag for each such
//! attach, so that a second-stage change (an IOAS unmap) invalidates every nested user. The
//! nested domains over one parent cannot share a domain ID: the IOTLB tags combined
//! translations by domain ID and PASID, not by requester, so two devices attached without
//! PASID to two nested domains with one domain ID would hit each other's translations.
//!
//! # What runs where
//!
//! QEMU's VT-d has no nesting (no `ECAP.NEST`): there a nest parent is refused (`EOPNOTSUPP`,
//! the driver's answer) and so nothing here runs but `hw_info` and the refusals. The
//! decisions are proven by vectors (`vtd_selfcheck=1`, [`selfcheck`], with
//! `CONFIG_IOMMUFD_TEST`).

pub(crate) mod inv;
pub(crate) mod s1;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selfcheck;

use kernel::{
    device::Device,
    iommu::{
        domain::{
            Domain,
            HwInfoData,
            NestedDomain,
            PagingDomain,
            UserData,
            UserDataArray, //
        },
        intel_vtd::{
            self as hw,
            Info,
            NestedCfg,
            PasidEntryBuilder,
            S1,
            UNIT_NESTED, //
        },
    },
    prelude::*,
    transmute::AsBytes,
};

use crate::{
    hw::Nesting,
    hwpt::invalidate::each_entry,
    uapi::{
        HwptVtdS1,
        IOMMU_HWPT_DATA_VTD_S1,
        IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, //
    },
};

/// `IOMMU_HWPT_ALLOC_PASID`.
const IOMMU_HWPT_ALLOC_PASID: u32 = 1 << 2;
/// `IOMMU_HW_INFO_TYPE_DEFAULT`, `IOMMU_HW_INFO_TYPE_INTEL_VTD`.
const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
const IOMMU_HW_INFO_TYPE_INTEL_VTD: u32 = 1;
/// `IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17`, which the driver reports on every unit.
const HW_INFO_VTD_ERRATA_772415_SPR17: u32 = 1 << 0;

// The uAPI's size.
const _: () = assert!(core::mem::size_of::<HwInfoVtd>() == 24);

/// `struct iommu_hw_info_vtd`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct HwInfoVtd {
    flags: u32,
    reserved: u32,
    cap_reg: u64,
    ecap_reg: u64,
}

// SAFETY: Two `u32`s and two `u64`s, no padding.
unsafe impl AsBytes for HwInfoVtd {}

/// The VT-d backend.
pub(crate) struct Vtd;

static VTD: Vtd = Vtd;

/// The backend of `dev` if the VT-d driver translates it.
pub(crate) fn backend(dev: &Device) -> Option<&'static dyn Nesting> {
    Info::of(dev).ok().map(|_| &VTD as &'static dyn Nesting)
}

/// The backend of `domain` if this backend made it.
pub(crate) fn backend_of(domain: &Domain) -> Option<&'static dyn Nesting> {
    hw::owns(domain).then_some(&VTD as &'static dyn Nesting)
}

impl PasidEntryBuilder for Vtd {
    fn pasid_entry(cfg: &NestedCfg) -> Result<[u64; 8]> {
        s1::pasid_entry(cfg)
    }
}

impl Nesting for Vtd {
    fn can_nest(&self, _dev: &Device) -> bool {
        true
    }

    /// Upstream's order: a unit without nesting or flags other than `IOMMU_HWPT_ALLOC_PASID`,
    /// then data of another type, are `EOPNOTSUPP`; a parent that is not a second-stage nest
    /// parent is `EINVAL`; then the copy of the description. The description is checked
    /// against each unit at attach ([`s1::pasid_entry`]).
    fn alloc_nested(
        &self,
        dev: &Device,
        parent: &PagingDomain,
        flags: u32,
        data: &UserData,
    ) -> Result<NestedDomain> {
        let info = Info::of(dev).map_err(|_| EOPNOTSUPP)?;
        if !info.has(UNIT_NESTED) || flags & !IOMMU_HWPT_ALLOC_PASID != 0 {
            return Err(EOPNOTSUPP);
        }
        if data.data_type() != IOMMU_HWPT_DATA_VTD_S1 {
            return Err(EOPNOTSUPP);
        }
        hw::parent_ok(parent)?;
        let raw: HwptVtdS1 =
            data.copy_struct(IOMMU_HWPT_DATA_VTD_S1, core::mem::size_of::<HwptVtdS1>())?;
        let s1 = S1 {
            flags: raw.flags,
            pgtbl_addr: raw.pgtbl_addr,
            addr_width: raw.addr_width,
        };
        hw::nested_alloc::<Vtd>(parent, &s1)
    }

    /// Upstream's rules: another data type is `EINVAL` with nothing done; each entry is
    /// copied, checked ([`inv::range`]) and carried out in turn, so `entry_num` says how many
    /// were done when one is refused.
    fn cache_invalidate(&self, nested: &NestedDomain, array: &mut UserDataArray) -> Result {
        each_entry(
            array,
            IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
            |e: &inv::InvalidateVtdS1| match inv::range(e)? {
                Some(r) => hw::flush(nested, &inv::Request(r)),
                None => Ok(()),
            },
        )
    }

    fn hw_info(&self, dev: &Device, requested: u32) -> Option<Result<HwInfoData>> {
        let info = Info::of(dev).ok()?;
        if requested != IOMMU_HW_INFO_TYPE_DEFAULT && requested != IOMMU_HW_INFO_TYPE_INTEL_VTD {
            return Some(Err(EOPNOTSUPP));
        }
        let out = HwInfoVtd {
            flags: HW_INFO_VTD_ERRATA_772415_SPR17,
            reserved: 0,
            cap_reg: info.cap,
            ecap_reg: info.ecap,
        };
        Some(crate::hw::hw_info_data(IOMMU_HW_INFO_TYPE_INTEL_VTD, &out))
    }
}

/// Module init: with `vtd_selfcheck=1` (only with `CONFIG_IOMMUFD_TEST`), the vectors of the
/// stage-1 rules, the PASID-table entries and the invalidation descriptors.
pub(crate) fn init() {
    #[cfg(CONFIG_IOMMUFD_TEST)]
    if crate::vtd_selfcheck() {
        selfcheck::selfcheck();
    }
}
