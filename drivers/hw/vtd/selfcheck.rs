// SPDX-License-Identifier: GPL-2.0

//! Vectors for the pure parts of the VT-d backend, written from the VT-d specification: the
//! stage-1 rules against cap/ecap combinations and the PASID-table entry of a nested attach
//! ([`super::s1`]), the user invalidation rules and the descriptors they become for each kind
//! of cache tag ([`super::inv`]).
//!
//! Run at module init with `vtd_selfcheck=1` (only with `CONFIG_IOMMUFD_TEST`); each check is
//! logged as `iommufd_rs: vtd_selfcheck: ok N - what` (or `not ok`), and a last line says
//! `PASS` or `FAIL`.

use kernel::{
    iommu::intel_vtd::{
        Invalidation,
        NestedCfg,
        Tag,
        TagKind,
        MAX_DESCS,
        S1, //
    },
    prelude::*,
};

use crate::hw::selfcheck::Checker;

use super::{
    inv::{
        self,
        InvalidateVtdS1,
        Range,
        Request,
        INV_FLAGS_LEAF,
        ORDER_ALL, //
    },
    s1::{
        self,
        ADDR_WIDTH_4LEVEL,
        ADDR_WIDTH_5LEVEL,
        CAP_FL5LP,
        ECAP_EAFS,
        ECAP_SRS,
        S1_EAFE,
        S1_SRE,
        S1_WPE, //
    },
};

/// The ECAP of QEMU's first-stage-only unit (`x-flts=on`, measured): no SRS, no EAFS; and a
/// CAP without FL5LP.
const QEMU_ECAP: u64 = 0x0000_8800_00f0_0f4a;
const QEMU_CAP: u64 = 0x00d2_0086_c46f_0462;
/// A unit with everything the rules depend on.
const FULL_CAP: u64 = CAP_FL5LP;
const FULL_ECAP: u64 = ECAP_SRS | ECAP_EAFS;

fn s1(flags: u64, pgtbl_addr: u64, addr_width: u32) -> S1 {
    S1 {
        flags,
        pgtbl_addr,
        addr_width,
    }
}

fn s1_vectors(c: &mut Checker) {
    let ok = |r: Result| r.is_ok();
    c.check(
        ok(s1::check(
            &s1(0, 0x1000, ADDR_WIDTH_4LEVEL),
            QEMU_CAP,
            QEMU_ECAP,
        )),
        "4-level, no flags: every unit",
        0,
    );
    c.check(
        QEMU_CAP & CAP_FL5LP == 0 && QEMU_ECAP & (ECAP_SRS | ECAP_EAFS) == 0,
        "the QEMU unit of these vectors has no FL5LP, SRS or EAFS",
        QEMU_ECAP,
    );
    c.errno(
        s1::check(&s1(0, 0x1000, ADDR_WIDTH_5LEVEL), QEMU_CAP, QEMU_ECAP),
        EINVAL,
        "5-level without CAP.FL5LP",
        0,
    );
    c.check(
        ok(s1::check(&s1(0, 0x1000, ADDR_WIDTH_5LEVEL), FULL_CAP, 0)),
        "5-level with CAP.FL5LP",
        0,
    );
    for aw in [0u32, 39, 47, 49, 56, 58, 64, u32::MAX] {
        c.errno(
            s1::check(&s1(0, 0x1000, aw), FULL_CAP, FULL_ECAP),
            EINVAL,
            "an address width other than 48 or 57",
            u64::from(aw),
        );
    }
    c.errno(
        s1::check(&s1(S1_SRE, 0x1000, ADDR_WIDTH_4LEVEL), FULL_CAP, ECAP_EAFS),
        EINVAL,
        "SRE without ECAP.SRS",
        0,
    );
    c.check(
        ok(s1::check(
            &s1(S1_SRE | S1_WPE, 0x1000, ADDR_WIDTH_4LEVEL),
            0,
            ECAP_SRS,
        )),
        "SRE and WPE with ECAP.SRS",
        0,
    );
    c.errno(
        s1::check(&s1(S1_EAFE, 0x1000, ADDR_WIDTH_4LEVEL), FULL_CAP, ECAP_SRS),
        EINVAL,
        "EAFE without ECAP.EAFS",
        0,
    );
    c.check(
        ok(s1::check(
            &s1(S1_EAFE, 0x1000, ADDR_WIDTH_4LEVEL),
            0,
            ECAP_EAFS,
        )),
        "EAFE with ECAP.EAFS",
        0,
    );
    c.check(
        ok(s1::check(
            &s1(S1_WPE, 0x1000, ADDR_WIDTH_4LEVEL),
            QEMU_CAP,
            QEMU_ECAP,
        )),
        "WPE alone is accepted (upstream ignores it without SRE)",
        0,
    );
    c.check(
        ok(s1::check(
            &s1((1 << 3) | (1 << 63), 0x1000, ADDR_WIDTH_4LEVEL),
            0,
            0,
        )),
        "unknown flag bits are accepted, as upstream accepts them",
        0,
    );
    for addr in [0x1001u64, 0x1004, 0x1080, 0x1fff] {
        c.errno(
            s1::check(&s1(0, addr, ADDR_WIDTH_4LEVEL), FULL_CAP, FULL_ECAP),
            EINVAL,
            "a table pointer that is not 4 KiB aligned",
            addr,
        );
    }
}

