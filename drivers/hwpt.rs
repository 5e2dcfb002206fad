// SPDX-License-Identifier: GPL-2.0

//! HWPT objects: HWPT_PAGING, an iommu paging domain that mirrors an IOAS, and HWPT_NESTED
//! ([`nested`]), a user-managed table over a HWPT_PAGING nest parent.
//!
//! A paging domain is added to its IOAS's I/O page table when the object is created (so it
//! holds every area of the IOAS from then on) and removed when the object goes away. The object
//! holds a user reference on the IOAS, which therefore cannot be destroyed before it.
//!
//! [`Hwpt`] is what a device or PASID attaches to: either kind, with the HWPT_PAGING whose IOAS
//! it translates.

pub(crate) mod dirty;
pub(crate) mod invalidate;
pub(crate) mod nested;
pub(crate) mod shadow;

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    iommu::{
        domain::{
            AttachDomain,
            PagingDomain,
            UserData, //
        },
        fault::FaultRoute,
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    uaccess::UserPtr, //
};
use zerocopy_derive::Immutable;

use crate::{
    device::sw_msi::{
        SwMsiCtx,
        SwMsiDomain, //
    },
    device::IDevice,
    eventq::fault::FaultRef,
    hwpt::nested::HwptNested,
    ioas::io_pagetable::IoptDomain,
    ioas::Ioas,
    object::ObjectData,
    object::{
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    viommu::Viommu,
    IommufdCtx, //
};

/// `IOMMU_HWPT_ALLOC_NEST_PARENT`.
pub(crate) const IOMMU_HWPT_ALLOC_NEST_PARENT: u32 = 1 << 0;
/// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
pub(crate) const IOMMU_HWPT_ALLOC_DIRTY_TRACKING: u32 = 1 << 1;
/// `IOMMU_HWPT_FAULT_ID_VALID`.
pub(crate) const IOMMU_HWPT_FAULT_ID_VALID: u32 = 1 << 2;
/// `IOMMU_HWPT_ALLOC_PASID`.
pub(crate) const IOMMU_HWPT_ALLOC_PASID: u32 = 1 << 3;
/// `IOMMU_HWPT_DATA_NONE`.
const IOMMU_HWPT_DATA_NONE: u32 = 0;

impl IoptDomain for PagingDomain {
    fn map(&self, iova: u64, phys: u64, size: u64, prot: u32) -> Result {
        let iova = usize::try_from(iova).map_err(|_| EOVERFLOW)?;
        let size = usize::try_from(size).map_err(|_| EOVERFLOW)?;
        kernel::iommu::domain::Domain::map(self, iova, phys, size, prot, GFP_KERNEL_ACCOUNT)
    }

    fn unmap(&self, iova: u64, size: u64) -> u64 {
        match (usize::try_from(iova), usize::try_from(size)) {
            (Ok(iova), Ok(size)) => kernel::iommu::domain::Domain::unmap(self, iova, size) as u64,
            _ => 0,
        }
    }

    fn pgsize_bitmap(&self) -> u64 {
        kernel::iommu::domain::Domain::pgsize_bitmap(self) as u64
    }

    fn aperture(&self) -> (u64, u64) {
        let g = self.geometry();
        (g.aperture_start, g.aperture_end)
    }
}

/// How a paging HWPT came to be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PagingKind {
    /// `IOMMU_HWPT_ALLOC`.
    Allocated,
    /// Made by attaching a device to an IOAS.
    Auto,
    /// `IOMMU_HWPT_ALLOC_NEST_PARENT` the hardware refused, served as a shadow parent only
    /// (`shadow_nesting=1`).
    ShadowParent,
}

/// A paging HWPT.
pub(crate) struct HwptPaging {
    /// The domain; devices attached to it hold references too.
    pub(crate) domain: Arc<PagingDomain>,
    /// The IOAS the domain mirrors.
    ioas: ObjectRef,
    /// Created by attaching a device to an IOAS; destroyed with its last device.
    pub(crate) auto_domain: bool,
    /// Allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`: nested HWPTs may be allocated on it.
    pub(crate) nest_parent: bool,
    /// A nest parent the hardware refused as such (`shadow_nesting=1`): its domain is a plain
    /// paging domain, and nested HWPTs on it are shadows ([`shadow`]).
    pub(crate) shadow_only: bool,
    /// Allocated with `IOMMU_HWPT_ALLOC_PASID`: PASIDs may attach to it, and a device attached
    /// to it may have PASIDs attached elsewhere.
    pub(crate) pasid_compat: bool,
    /// The domain enforces cache coherency: set when the HWPT is created for a device whose
    /// IOMMU can enforce it, before anything is mapped, or by the first such device that
    /// attaches to a HWPT created without it.
    enforce_cc: Atomic<bool>,
    /// The MSI doorbell pages mapped in the domain (the domain holds it too, as its
    /// `IOMMU_COOKIE_SW_MSI` owner).
    pub(crate) msi: Arc<SwMsiDomain>,
    /// Where the faults of the attached devices go (`IOMMU_HWPT_FAULT_ID_VALID`).
    pub(crate) fault: Option<FaultRef>,
}

