// SPDX-License-Identifier: GPL-2.0

//! The stage-1 description of a VT-d nested domain (`struct iommu_hwpt_vtd_s1`): what a unit
//! accepts, and the scalable-mode PASID-table entry of a nested attach (VT-d specification,
//! "Scalable-Mode PASID Table Entry", PGTT = nested).
//!
//! Upstream checks the description against the unit at attach, not at allocation (a nested
//! domain can be attached through several units), and so does this backend: [`pasid_entry`]
//! runs at every attach, for the unit of the device.

use kernel::{
    iommu::intel_vtd::{
        NestedCfg,
        S1, //
    },
    prelude::*,
};

/// `IOMMU_VTD_S1_SRE`: supervisor requests.
pub(crate) const S1_SRE: u64 = 1 << 0;
/// `IOMMU_VTD_S1_EAFE`: extended access flag.
pub(crate) const S1_EAFE: u64 = 1 << 1;
/// `IOMMU_VTD_S1_WPE`: write protect (with supervisor requests).
pub(crate) const S1_WPE: u64 = 1 << 2;

/// A 4-level first-stage table (48-bit input addresses).
pub(crate) const ADDR_WIDTH_4LEVEL: u32 = 48;
/// A 5-level first-stage table (57-bit input addresses).
pub(crate) const ADDR_WIDTH_5LEVEL: u32 = 57;

/// `CAP_REG.FL5LP`: 5-level first-stage paging.
pub(crate) const CAP_FL5LP: u64 = 1 << 60;
/// `ECAP_REG.SRS`: supervisor requests.
pub(crate) const ECAP_SRS: u64 = 1 << 31;
/// `ECAP_REG.EAFS`: the extended access flag.
pub(crate) const ECAP_EAFS: u64 = 1 << 34;

/// The page-frame bits of a table pointer.
const PAGE_MASK: u64 = !0xfff;

/// Word 0: present.
pub(crate) const PE0_P: u64 = 1 << 0;
/// Word 0: fault processing disable (left clear: faults are reported).
#[cfg_attr(not(CONFIG_IOMMUFD_TEST), expect(dead_code))]
pub(crate) const PE0_FPD: u64 = 1 << 1;
/// Word 0: the second stage's address width, bits 4:2.
pub(crate) const PE0_AW_SHIFT: u32 = 2;
/// Word 0: the PASID granular translation type, bits 8:6.
pub(crate) const PE0_PGTT_SHIFT: u32 = 6;
/// `PGTT` = nested translation.
pub(crate) const PGTT_NESTED: u64 = 3;
/// Word 0: second-stage accessed/dirty enable.
pub(crate) const PE0_SSADE: u64 = 1 << 9;
/// Word 1: page-walk snoop.
pub(crate) const PE1_PWSNP: u64 = 1 << 23;
/// Word 1: page snoop.
pub(crate) const PE1_PGSNP: u64 = 1 << 24;
/// Word 2: supervisor request enable.
pub(crate) const PE2_SRE: u64 = 1 << 0;
/// Word 2: first-stage paging mode, bits 3:2 (1: 5-level).
pub(crate) const PE2_FLPM_SHIFT: u32 = 2;
/// Word 2: write protect enable.
pub(crate) const PE2_WPE: u64 = 1 << 4;
/// Word 2: extended access flag enable.
pub(crate) const PE2_EAFE: u64 = 1 << 7;

/// Whether a unit with `cap` and `ecap` can walk the first-stage table `s1` describes:
/// `EINVAL` for an address width other than 48 or 57, 57 without 5-level paging, supervisor
/// requests or the extended access flag the unit lacks (upstream's answers), and a table
/// pointer that is not 4 KiB aligned.
///
/// The alignment check is this backend's own: upstream ORs the pointer unmasked into the
/// entry's third word, so its low bits land in `SRE`, `FLPM`, `WPE` and `EAFE` unchecked.
pub(crate) fn check(s1: &S1, cap: u64, ecap: u64) -> Result {
    match s1.addr_width {
        ADDR_WIDTH_4LEVEL => {}
        ADDR_WIDTH_5LEVEL if cap & CAP_FL5LP != 0 => {}
        _ => return Err(EINVAL),
    }
    if s1.flags & S1_SRE != 0 && ecap & ECAP_SRS == 0 {
        return Err(EINVAL);
    }
    if s1.flags & S1_EAFE != 0 && ecap & ECAP_EAFS == 0 {
        return Err(EINVAL);
    }
    if s1.pgtbl_addr & !PAGE_MASK != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// The PASID-table entry (eight words, CPU values) of a nested attach described by `cfg`, or
/// the refusal of [`check`].
///
/// First stage: the user's table pointer and paging mode, `SRE` (and `WPE` only with it),
/// `EAFE`. Second stage: the parent's table pointer and address width, `PGSNP` if the parent
/// enforces snooping, `PWSNP` if its walks are coherent, `SSADE` if it tracks dirty pages.
/// The domain ID, faults reported (`FPD` clear), `PGTT` nested, present. Flag bits of the
/// description other than the three known ones are ignored, as upstream ignores them.
pub(crate) fn pasid_entry(cfg: &NestedCfg) -> Result<[u64; 8]> {
    let s1 = &cfg.s1;
    check(s1, cfg.cap, cfg.ecap)?;
    let mut pe = [0u64; 8];
    pe[0] = (cfg.s2_ptptr & PAGE_MASK)
        | (u64::from(cfg.s2_aw & 0x7) << PE0_AW_SHIFT)
        | (PGTT_NESTED << PE0_PGTT_SHIFT)
        | PE0_P;
    if cfg.s2_ssade {
        pe[0] |= PE0_SSADE;
    }
    pe[1] = u64::from(cfg.did);
    if cfg.s2_pwsnp {
        pe[1] |= PE1_PWSNP;
    }
    if cfg.s2_pgsnp {
        pe[1] |= PE1_PGSNP;
    }
    pe[2] = s1.pgtbl_addr & PAGE_MASK;
    if s1.addr_width == ADDR_WIDTH_5LEVEL {
        pe[2] |= 1 << PE2_FLPM_SHIFT;
    }
    if s1.flags & S1_SRE != 0 {
        pe[2] |= PE2_SRE;
        if s1.flags & S1_WPE != 0 {
            pe[2] |= PE2_WPE;
        }
    }
    if s1.flags & S1_EAFE != 0 {
        pe[2] |= PE2_EAFE;
    }
    Ok(pe)
}
