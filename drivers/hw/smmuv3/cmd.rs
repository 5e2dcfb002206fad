// SPDX-License-Identifier: GPL-2.0

//! Guest invalidation commands (`struct iommu_viommu_arm_smmuv3_invalidate`): which a guest may
//! issue, which of their bits it may set, and how they are rewritten for the vIOMMU before they
//! reach the SMMU's shared command queue.
//!
//! A command with any other bit set (a RES0 or a Secure bit) could make the SMMU stop the queue
//! with `CERROR_ILL` for every device, so it is refused with `EIO` before it gets there. Values
//! that are merely out of range (an address, an ID) need no check: the architecture makes them
//! CONSTRAINED UNPREDICTABLE for the guest alone.

use kernel::prelude::*;

use super::Caps;

/// `CMDQ_0_OP`, bits 7:0.
const OP: u64 = 0xff;
/// `CMDQ_0_SSV`.
const SSV: u64 = 1 << 11;

/// Opcodes.
pub(super) const OP_CFGI_CD: u64 = 0x05;
pub(super) const OP_CFGI_CD_ALL: u64 = 0x06;
pub(super) const OP_TLBI_NH_ALL: u64 = 0x10;
pub(super) const OP_TLBI_NH_ASID: u64 = 0x11;
pub(super) const OP_TLBI_NH_VA: u64 = 0x12;
pub(super) const OP_TLBI_NH_VAA: u64 = 0x13;
pub(super) const OP_TLBI_NSNH_ALL: u64 = 0x30;
pub(super) const OP_ATC_INV: u64 = 0x40;

/// TLBI fields.
const TLBI0_NUM: u64 = 0x1f << 12;
const TLBI0_SCALE_SHIFT: u32 = 20;
const TLBI0_SCALE: u64 = 0x3f << TLBI0_SCALE_SHIFT;
const TLBI0_VMID_SHIFT: u32 = 32;
pub(super) const TLBI0_VMID: u64 = 0xffff << TLBI0_VMID_SHIFT;
const TLBI0_ASID_SHIFT: u32 = 48;
const TLBI1_LEAF: u64 = 1 << 0;
const TLBI1_TTL_SHIFT: u32 = 8;
const TLBI1_TTL: u64 = 0b11 << TLBI1_TTL_SHIFT;
const TLBI1_TG_SHIFT: u32 = 10;
const TLBI1_TG: u64 = 0b11 << TLBI1_TG_SHIFT;
const TLBI1_VA: u64 = !((1 << 12) - 1);

/// CFGI and ATC_INV fields.
const SSID: u64 = 0xf_ffff << 12;
const SID_SHIFT: u32 = 32;
pub(super) const SID: u64 = 0xffff_ffff << SID_SHIFT;
const CFGI1_LEAF: u64 = 1 << 0;
const ATC0_GLOBAL: u64 = 1 << 9;
const ATC1_SIZE: u64 = 0x3f;
const ATC1_ADDR: u64 = !((1 << 12) - 1);
/// `ATC_INV_SIZE_ALL`: a Size above this may raise `CERROR_ILL`.
const ATC_SIZE_ALL: u64 = 52;

/// Checks the range fields of a TLBI_NH_VA/VAA on an SMMU with range invalidation, refusing
/// the combinations the architecture reserves.
fn check_range(caps: &Caps, cmd: &[u64; 2]) -> Result {
    let range = cmd[0] & (TLBI0_NUM | TLBI0_SCALE) != 0;
    let ttl = (cmd[1] & TLBI1_TTL) >> TLBI1_TTL_SHIFT;
    let tg = (cmd[1] & TLBI1_TG) >> TLBI1_TG_SHIFT;
    if tg == 0 {
        // Without a granule, NUM, SCALE and TTL are RES0.
        return if range || ttl != 0 { Err(EIO) } else { Ok(()) };
    }
    // TTL 0b01 with the 16 KiB granule needs 52-bit addressing (DS).
    if tg == 2 && ttl == 1 && !caps.ds {
        return Err(EIO);
    }
    // NUM = SCALE = 0 with TTL = 0 is reserved.
    if !range && ttl == 0 {
        return Err(EIO);
    }
    Ok(())
}

