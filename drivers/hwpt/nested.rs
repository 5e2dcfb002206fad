// SPDX-License-Identifier: GPL-2.0

//! HWPT_NESTED objects: a stage-1 translation table that user space (a guest) manages, nested
//! over a HWPT_PAGING allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`, its parent.
//!
//! The nested domain is never added to the IOAS's page table: only the parent mirrors the IOAS,
//! and the hardware walks the user's table first and the parent's second. A device attached to a
//! nested HWPT has its reserved regions reserved in the parent's IOAS and its MSI doorbells
//! mapped in the parent's domain. The object holds a user reference on its parent, which
//! therefore cannot be destroyed before it (`EBUSY`).
//!
//! With `shadow_nesting=1`, a nested HWPT the hardware cannot serve is a shadow instead
//! ([`super::shadow`]): a paging domain the core composes from the user's table and the IOAS,
//! which devices attach to in place of a nested domain.

use kernel::{
    device::Device,
    io::PhysAddr,
    iommu::domain::{
        device_capable,
        device_owns,
        AttachDomain,
        Capability,
        Domain,
        NestedDomain,
        PagingDomain,
        SwMsiOwner,
        UserData, //
    },
    prelude::*,
    sync::Arc, //
};

use super::{
    shadow::{
        ShadowCfg,
        ShadowHwpt, //
    },
    HwptPaging,
    IOMMU_HWPT_ALLOC_PASID,
    IOMMU_HWPT_FAULT_ID_VALID, //
};
use crate::{
    device::sw_msi::SwMsiDomain,
    eventq::fault::FaultRef,
    hw,
    object::{
        ObjectData,
        ObjectRef,
        ObjectType, //
    },
    uapi::IOMMU_HWPT_DATA_VTD_S1,
    viommu::Viommu,
    IommufdCtx, //
};

/// What translates for a nested HWPT.
pub(crate) enum NestedHw {
    /// A nested domain of the hardware; devices attached to it hold references too.
    Native(Arc<NestedDomain>),
    /// A shadow of the user's table over the parent (`shadow_nesting=1`).
    Shadow(ShadowHwpt),
}

/// A nested HWPT.
pub(crate) struct HwptNested {
    /// What translates.
    pub(crate) hw: NestedHw,
    /// The HWPT_PAGING the domain nests over.
    parent: Arc<HwptPaging>,
    /// What the HWPT was allocated on, with a long-term user reference: the parent HWPT_PAGING,
    /// or the vIOMMU (which holds the parent).
    _pt: ObjectRef,
    /// Allocated with `IOMMU_HWPT_ALLOC_PASID`.
    pub(crate) pasid_compat: bool,
    /// Where the faults of the attached devices go (`IOMMU_HWPT_FAULT_ID_VALID`).
    pub(crate) fault: Option<FaultRef>,
}

impl ObjectData for HwptNested {
    const TYPE: ObjectType = ObjectType::HwptNested;
}

impl HwptNested {
    /// The parent HWPT_PAGING.
    pub(crate) fn parent(&self) -> &Arc<HwptPaging> {
        &self.parent
    }

    /// The hardware's nested domain; `EINVAL` for a shadow.
    pub(crate) fn native(&self) -> Result<&Arc<NestedDomain>> {
        match &self.hw {
            NestedHw::Native(d) => Ok(d),
            NestedHw::Shadow(_) => Err(EINVAL),
        }
    }

    /// The domain devices attach to.
    pub(crate) fn attach_domain(&self) -> AttachDomain {
        match &self.hw {
            NestedHw::Native(d) => AttachDomain::Nested(d.clone()),
            NestedHw::Shadow(s) => AttachDomain::Paging(s.domain().clone()),
        }
    }