impl ObjectData for HwptPaging {
    const TYPE: ObjectType = ObjectType::HwptPaging;
}

impl HwptPaging {
    /// Makes the domain enforce cache coherency, for a device whose IOMMU can
    /// (`IOMMU_CAP_ENFORCE_CACHE_COHERENCY`); `EINVAL` if the domain cannot.
    pub(crate) fn enforce_cache_coherency(&self) -> Result {
        if self.enforce_cc.load(Relaxed) {
            return Ok(());
        }
        if !self.domain.enforce_cache_coherency() {
            return Err(EINVAL);
        }
        self.enforce_cc.store(true, Relaxed);
        Ok(())
    }

    /// Whether the domain enforces cache coherency.
    pub(crate) fn enforces_cache_coherency(&self) -> bool {
        self.enforce_cc.load(Relaxed)
    }

    /// Makes `domain` mirror the IOAS `ioas`: adds it to the IOAS's page table (aperture,
    /// alignment, every area). On error the domain is freed.
    ///
    /// With `enforce_cc` (a device whose IOMMU can enforce cache coherency), coherency is
    /// enforced first: some IOMMUs (VT-d second stage) set it per PTE, so it must be decided
    /// before the first mapping. A driver that reports the capability but refuses a new
    /// domain has a bug (a warning, as upstream); the HWPT is not made then (`EINVAL`).
    pub(crate) fn new(
        ioas: ObjectRef,
        domain: PagingDomain,
        kind: PagingKind,
        flags: u32,
        enforce_cc: bool,
        msi_maps: &SwMsiCtx,
        fault: Option<FaultRef>,
    ) -> Result<Arc<HwptPaging>> {
        let domain = if fault.is_some() {
            domain.with_iopf()
        } else {
            domain
        };
        let msi = SwMsiDomain::new(msi_maps)?;
        let domain = Arc::new(domain.with_sw_msi_owner(msi.clone())?, GFP_KERNEL_ACCOUNT)?;
        let hwpt = Arc::new(
            HwptPaging {
                domain,
                ioas: ioas.into_long_term(),
                auto_domain: kind == PagingKind::Auto,
                nest_parent: flags & IOMMU_HWPT_ALLOC_NEST_PARENT != 0,
                shadow_only: kind == PagingKind::ShadowParent,
                pasid_compat: flags & IOMMU_HWPT_ALLOC_PASID != 0,
                enforce_cc: Atomic::new(false),
                msi,
                fault,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        if enforce_cc && kernel::warn_on!(hwpt.enforce_cache_coherency().is_err()) {
            return Err(EINVAL);
        }
        let dom: Arc<dyn IoptDomain> = hwpt.domain.clone();
        // Until this succeeds, dropping `hwpt` must not remove anything: removal of an unknown
        // key is a no-op.
        hwpt.ioas()?.iopt.add_domain(hwpt.key(), dom)?;
        Ok(hwpt)
    }

    /// The key of the domain in the IOAS's page table.
    pub(crate) fn key(&self) -> usize {
        core::ptr::from_ref::<PagingDomain>(&self.domain) as usize
    }

    /// The IOAS.
    pub(crate) fn ioas(&self) -> Result<ArcBorrow<'_, Ioas>> {
        self.ioas.data::<Ioas>().ok_or(EINVAL)
    }

    /// Whether the HWPT translates `ioas`.
    pub(crate) fn translates(&self, ioas: &Ioas) -> bool {
        self.ioas().is_ok_and(|i| core::ptr::eq(&*i, ioas))
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        let key = self.key();
        if let Ok(ioas) = self.ioas() {
            ioas.iopt.remove_domain(key);
        }
    }
}

/// A HWPT a device or PASID attaches to.
#[derive(Clone)]
pub(crate) enum Hwpt {
    /// A HWPT_PAGING.
    Paging(Arc<HwptPaging>),
    /// A HWPT_NESTED.
    Nested(Arc<HwptNested>),
}

impl Hwpt {
    /// The HWPT behind `obj`, if it is one.
    pub(crate) fn of(obj: &ObjectRef) -> Option<Hwpt> {
        if let Some(h) = obj.data::<HwptPaging>() {
            return Some(Hwpt::Paging(h.into()));
        }
        obj.data::<HwptNested>().map(|h| Hwpt::Nested(h.into()))
    }