fn cfg(s1: S1) -> NestedCfg {
    NestedCfg {
        s1,
        did: 0x2a,
        cap: FULL_CAP,
        ecap: FULL_ECAP,
        s2_ptptr: 0x1_2345_6000,
        s2_aw: 2,
        s2_pgsnp: false,
        s2_pwsnp: true,
        s2_ssade: false,
    }
}

fn pasid_entry_vectors(c: &mut Checker) {
    let pe = s1::pasid_entry(&cfg(s1(0, 0xabc_d000, ADDR_WIDTH_4LEVEL)));
    c.check(
        pe.is_ok_and(|pe| pe == [0x1_2345_60c9, 0x80_002a, 0xabc_d000, 0, 0, 0, 0, 0]),
        "4-level: SLPTPTR, AW 2, PGTT nested, P; DID, PWSNP; FSPTPTR",
        0,
    );
    let pe = s1::pasid_entry(&cfg(s1(0, 0xabc_d000, ADDR_WIDTH_4LEVEL)));
    c.check(
        pe.is_ok_and(|pe| pe[0] & s1::PE0_FPD == 0),
        "FPD is clear: faults are reported",
        0,
    );
    let mut full = cfg(s1(
        S1_SRE | S1_WPE | S1_EAFE,
        0xfff_ffff_f000,
        ADDR_WIDTH_5LEVEL,
    ));
    full.did = 0xffff;
    full.s2_aw = 3;
    full.s2_pgsnp = true;
    full.s2_ssade = true;
    let pe = s1::pasid_entry(&full);
    c.check(
        pe.is_ok_and(|pe| pe == [0x1_2345_62cd, 0x180_ffff, 0xfff_ffff_f095, 0, 0, 0, 0, 0]),
        "5-level, SRE, WPE, EAFE, PGSNP, SSADE, DID 0xffff, AW 3",
        pe.map(|pe| pe[2]).unwrap_or(0),
    );
    let pe = s1::pasid_entry(&cfg(s1(S1_WPE, 0x5000, ADDR_WIDTH_4LEVEL)));
    c.check(
        pe.is_ok_and(|pe| pe[2] == 0x5000),
        "WPE without SRE is not written",
        0,
    );
    let pe = s1::pasid_entry(&cfg(s1((1 << 3) | (1 << 5), 0x5000, ADDR_WIDTH_4LEVEL)));
    c.check(
        pe.is_ok_and(|pe| pe[2] == 0x5000),
        "unknown flag bits are not written",
        0,
    );
    let mut odd = cfg(s1(0, 0x5000, ADDR_WIDTH_4LEVEL));
    odd.s2_ptptr = 0x7000 | 0xfff;
    odd.s2_aw = 0xff;
    let pe = s1::pasid_entry(&odd);
    c.check(
        pe.is_ok_and(|pe| pe[0] == 0x7000 | (0x7 << 2) | 0xc0 | 1),
        "only the parent's page frame and three AW bits reach word 0",
        0,
    );
    let mut qemu = cfg(s1(S1_SRE, 0x5000, ADDR_WIDTH_4LEVEL));
    qemu.cap = QEMU_CAP;
    qemu.ecap = QEMU_ECAP;
    c.errno(
        s1::pasid_entry(&qemu),
        EINVAL,
        "the attach to a unit without SRS is refused",
        0,
    );
    c.errno(
        s1::pasid_entry(&cfg(s1(0, 0x5001, ADDR_WIDTH_4LEVEL))),
        EINVAL,
        "an unaligned table pointer never reaches SRE",
        0,
    );
}