    /// Makes the HWPT from a new nested `domain` over `parent`, allocated on `pt`: its faults
    /// go to the FAULT object `fault_id` if given, its devices' MSI doorbells into the parent.
    fn new(
        ictx: &IommufdCtx,
        domain: NestedDomain,
        parent: Arc<HwptPaging>,
        pt: ObjectRef,
        flags: u32,
        fault_id: Option<u32>,
    ) -> Result<Arc<HwptNested>> {
        let fault = fault_id.map(|id| FaultRef::get(ictx, id)).transpose()?;
        let domain = if fault.is_some() {
            domain.with_iopf()
        } else {
            domain
        };
        let owner = Arc::new(
            ParentMsi {
                msi: parent.msi.clone(),
                domain: parent.domain.clone(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let domain = Arc::new(domain.with_sw_msi_owner(owner)?, GFP_KERNEL_ACCOUNT)?;
        Ok(Arc::new(
            HwptNested {
                hw: NestedHw::Native(domain),
                parent,
                _pt: pt.into_long_term(),
                pasid_compat: flags & IOMMU_HWPT_ALLOC_PASID != 0,
                fault,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }
}

/// The MSI doorbell owner of a nested domain: doorbells go into the parent's domain, at the
/// IOVA the context gives them (the parent's MSI state decides, as for the parent's own
/// devices).
struct ParentMsi {
    msi: Arc<SwMsiDomain>,
    domain: Arc<PagingDomain>,
}

impl SwMsiOwner for ParentMsi {
    fn map_msi(&self, _nested: &Domain, dev: &Device, msi_addr: PhysAddr) -> Result<Option<u64>> {
        self.msi.map_msi(&self.domain, dev, msi_addr)
    }
}

/// Allocates a nested HWPT for `dev` over `parent` (a HWPT_PAGING object) from the driver's
/// `data`, with upstream's checks in upstream's order: flags other than
/// `IOMMU_HWPT_FAULT_ID_VALID` and `IOMMU_HWPT_ALLOC_PASID`, no data, or a driver that cannot
/// nest are `EOPNOTSUPP`; an automatic parent, one not allocated as a nest parent, or one of
/// another driver is `EINVAL`. The driver's own checks come last.
///
/// Its faults go to the FAULT object `fault_id` if given, looked up after the domain exists.
pub(crate) fn alloc(
    ictx: &IommufdCtx,
    dev: &Device,
    parent: ObjectRef,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptNested>> {
    let p = Arc::from(parent.data::<HwptPaging>().ok_or(EINVAL)?);
    // With the opt-in, a format the shadow engine knows may be served without the hardware.
    let shadow = crate::shadow_nesting() && data.data_type() == IOMMU_HWPT_DATA_VTD_S1;
    let can_nest = hw::backend(dev).can_nest(dev);
    if flags & !(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID) != 0
        || data.is_empty()
        || !(can_nest || shadow)
    {
        return Err(EOPNOTSUPP);
    }
    if p.auto_domain || !p.nest_parent || !device_owns(dev, &p.domain) {
        return Err(EINVAL);
    }
    if !(shadow && (p.shadow_only || !can_nest)) {
        let res =
            hw::backend(dev).alloc_nested(dev, &p.domain, flags & !IOMMU_HWPT_FAULT_ID_VALID, data);
        match res {
            // The hardware does not serve this format: shadow it.
            Err(e) if shadow && e == EOPNOTSUPP => {}
            res => return HwptNested::new(ictx, res?, p, parent, flags, fault_id),
        }
    }
    alloc_shadow(ictx, dev, p, parent, flags, data, fault_id)
}

/// Allocates a shadow nested HWPT for `dev` over `p` (the object `parent`) from `data`.
fn alloc_shadow(
    ictx: &IommufdCtx,
    dev: &Device,
    p: Arc<HwptPaging>,
    parent: ObjectRef,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptNested>> {
    let fault = fault_id.map(|id| FaultRef::get(ictx, id)).transpose()?;
    let cfg = ShadowCfg {
        dev,
        domain_flags: flags & IOMMU_HWPT_ALLOC_PASID,
        iopf: fault.is_some(),
        enforce_cc: device_capable(dev, Capability::EnforceCacheCoherency),
    };
    let shadow = ShadowHwpt::new(&p, &cfg, data)?;
    Ok(Arc::new(
        HwptNested {
            hw: NestedHw::Shadow(shadow),
            parent: p,
            _pt: parent.into_long_term(),
            pasid_compat: flags & IOMMU_HWPT_ALLOC_PASID != 0,
            fault,
        },
        GFP_KERNEL_ACCOUNT,
    )?)
}

/// Allocates a nested HWPT for `dev` on the vIOMMU `pt` from the driver's `data`, with
/// upstream's checks in upstream's order: a device of another IOMMU instance is `EINVAL`;
/// flags other than `IOMMU_HWPT_FAULT_ID_VALID` and `IOMMU_HWPT_ALLOC_PASID`, no data, or a
/// vIOMMU that cannot nest are `EOPNOTSUPP`. The driver's own checks come last.
pub(crate) fn alloc_on_viommu(
    ictx: &IommufdCtx,
    dev: &Device,
    pt: ObjectRef,
    flags: u32,
    data: &UserData,
    fault_id: Option<u32>,
) -> Result<Arc<HwptNested>> {
    let viommu = Arc::from(pt.data::<Viommu>().ok_or(EINVAL)?);
    viommu.check_device(dev)?;
    if flags & !(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID) != 0 || data.is_empty() {
        return Err(EOPNOTSUPP);
    }
    let domain = viommu
        .hw
        .alloc_nested(flags & !IOMMU_HWPT_FAULT_ID_VALID, data)?;
    HwptNested::new(ictx, domain, viommu.hwpt().clone(), pt, flags, fault_id)
}
