// SPDX-License-Identifier: GPL-2.0

//! The ARM SMMUv3 nesting backend.
//!
//! On Arm, a VMM nests through a vIOMMU (`IOMMU_VIOMMU_TYPE_ARM_SMMUV3`) over a nest-parent
//! stage-2 HWPT: the guest owns the stage-1 tables and context descriptors, names them in a
//! vSTE per device (a nested HWPT of the vIOMMU), and forwards its invalidation commands to the
//! vIOMMU. The C SMMUv3 driver keeps the mechanism ([`kernel::iommu::arm_smmu_v3`]: the nested
//! STE, the command queue, the event queue). This backend makes the decisions:
//!
//! - whether a vIOMMU may be made ([`Smmuv3::viommu_supported`]): the SMMU nests, and DMA stays
//!   coherent whatever memory attributes the guest's stage 1 asks for, which takes a CANWBS
//!   master or stage-2 forced write-back (S2FWB), because VFIO does no cache maintenance. The
//!   module parameter `allow_noncoherent_nesting` lifts the coherency rule (below);
//! - every vIOMMU has a VMID of its own, which its nested STEs carry and which goes back (after
//!   a `TLBI_S12_VMALL`) when the vIOMMU goes;
//! - the vSTE rules ([`vste`]) and the guest commands a vIOMMU forwards ([`cmd`]);
//! - a nested master's stage-1 events reach the vIOMMU's vEVENTQ with the vSID in place of the
//!   StreamID (the driver's vmaster asks [`ViommuCore`] for the vSID when the nested domain is
//!   attached, and hands the events to [`ViommuCore::report_event`]);
//! - `hw_info` (`IOMMU_HW_INFO_TYPE_ARM_SMMUV3`), the same bytes as the C driver's.
//!
//! # `allow_noncoherent_nesting`
//!
//! Without S2FWB the guest's stage-1 memory attributes decide the cacheability of its DMA; a
//! guest that maps its DMA buffers non-cacheable sees stale data unless someone maintains the
//! caches, and neither VFIO nor iommufd does. An emulated SMMU (QEMU's) models no caches, so
//! nesting is coherent there although the SMMU reports neither S2FWB nor CANWBS. The parameter
//! says the platform is known to be coherent; it is off by default, and the kernel log says so
//! when it lets a vIOMMU be made.
//!
//! Not done: ATS (`ATC_INV` is refused without ATS in the SMMU; with it, the commands pass as
//! upstream's), substreams (the emulated SMMU has none: no PASID nesting), hardware queues
//! (CMDQV-style vCMDQs).

mod cmd;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selfcheck;
mod viommu;
mod vste;

use core::fmt;
use kernel::{
    device::Device,
    iommu::{
        arm_smmu_v3::{
            self as hw,
            Info,
            FEAT_ATS,
            FEAT_CANWBS,
            FEAT_DS,
            FEAT_FORCE_SYNC,
            FEAT_NESTING,
            FEAT_RANGE_INV,
            FEAT_REPEAT_TLBI_CFGI,
            FEAT_S2FWB, //
        },
        domain::{
            HwInfoData,
            PagingDomain,
            UserData, //
        },
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, //
    },
    transmute::AsBytes,
};

use crate::{
    hw::{
        Nesting,
        ViommuHw, //
    },
    viommu::{
        ViommuCore,
        ViommuServices, //
    },
};

/// `IOMMU_VIOMMU_TYPE_ARM_SMMUV3`.
const IOMMU_VIOMMU_TYPE_ARM_SMMUV3: u32 = 1;
/// `IOMMU_HW_INFO_TYPE_DEFAULT`, `IOMMU_HW_INFO_TYPE_ARM_SMMUV3`.
const IOMMU_HW_INFO_TYPE_DEFAULT: u32 = 0;
const IOMMU_HW_INFO_TYPE_ARM_SMMUV3: u32 = 2;
/// `IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI`.
const HW_INFO_ERRATA_REPEAT_TLBI_CFGI: u32 = 1 << 0;

/// What the checks of guest input depend on, from the SMMU of a vIOMMU.
#[derive(Clone, Copy, Debug)]
pub(super) struct Caps {
    asid_bits: u32,
    ssid_bits: u32,
    ats: bool,
    range_inv: bool,
    ds: bool,
}

impl Caps {
    fn of(info: &Info) -> Self {
        Self {
            asid_bits: info.asid_bits,
            ssid_bits: info.ssid_bits,
            ats: info.has(FEAT_ATS),
            range_inv: info.has(FEAT_RANGE_INV),
            ds: info.has(FEAT_DS),
        }
    }
}

/// `struct iommu_hw_info_arm_smmuv3`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct HwInfoArmSmmuv3 {
    flags: u32,
    reserved: u32,
    idr: [u32; 6],
    iidr: u32,
    aidr: u32,
}