fn entry(addr: u64, npages: u64, flags: u32) -> InvalidateVtdS1 {
    InvalidateVtdS1 {
        addr,
        npages,
        flags,
        reserved: 0,
    }
}

fn range_is(r: Result<Option<Range>>, addr: u64, order: u32, ih: bool) -> bool {
    r.is_ok_and(|r| r == Some(Range { addr, order, ih }))
}

fn range_vectors(c: &mut Checker) {
    c.errno(
        inv::range(&entry(0, 1, 1 << 1)),
        EOPNOTSUPP,
        "an unknown flag",
        0,
    );
    let mut e = entry(0, 1, 0);
    e.reserved = 1;
    c.errno(inv::range(&e), EOPNOTSUPP, "a reserved word", 0);
    c.errno(
        inv::range(&entry(0x1001, 1, 0)),
        EINVAL,
        "an unaligned address",
        0,
    );
    c.errno(
        inv::range(&entry(0x1000, u64::MAX, 0)),
        EINVAL,
        "the full flush with an address",
        0,
    );
    c.check(
        range_is(inv::range(&entry(0, u64::MAX, 0)), 0, ORDER_ALL, false),
        "the full flush",
        0,
    );
    c.check(
        range_is(
            inv::range(&entry(0x1000, 1, INV_FLAGS_LEAF)),
            0x1000,
            0,
            true,
        ),
        "one page, leaf",
        0,
    );
    c.check(
        range_is(inv::range(&entry(0x2000, 2, 0)), 0x2000, 1, false),
        "two aligned pages: order 1",
        0,
    );
    c.check(
        range_is(inv::range(&entry(0x3000, 2, 0)), 0, 3, false),
        "two pages across an 8 KiB boundary: the 32 KiB block around them",
        0,
    );
    c.check(
        range_is(inv::range(&entry(0x20_0000, 512, 0)), 0x20_0000, 9, false),
        "2 MiB: order 9",
        0,
    );
    c.check(
        inv::range(&entry(0x1000, 0, 0)).is_ok_and(|r| r.is_none()),
        "zero pages: nothing to do",
        0,
    );
    c.check(
        range_is(
            inv::range(&entry(0xffff_ffff_ffff_f000, 2, 0)),
            0,
            ORDER_ALL,
            false,
        ),
        "past the top of the address space: a full flush",
        0,
    );
    c.check(
        range_is(inv::range(&entry(0, 1 << 52, 0)), 0, ORDER_ALL, false),
        "2^52 pages: a full flush",
        0,
    );
}

fn tag(kind: TagKind, pasid: u32) -> Tag {
    Tag {
        kind,
        cap: 0,
        ecap: 0,
        pasid,
        did: 5,
        sid: 0x10,
        pfsid: 0x10,
        qdep: 8,
        extra: false,
    }
}