    /// The HWPT_PAGING whose IOAS the HWPT translates: itself, or a nested HWPT's parent. Its
    /// IOAS holds the reserved regions of the attached devices, and its domain their MSI
    /// doorbells.
    pub(crate) fn paging(&self) -> Result<&Arc<HwptPaging>> {
        match self {
            Hwpt::Paging(h) => Ok(h),
            Hwpt::Nested(h) => Ok(h.parent()),
        }
    }

    /// The domain devices attach to.
    pub(crate) fn domain(&self) -> AttachDomain {
        match self {
            Hwpt::Paging(h) => AttachDomain::Paging(h.domain.clone()),
            Hwpt::Nested(h) => h.attach_domain(),
        }
    }

    /// Allocated with `IOMMU_HWPT_ALLOC_PASID`.
    pub(crate) fn pasid_compat(&self) -> bool {
        match self {
            Hwpt::Paging(h) => h.pasid_compat,
            Hwpt::Nested(h) => h.pasid_compat,
        }
    }

    /// Where the faults of an attachment the device with object id `dev_id` makes go, if the
    /// HWPT takes faults.
    pub(crate) fn fault_route(&self, dev_id: u32) -> Option<FaultRoute> {
        let fault = match self {
            Hwpt::Paging(h) => h.fault.as_ref(),
            Hwpt::Nested(h) => h.fault.as_ref(),
        };
        fault.map(|f| f.route(dev_id))
    }

    /// An automatic HWPT (only paging ones are).
    pub(crate) fn auto_domain(&self) -> bool {
        matches!(self, Hwpt::Paging(h) if h.auto_domain)
    }

