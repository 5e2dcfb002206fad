// SPDX-License-Identifier: GPL-2.0

//! Vectors for the pure parts of the SMMUv3 backend: the vSTE rules ([`super::vste`]) and the
//! guest command checks and rewriting ([`super::cmd`]), every refused bit included.
//!
//! Run at module init with `smmuv3_selfcheck=1` (only with `CONFIG_IOMMUFD_TEST`). Each check is
//! logged as `iommufd_rs: smmuv3_selfcheck: ok N - what` (or `not ok`), and a last line says
//! `PASS` or `FAIL`.

use kernel::prelude::*;

use crate::hw::selfcheck::Checker;

use super::{
    cmd::{
        self,
        OP_ATC_INV,
        OP_CFGI_CD,
        OP_CFGI_CD_ALL,
        OP_TLBI_NH_ALL,
        OP_TLBI_NH_ASID,
        OP_TLBI_NH_VA,
        OP_TLBI_NH_VAA,
        OP_TLBI_NSNH_ALL,
        SID,
        TLBI0_VMID, //
    },
    vste::{
        self,
        CFG_ABORT,
        CFG_BYPASS,
        CFG_S1_TRANS,
        STE0_ALLOWED,
        STE0_CFG_SHIFT,
        STE0_V,
        STE1_ALLOWED,
        STE1_EATS, //
    },
    Caps,
};

/// The emulated SMMU's view: 16-bit ASIDs, no substreams, no ATS, no range invalidation.
const QEMU: Caps = Caps {
    asid_bits: 16,
    ssid_bits: 0,
    ats: false,
    range_inv: false,
    ds: false,
};

/// An SMMU with everything the checks depend on.
const FULL: Caps = Caps {
    asid_bits: 16,
    ssid_bits: 20,
    ats: true,
    range_inv: true,
    ds: true,
};

fn ste0(cfg: u64) -> u64 {
    STE0_V | (cfg << STE0_CFG_SHIFT)
}

fn vste_vectors(c: &mut Checker) {
    // Not valid: accepted as all zero, whatever else is set.
    let r = vste::validate([!STE0_V, u64::MAX]);
    c.check(
        r.is_ok_and(|v| v.ste == [0, 0] && !v.enable_ats),
        "a vSTE without V reads as zero",
        0,
    );
    for cfg in [CFG_ABORT, CFG_BYPASS, CFG_S1_TRANS] {
        c.check(
            vste::validate([ste0(cfg), 0]).is_ok(),
            "an allowed Config",
            cfg,
        );
    }
    for cfg in [1, 2, 3, 6, 7] {
        c.errno(vste::validate([ste0(cfg), 0]), EIO, "a refused Config", cfg);
    }
    // Every bit outside the allowed fields, one at a time.
    for bit in 0..64 {
        let b = 1u64 << bit;
        if STE0_ALLOWED & b == 0 {
            c.errno(
                vste::validate([ste0(CFG_S1_TRANS) | b, 0]),
                EIO,
                "a refused bit in word 0",
                b,
            );
        }
        if STE1_ALLOWED & b == 0 {
            c.errno(
                vste::validate([ste0(CFG_S1_TRANS), b]),
                EIO,
                "a refused bit in word 1",
                b,
            );
        }
    }
    // EATS: abort and translate pass (and are cleared); S1CHK and the reserved value do not.
    let r = vste::validate([ste0(CFG_S1_TRANS), 1 << 28]);
    c.check(
        r.is_ok_and(|v| v.enable_ats && v.ste[1] & STE1_EATS == 0),
        "EATS translate asks for ATS and is cleared",
        0,
    );
    let r = vste::validate([ste0(CFG_BYPASS), 1 << 28]);
    c.check(
        r.is_ok_and(|v| !v.enable_ats),
        "EATS on a bypass vSTE asks for nothing",
        0,
    );
    for eats in [2u64, 3] {
        c.errno(
            vste::validate([ste0(CFG_S1_TRANS), eats << 28]),
            EIO,
            "a refused EATS",
            eats,
        );
    }
    // Every allowed field at once passes unchanged (but for EATS).
    let all = [
        STE0_ALLOWED & !(0b010 << STE0_CFG_SHIFT),
        STE1_ALLOWED & !(0b10 << 28),
    ];
    let r = vste::validate(all);
    c.check(
        r.is_ok_and(|v| v.ste == [all[0], all[1] & !STE1_EATS]),
        "every allowed field is kept",
        0,
    );
}