/// Checks one guest command (two CPU-endian words): `EIO` for an opcode a guest may not issue
/// or any bit outside the fields it may set for that opcode on this SMMU.
pub(super) fn check(caps: &Caps, cmd: &[u64; 2]) -> Result {
    let asid_max: u64 = if caps.asid_bits >= 16 {
        0xffff
    } else {
        (1 << caps.asid_bits) - 1
    };
    let asid = asid_max << TLBI0_ASID_SHIFT;
    let mut allowed = [OP, 0u64];
    match cmd[0] & OP {
        OP_TLBI_NSNH_ALL => {}
        op @ (OP_TLBI_NH_VA | OP_TLBI_NH_VAA) => {
            if op == OP_TLBI_NH_VA {
                // An SMMU with 8-bit ASIDs treats the upper ASID bits as RES0.
                allowed[0] |= asid;
            }
            if caps.range_inv {
                check_range(caps, cmd)?;
                allowed[0] |= TLBI0_NUM | TLBI0_SCALE;
                allowed[1] |= TLBI1_TG | TLBI1_TTL;
                // SCALE values above 31 need DS.
                if !caps.ds {
                    allowed[0] &= !(1 << (TLBI0_SCALE_SHIFT + 5));
                }
            }
            allowed[0] |= TLBI0_VMID;
            allowed[1] |= TLBI1_LEAF | TLBI1_VA;
        }
        op @ (OP_TLBI_NH_ASID | OP_TLBI_NH_ALL) => {
            if op == OP_TLBI_NH_ASID {
                allowed[0] |= asid;
            }
            allowed[0] |= TLBI0_VMID;
        }
        OP_ATC_INV => {
            if !caps.ats {
                return Err(EIO);
            }
            if cmd[1] & ATC1_SIZE > ATC_SIZE_ALL {
                return Err(EIO);
            }
            // SSID and Global are ignored without SSV, so only substream support gates them.
            if caps.ssid_bits != 0 {
                allowed[0] |= SSV | SSID | ATC0_GLOBAL;
            }
            allowed[0] |= SID;
            allowed[1] |= ATC1_SIZE | ATC1_ADDR;
        }
        op @ (OP_CFGI_CD | OP_CFGI_CD_ALL) => {
            if op == OP_CFGI_CD {
                if caps.ssid_bits != 0 {
                    allowed[0] |= SSID;
                }
                allowed[1] |= CFGI1_LEAF;
            }
            allowed[0] |= SID;
        }
        _ => return Err(EIO),
    }
    if cmd[0] & !allowed[0] != 0 || cmd[1] & !allowed[1] != 0 {
        return Err(EIO);
    }
    Ok(())
}

/// Checks a guest command and rewrites it for the vIOMMU: the VMID becomes the vIOMMU's, a
/// virtual StreamID becomes the physical one (`sid_of`; `None` for a vSID without a vDEVICE,
/// `EIO`), and TLBI_NSNH_ALL becomes TLBI_NH_ALL of the vIOMMU's VMID.
pub(super) fn convert(
    caps: &Caps,
    vmid: u16,
    cmd: [u64; 2],
    sid_of: impl FnOnce(u32) -> Option<u32>,
) -> Result<[u64; 2]> {
    check(caps, &cmd)?;
    let vmid = u64::from(vmid) << TLBI0_VMID_SHIFT;
    let mut out = cmd;
    match cmd[0] & OP {
        OP_TLBI_NSNH_ALL => out = [OP_TLBI_NH_ALL | vmid, 0],
        OP_TLBI_NH_VA | OP_TLBI_NH_VAA | OP_TLBI_NH_ALL | OP_TLBI_NH_ASID => {
            out[0] = (cmd[0] & !TLBI0_VMID) | vmid;
        }
        OP_ATC_INV | OP_CFGI_CD | OP_CFGI_CD_ALL => {
            // CAST: `SID` is 32 bits wide.
            let vsid = ((cmd[0] & SID) >> SID_SHIFT) as u32;
            let sid = sid_of(vsid).ok_or(EIO)?;
            out[0] = (cmd[0] & !SID) | (u64::from(sid) << SID_SHIFT);
        }
        _ => return Err(EIO),
    }
    Ok(out)
}