    /// Whether both are the same HWPT.
    pub(crate) fn same(&self, other: &Hwpt) -> bool {
        match (self, other) {
            (Hwpt::Paging(a), Hwpt::Paging(b)) => Arc::ptr_eq(a, b),
            (Hwpt::Nested(a), Hwpt::Nested(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// `struct iommu_hwpt_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuHwptAlloc {
    size: u32,
    flags: u32,
    dev_id: u32,
    pt_id: u32,
    out_hwpt_id: u32,
    reserved: u32,
    data_type: u32,
    data_len: u32,
    data_uptr: u64,
    fault_id: u32,
    reserved2: u32,
}

const _: () = assert!(size_of::<IommuHwptAlloc>() == 48);

impl UserCmd for IommuHwptAlloc {
    const MIN_SIZE: usize = offset_of!(IommuHwptAlloc, reserved) + size_of::<u32>();
}

/// Allocates a paging domain for the device `idev` with `flags` and makes it mirror `ioas`; its
/// faults go to the FAULT object `fault_id` if given.
///
/// As upstream, a bad `fault_id` only counts once the domain mirrors the IOAS: a failure to
/// mirror it (say `EADDRINUSE`) is what the caller sees first.
pub(crate) fn alloc_paging(
    ictx: &IommufdCtx,
    idev: &crate::device::IDevice,
    ioas: ObjectRef,
    flags: u32,
    data: Option<&UserData>,
    fault_id: Option<u32>,
) -> Result<Arc<HwptPaging>> {
    let valid = IOMMU_HWPT_ALLOC_NEST_PARENT
        | IOMMU_HWPT_ALLOC_DIRTY_TRACKING
        | IOMMU_HWPT_FAULT_ID_VALID
        | IOMMU_HWPT_ALLOC_PASID;
    if flags & !valid != 0 {
        return Err(EOPNOTSUPP);
    }
    if flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0 && !idev.dirty_tracking_capable() {
        return Err(EOPNOTSUPP);
    }
    if flags & IOMMU_HWPT_FAULT_ID_VALID != 0 && flags & IOMMU_HWPT_ALLOC_NEST_PARENT != 0 {
        return Err(EOPNOTSUPP);
    }
    let mut kind = PagingKind::Allocated;
    let domain =
        match PagingDomain::alloc_user(idev.device(), flags & !IOMMU_HWPT_FAULT_ID_VALID, data) {
            // Hardware that cannot nest: with the opt-in, a paging domain that is a shadow parent.
            Err(e)
                if e == EOPNOTSUPP
                    && flags & IOMMU_HWPT_ALLOC_NEST_PARENT != 0
                    && data.is_none()
                    && crate::shadow_nesting() =>
            {
                kind = PagingKind::ShadowParent;
                let flags = flags & !(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_NEST_PARENT);
                PagingDomain::alloc_user(idev.device(), flags, None)?
            }
            r => r?,
        };
    let (fault, bad_fault) = match fault_id.map(|id| FaultRef::get(ictx, id)).transpose() {
        Ok(fault) => (fault, None),
        Err(e) => (None, Some(e)),
    };
    let hwpt = HwptPaging::new(
        ioas,
        domain,
        kind,
        flags,
        idev.enforces_cache_coherency(),
        &ictx.sw_msi,
        fault,
    )?;
    match bad_fault {
        // Never published: dropping it undoes it.
        Some(e) => Err(e),
        None => Ok(hwpt),
    }
}

/// Allocates the paging domain of a new automatic HWPT of `ioas` for the device `idev` and makes
/// it mirror the IOAS.
///
/// `before_fill` runs between the two, where upstream's `iommufd_hwpt_paging_alloc()` attaches
/// the device in immediate-attach mode: an attach refused there is refused before the IOAS's
/// mappings are checked against the domain, so its errno wins over theirs. A replace passes
/// `None`: upstream fills the domain first.
pub(crate) fn alloc_auto(
    ictx: &IommufdCtx,
    idev: &crate::device::IDevice,
    ioas: ObjectRef,
    before_fill: Option<&dyn Fn() -> Result>,
) -> Result<Arc<HwptPaging>> {
    let domain = PagingDomain::alloc_user(idev.device(), 0, None)?;
    if let Some(check) = before_fill {
        check()?;
    }
    HwptPaging::new(
        ioas,
        domain,
        PagingKind::Auto,
        0,
        idev.enforces_cache_coherency(),
        &ictx.sw_msi,
        None,
    )
}

/// `IOMMU_HWPT_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuHwptAlloc>) -> Result {
    let ictx: &IommufdCtx = &ucmd.ictx;
    let cmd = &ucmd.cmd;
    if cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    if (cmd.data_type == IOMMU_HWPT_DATA_NONE && cmd.data_len != 0)
        || (cmd.data_type != IOMMU_HWPT_DATA_NONE && cmd.data_len == 0)
    {
        return Err(EINVAL);
    }
    let idev_obj = ictx.objects.get(cmd.dev_id, ObjectType::Device)?;
    let idev = idev_obj.data::<IDevice>().ok_or(ENOENT)?;
    let pt = ictx.objects.get_any(cmd.pt_id).map_err(|_| EINVAL)?;
    let user_data = UserData::new(
        cmd.data_type,
        UserPtr::from_addr(usize::try_from(cmd.data_uptr).map_err(|_| EFAULT)?),
        cmd.data_len as usize,
    );
    let fault_id = (cmd.flags & IOMMU_HWPT_FAULT_ID_VALID != 0).then_some(cmd.fault_id);
    let kind = if pt.data::<Ioas>().is_some() {
        let data = (cmd.data_len != 0).then_some(&user_data);
        ObjectKind::new(alloc_paging(ictx, &idev, pt, cmd.flags, data, fault_id)?)
    } else if pt.data::<HwptPaging>().is_some() {
        ObjectKind::new(nested::alloc(
            ictx,
            idev.device(),
            pt,
            cmd.flags,
            &user_data,
            fault_id,
        )?)
    } else if pt.data::<Viommu>().is_some() {
        ObjectKind::new(nested::alloc_on_viommu(
            ictx,
            idev.device(),
            pt,
            cmd.flags,
            &user_data,
            fault_id,
        )?)
    } else {
        return Err(EINVAL);
    };
    let new = ictx.objects.alloc(kind)?;
    ucmd.cmd.out_hwpt_id = new.id();
    ucmd.respond()?;
    new.finalize()
}