fn cmd_vectors(c: &mut Checker) {
    const VMID: u16 = 0x1234;
    let vmid = u64::from(VMID) << 32;
    let sid_of = |vsid: u32| (vsid == 0x42).then_some(0x8u32);

    // Opcodes a guest may not issue: CMD_SYNC, CFGI_STE, TLBI_S12_VMALL, TLBI_S2_IPA, PREFETCH.
    for op in [0x46u64, 0x03, 0x28, 0x2a, 0x01, 0x00, 0xff] {
        c.errno(cmd::check(&FULL, &[op, 0]), EIO, "a refused opcode", op);
    }
    // Each opcode with each bit outside its fields, on both SMMUs.
    let ops = [
        OP_TLBI_NSNH_ALL,
        OP_TLBI_NH_VA,
        OP_TLBI_NH_VAA,
        OP_TLBI_NH_ASID,
        OP_TLBI_NH_ALL,
        OP_CFGI_CD,
        OP_CFGI_CD_ALL,
    ];
    for caps in [QEMU, FULL] {
        for op in ops {
            let mut refused = 0;
            let mut kept = 0;
            for word in 0..2 {
                for bit in 0..64 {
                    if word == 0 && bit < 8 {
                        continue;
                    }
                    let mut cmd = [op, 0];
                    cmd[word] |= 1 << bit;
                    if op == OP_TLBI_NH_VA || op == OP_TLBI_NH_VAA {
                        // With range invalidation a granule makes the range bits meaningful.
                        if caps.range_inv {
                            cmd[1] |= 1 << 10 | 1 << 8;
                        }
                    }
                    match cmd::check(&caps, &cmd) {
                        Ok(()) => kept += 1,
                        Err(_) => refused += 1,
                    }
                }
            }
            if op == OP_TLBI_NSNH_ALL {
                c.check(kept == 0, "NSNH_ALL: every field bit refused", op);
            } else {
                c.check(
                    refused > 0 && kept > 0,
                    "some field bits refused, some kept",
                    op,
                );
            }
        }
    }
    // Exact allowed sets on the emulated SMMU.
    c.check(
        cmd::check(&QEMU, &[OP_TLBI_NSNH_ALL | 1 << 8, 0]).is_err(),
        "NSNH_ALL takes no field",
        0,
    );
    c.check(
        cmd::check(
            &QEMU,
            &[OP_TLBI_NH_VA | 0xffff << 48 | vmid, 0xdead_b000 | 1],
        )
        .is_ok(),
        "NH_VA: ASID, VMID, VA, LEAF",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_TLBI_NH_VA | 1 << 12, 0]),
        EIO,
        "NH_VA: NUM needs range invalidation",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_TLBI_NH_VA, 1 << 10]),
        EIO,
        "NH_VA: TG needs range invalidation",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_TLBI_NH_VAA | 1 << 48, 0]),
        EIO,
        "NH_VAA has no ASID",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_TLBI_NH_ALL | 1 << 48, 0]),
        EIO,
        "NH_ALL has no ASID",
        0,
    );
    c.check(
        cmd::check(&QEMU, &[OP_TLBI_NH_ASID | 1 << 48, 0]).is_ok(),
        "NH_ASID: ASID",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_CFGI_CD | 1 << 12, 0]),
        EIO,
        "CFGI_CD: SSID needs substreams",
        0,
    );
    c.check(
        cmd::check(&FULL, &[OP_CFGI_CD | 1 << 12, 0]).is_ok(),
        "CFGI_CD: SSID with substreams",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_CFGI_CD_ALL, 1]),
        EIO,
        "CFGI_CD_ALL has no LEAF",
        0,
    );
    c.errno(
        cmd::check(&QEMU, &[OP_ATC_INV, 0]),
        EIO,
        "ATC_INV needs ATS",
        0,
    );
    c.check(
        cmd::check(&FULL, &[OP_ATC_INV | 0x42 << 32, 52]).is_ok(),
        "ATC_INV: the whole ATC",
        0,
    );
    c.errno(
        cmd::check(&FULL, &[OP_ATC_INV, 53]),
        EIO,
        "ATC_INV: Size above 52",
        0,
    );
    // 8-bit ASIDs: the upper ASID bits are RES0.
    let small = Caps {
        asid_bits: 8,
        ..QEMU
    };
    c.errno(
        cmd::check(&small, &[OP_TLBI_NH_ASID | 1 << 56, 0]),
        EIO,
        "an ASID above 8 bits",
        0,
    );
    c.check(
        cmd::check(&small, &[OP_TLBI_NH_ASID | 0xff << 48, 0]).is_ok(),
        "an 8-bit ASID",
        0,
    );
    // Range fields: reserved combinations.
    c.errno(
        cmd::check(&FULL, &[OP_TLBI_NH_VA | 1 << 12, 0]),
        EIO,
        "NUM without a granule",
        0,
    );
    c.errno(
        cmd::check(&FULL, &[OP_TLBI_NH_VA, 1 << 10]),
        EIO,
        "a granule with NUM = SCALE = TTL = 0",
        0,
    );
    c.check(
        cmd::check(&FULL, &[OP_TLBI_NH_VA | 1 << 12, 1 << 10]).is_ok(),
        "a range",
        0,
    );
    let no_ds = Caps { ds: false, ..FULL };
    c.errno(
        cmd::check(&no_ds, &[OP_TLBI_NH_VA, 2 << 10 | 1 << 8]),
        EIO,
        "16K TTL 1 needs DS",
        0,
    );
    c.errno(
        cmd::check(&no_ds, &[OP_TLBI_NH_VA | 1 << 25 | 1 << 12, 1 << 10]),
        EIO,
        "SCALE above 31 needs DS",
        0,
    );

    // Rewriting.
    let r = cmd::convert(&QEMU, VMID, [OP_TLBI_NSNH_ALL, 0], sid_of);
    c.check(
        r.is_ok_and(|o| o == [OP_TLBI_NH_ALL | vmid, 0]),
        "NSNH_ALL becomes NH_ALL of the VMID",
        0,
    );
    let r = cmd::convert(
        &QEMU,
        VMID,
        [OP_TLBI_NH_VA | 0x7 << 48 | 0xffff << 32, 0x1000 | 1],
        sid_of,
    );
    c.check(
        r.is_ok_and(|o| o == [OP_TLBI_NH_VA | 0x7 << 48 | vmid, 0x1000 | 1]),
        "the guest's VMID is replaced",
        0,
    );
    let r = cmd::convert(
        &QEMU,
        VMID,
        [OP_TLBI_NH_ASID | 0x3 << 48 | 0x77 << 32, 0],
        sid_of,
    );
    c.check(
        r.is_ok_and(|o| {
            o[0] & TLBI0_VMID == vmid && o[0] & !TLBI0_VMID == OP_TLBI_NH_ASID | 0x3 << 48
        }),
        "NH_ASID: only the VMID field changes",
        0,
    );
    let r = cmd::convert(&QEMU, VMID, [OP_CFGI_CD | 0x42 << 32, 1], sid_of);
    c.check(
        r.is_ok_and(|o| o == [OP_CFGI_CD | 0x8 << 32, 1]),
        "CFGI_CD: the vSID becomes the SID",
        0,
    );
    let r = cmd::convert(&QEMU, VMID, [OP_CFGI_CD_ALL | 0x43 << 32, 0], sid_of);
    c.errno(r, EIO, "a vSID without a vDEVICE", 0);
    let r = cmd::convert(&QEMU, VMID, [OP_CFGI_CD_ALL | 0x42 << 32, 0], sid_of);
    c.check(
        r.is_ok_and(|o| o == [OP_CFGI_CD_ALL | 0x8 << 32, 0] && o[0] & SID == 0x8 << 32),
        "CFGI_CD_ALL: the vSID becomes the SID, nothing else changes",
        0,
    );
}

/// Runs the vectors and logs the result; returns whether they passed.
pub(crate) fn selfcheck() -> bool {
    let mut c = Checker::new("smmuv3_selfcheck");
    vste_vectors(&mut c);
    cmd_vectors(&mut c);
    c.finish()
}