// SAFETY: Ten `u32`s, no padding.
unsafe impl AsBytes for HwInfoArmSmmuv3 {}

/// The SMMUv3 backend.
pub(crate) struct Smmuv3;

static SMMUV3: Smmuv3 = Smmuv3;

/// Whether the opt-in already said so in the kernel log (once per load).
static WARNED: Atomic<u32> = Atomic::new(0);

/// The backend of `dev` if the SMMUv3 driver translates it.
pub(crate) fn backend(dev: &Device) -> Option<&'static dyn Nesting> {
    Info::of(dev).ok().map(|_| &SMMUV3 as &'static dyn Nesting)
}

impl Smmuv3 {
    /// Whether a vIOMMU may be made for `info`'s master: upstream's rule, with the opt-in.
    fn viommu_allowed(info: &Info) -> bool {
        if !info.has(FEAT_NESTING) || info.has(FEAT_FORCE_SYNC) {
            return false;
        }
        if info.has(FEAT_CANWBS) || info.has(FEAT_S2FWB) {
            return true;
        }
        if !crate::allow_noncoherent_nesting() {
            return false;
        }
        if WARNED.xchg(1, Relaxed) == 0 {
            pr_warn!(
                "allow_noncoherent_nesting: making SMMUv3 vIOMMUs without S2FWB or CANWBS; \
                 a guest's non-cacheable stage-1 mappings can make its DMA incoherent\n"
            );
        }
        true
    }
}

impl Nesting for Smmuv3 {
    fn viommu_supported(&self, dev: &Device, viommu_type: u32) -> bool {
        viommu_type == IOMMU_VIOMMU_TYPE_ARM_SMMUV3
            && Info::of(dev).is_ok_and(|info| Self::viommu_allowed(&info))
    }

    fn viommu_alloc(
        &self,
        dev: &Device,
        parent: &Arc<PagingDomain>,
        viommu_type: u32,
        _data: Option<&UserData>,
        svc: &ViommuServices<'_>,
    ) -> Result<KBox<dyn ViommuHw>> {
        if viommu_type != IOMMU_VIOMMU_TYPE_ARM_SMMUV3 {
            return Err(EOPNOTSUPP);
        }
        let info = Info::of(dev).map_err(|_| EOPNOTSUPP)?;
        // Upstream's SMMUv3 vIOMMU takes no allocation data.
        let v = viommu::SmmuViommu::new(dev, parent, &info, svc)?;
        Ok(KBox::new(v, GFP_KERNEL_ACCOUNT)?)
    }

    fn hw_info(&self, dev: &Device, requested: u32) -> Option<Result<HwInfoData>> {
        let info = Info::of(dev).ok()?;
        if requested != IOMMU_HW_INFO_TYPE_DEFAULT && requested != IOMMU_HW_INFO_TYPE_ARM_SMMUV3 {
            // No implementation-specific types (CMDQV) here.
            return Some(Err(EOPNOTSUPP));
        }
        let mut out = HwInfoArmSmmuv3 {
            idr: info.idr,
            iidr: info.iidr,
            aidr: info.aidr,
            ..Default::default()
        };
        if info.has(FEAT_REPEAT_TLBI_CFGI) {
            out.flags |= HW_INFO_ERRATA_REPEAT_TLBI_CFGI;
        }
        Some(crate::hw::hw_info_data(IOMMU_HW_INFO_TYPE_ARM_SMMUV3, &out))
    }
}

/// The debugfs view `iommufd_rs/smmuv3`: the opt-in, each SMMUv3 vIOMMU with its VMID, and
/// each of its vDEVICEs with the STE its device uses now.
pub(crate) struct View;

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "allow_noncoherent_nesting {}",
            u8::from(crate::allow_noncoherent_nesting())
        )?;
        viommu::show(f)
    }
}

/// Module init: the list of vIOMMUs the view shows; with `smmuv3_selfcheck=1` (only with
/// `CONFIG_IOMMUFD_TEST`), the vectors of the vSTE and command rules.
pub(crate) fn init() {
    viommu::init();
    #[cfg(CONFIG_IOMMUFD_TEST)]
    if crate::smmuv3_selfcheck() {
        selfcheck::selfcheck();
    }
}

/// The pieces of `ViommuCore` a vIOMMU's nesting mechanism uses.
impl hw::VsmmuServices for ViommuCore {
    fn vdev_id(&self, dev: &Device) -> Result<u64> {
        self.vdev_id_of(dev)
    }

    fn report_event(&self, veventq_type: u32, data: &[u8]) -> Result {
        ViommuCore::report_event(self, veventq_type, data)
    }
}