fn descs(r: Range, t: &Tag) -> ([[u64; 4]; MAX_DESCS], usize) {
    let mut out = [[0u64; 4]; MAX_DESCS];
    let n = Request(r).build(t, &mut out);
    (out, n)
}

fn desc_vectors(c: &mut Checker) {
    let r = |addr, order, ih| Range { addr, order, ih };
    let (d, n) = descs(r(0x2000, 1, true), &tag(TagKind::Iotlb, 0));
    c.check(
        n == 1 && d[0] == [0x5_0036, 0x2041, 0, 0],
        "PASID-IOTLB, pages: type 6, granularity 3, DID; address, IH, AM 1",
        d[0][0],
    );
    let (d, n) = descs(r(0, ORDER_ALL, false), &tag(TagKind::Iotlb, 7));
    c.check(
        n == 1 && d[0] == [0x7_0005_0026, 0, 0, 0],
        "PASID-IOTLB, everything: granularity 2 with PASID 7, no address",
        d[0][0],
    );
    let (d, n) = descs(r(0x20_0000, 9, false), &tag(TagKind::Iotlb, 0xf_ffff));
    c.check(
        n == 1 && d[0] == [0xf_ffff_0005_0036, 0x20_0009, 0, 0],
        "PASID-IOTLB, 2 MiB at PASID 0xfffff",
        d[0][1],
    );
    let mut dev = tag(TagKind::DevTlb, 0);
    dev.qdep = 32;
    let (d, n) = descs(r(0x1000, 0, false), &dev);
    c.check(
        n == 1 && d[0] == [0x0010_0010_0000_0003, 0x1000, 0, 0],
        "device TLB without PASID, one page: SID, PFSID split, a queue depth of 32 reads as 0",
        d[0][0],
    );
    let (d, _) = descs(r(0x2000, 1, false), &dev);
    c.check(
        d[0][1] == 0x2001,
        "device TLB, 8 KiB: S, bit 12 clear",
        d[0][1],
    );
    let (d, _) = descs(r(0x4000, 2, false), &dev);
    c.check(
        d[0][1] == 0x5001,
        "device TLB, 16 KiB: S, bit 12 set, bit 13 clear",
        d[0][1],
    );
    let (d, _) = descs(r(0, ORDER_ALL, false), &dev);
    c.check(
        d[0][1] == 0x7fff_ffff_ffff_f001,
        "device TLB, everything: S, only bit 63 clear",
        d[0][1],
    );
    let (d, n) = descs(r(0x4000, 2, true), &tag(TagKind::DevTlb, 3));
    c.check(
        n == 1 && d[0] == [0x0010_0003_0010_0088, 0x5800, 0, 0],
        "PASID device TLB, 16 KiB: PASID, SID, queue depth 8, type 8; S at bit 11",
        d[0][0],
    );
    let (d, _) = descs(r(0x1000, 0, false), &tag(TagKind::DevTlb, 3));
    c.check(
        d[0][1] == 0x1000,
        "PASID device TLB, one page: no S",
        d[0][1],
    );
    let (d, _) = descs(r(0, ORDER_ALL, false), &tag(TagKind::DevTlb, 3));
    c.check(
        d[0][1] == 0x7fff_ffff_ffff_f800,
        "PASID device TLB, everything: S, only bit 63 clear",
        d[0][1],
    );
    let mut extra = tag(TagKind::DevTlb, 3);
    extra.extra = true;
    let (d, n) = descs(r(0x1000, 0, false), &extra);
    c.check(
        n == 2 && d[0] == d[1],
        "a device with the extra-invalidation erratum takes it twice",
        0,
    );
}

/// Runs the vectors and logs the result; returns whether they passed.
pub(crate) fn selfcheck() -> bool {
    let mut c = Checker::new("vtd_selfcheck");
    s1_vectors(&mut c);
    pasid_entry_vectors(&mut c);
    range_vectors(&mut c);
    desc_vectors(&mut c);
    c.finish()
}
