// SPDX-License-Identifier: GPL-2.0

//! The vSTE a VMM hands over for a nested domain (`struct iommu_hwpt_arm_smmuv3`): which of its
//! bits user space may set, and what the nested STE takes from it.
//!
//! Pure functions of the two words, so that every refused bit can be tested without hardware
//! ([`super::selfcheck`]).

use kernel::prelude::*;

/// `STRTAB_STE_0_V`.
pub(super) const STE0_V: u64 = 1 << 0;
/// `STRTAB_STE_0_CFG`, bits 3:1.
pub(super) const STE0_CFG_SHIFT: u32 = 1;
pub(super) const STE0_CFG: u64 = 0b111 << STE0_CFG_SHIFT;
/// Config values.
pub(super) const CFG_ABORT: u64 = 0b000;
pub(super) const CFG_BYPASS: u64 = 0b100;
pub(super) const CFG_S1_TRANS: u64 = 0b101;
/// `STRTAB_STE_0_S1FMT`, bits 5:4.
const STE0_S1FMT: u64 = 0b11 << 4;
/// `STRTAB_STE_0_S1CTXPTR_MASK`, bits 51:6.
const STE0_S1CTXPTR: u64 = ((1 << 52) - 1) & !((1 << 6) - 1);
/// `STRTAB_STE_0_S1CDMAX`, bits 63:59.
const STE0_S1CDMAX: u64 = 0b11111 << 59;
/// What user space may set in word 0 (`STRTAB_STE_0_NESTING_ALLOWED`).
pub(super) const STE0_ALLOWED: u64 = STE0_V | STE0_CFG | STE0_S1FMT | STE0_S1CTXPTR | STE0_S1CDMAX;

/// `STRTAB_STE_1_S1DSS`, `S1CIR`, `S1COR`, `S1CSH`: bits 7:0.
const STE1_S1_ATTRS: u64 = 0xff;
/// `STRTAB_STE_1_S1STALLD`.
const STE1_S1STALLD: u64 = 1 << 27;
/// `STRTAB_STE_1_EATS`, bits 29:28.
const STE1_EATS_SHIFT: u32 = 28;
pub(super) const STE1_EATS: u64 = 0b11 << STE1_EATS_SHIFT;
/// EATS values: ATS requests aborted, or translated (full ATS).
const EATS_ABT: u64 = 0;
const EATS_TRANS: u64 = 1;
/// What user space may set in word 1 (`STRTAB_STE_1_NESTING_ALLOWED`).
pub(super) const STE1_ALLOWED: u64 = STE1_S1_ATTRS | STE1_S1STALLD | STE1_EATS;

/// A vSTE that passed [`validate`]: what the nested STE is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Vste {
    /// The two words, CPU values, `EATS` cleared (the driver sets it from the ATS state).
    pub(super) ste: [u64; 2],
    /// A stage-1 vSTE asked for ATS (`EATS` translated).
    pub(super) enable_ats: bool,
}

/// Checks user space's vSTE (two words, CPU values) as upstream's SMMUv3 driver does.
///
/// A vSTE that is not valid (`V` clear) is accepted as all zero: the device then aborts, and
/// the VMM can report `C_BAD_STE` to its guest. Otherwise every bit outside the allowed fields,
/// a Config other than abort, bypass or stage-1 translate, and an `EATS` other than abort or
/// translate are `EIO`, the errno upstream keeps for bad STE data.
pub(super) fn validate(ste: [u64; 2]) -> Result<Vste> {
    if ste[0] & STE0_V == 0 {
        return Ok(Vste {
            ste: [0; 2],
            enable_ats: false,
        });
    }
    if ste[0] & !STE0_ALLOWED != 0 || ste[1] & !STE1_ALLOWED != 0 {
        return Err(EIO);
    }
    let cfg = config(ste[0]);
    if !matches!(cfg, CFG_ABORT | CFG_BYPASS | CFG_S1_TRANS) {
        return Err(EIO);
    }
    let eats = (ste[1] & STE1_EATS) >> STE1_EATS_SHIFT;
    if eats != EATS_ABT && eats != EATS_TRANS {
        return Err(EIO);
    }
    Ok(Vste {
        ste: [ste[0], ste[1] & !STE1_EATS],
        enable_ats: cfg == CFG_S1_TRANS && eats == EATS_TRANS,
    })
}

/// The Config field of word 0.
pub(super) fn config(ste0: u64) -> u64 {
    (ste0 & STE0_CFG) >> STE0_CFG_SHIFT
}
