// SPDX-License-Identifier: GPL-2.0

//! User cache invalidations of a VT-d nested domain (`IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`) and
//! the invalidation descriptors they become for each cache tag of the domain (VT-d
//! specification, "PASID-based IOTLB Invalidate Descriptor" and "PASID-based Device-TLB
//! Invalidate Descriptor"; a tag without PASID takes the plain "Device-TLB Invalidate
//! Descriptor").

use kernel::{
    iommu::intel_vtd::{
        Desc,
        Invalidation,
        Tag,
        TagKind,
        MAX_DESCS, //
    },
    prelude::*, //
};

/// `IOMMU_VTD_INV_FLAGS_LEAF`: only leaf entries changed (the descriptors' invalidation hint).
pub(crate) const INV_FLAGS_LEAF: u32 = 1 << 0;

pub(crate) use crate::uapi::InvalidateVtdS1;

/// A 4 KiB page.
const PAGE_SHIFT: u32 = 12;
/// The size order that means "everything" (upstream's `MAX_AGAW_PFN_WIDTH`: 64 - 12).
pub(crate) const ORDER_ALL: u32 = 64 - PAGE_SHIFT;

/// One checked user invalidation: the 2^`order` pages at `addr` (aligned to their size), or
/// everything at [`ORDER_ALL`], and the leaf hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) addr: u64,
    pub(crate) order: u32,
    pub(crate) ih: bool,
}

/// Checks a user entry, with upstream's answers: `EOPNOTSUPP` for flags other than the leaf
/// hint or a nonzero reserved word; `EINVAL` for an address that is not 4 KiB aligned, or the
/// all-ones page count (a full flush) with an address. `None` for zero pages (nothing to do).
///
/// The range is rounded up to one naturally aligned power-of-two block, as the descriptors
/// express it; a range that runs past the top of the address space is a full flush.
pub(crate) fn range(e: &InvalidateVtdS1) -> Result<Option<Range>> {
    if e.flags & !INV_FLAGS_LEAF != 0 || e.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    if e.addr & ((1 << PAGE_SHIFT) - 1) != 0 || (e.npages == u64::MAX && e.addr != 0) {
        return Err(EINVAL);
    }
    let ih = e.flags & INV_FLAGS_LEAF != 0;
    if e.npages == 0 {
        return Ok(None);
    }
    // The last byte, or `None` past the top of the address space.
    let last = e
        .npages
        .checked_mul(1 << PAGE_SHIFT)
        .and_then(|size| e.addr.checked_add(size - 1));
    let Some(last) = last else {
        return Ok(Some(Range {
            addr: 0,
            order: ORDER_ALL,
            ih,
        }));
    };
    Ok(Some(aligned(e.addr, last, ih)))
}

/// The smallest naturally aligned block of pages that holds `start..=last`.
pub(crate) fn aligned(start: u64, last: u64, ih: bool) -> Range {
    let start = start & !((1 << PAGE_SHIFT) - 1);
    // The number of low bits in which the two differ.
    let bits = u64::BITS - (start ^ last).leading_zeros();
    if bits <= PAGE_SHIFT {
        return Range {
            addr: start,
            order: 0,
            ih,
        };
    }
    if bits >= u64::BITS {
        return Range {
            addr: 0,
            order: ORDER_ALL,
            ih,
        };
    }
    Range {
        addr: start & !((1u64 << bits) - 1),
        order: bits - PAGE_SHIFT,
        ih,
    }
}

/// Descriptor types and fields.
pub(crate) const TYPE_DIOTLB: u64 = 0x3;
pub(crate) const TYPE_PIOTLB: u64 = 0x6;
pub(crate) const TYPE_PDIOTLB: u64 = 0x8;
/// PASID-based IOTLB granularity: all of a PASID, or pages within it.
pub(crate) const PIOTLB_GRAN_PASID: u64 = 2 << 4;
pub(crate) const PIOTLB_GRAN_PAGES: u64 = 3 << 4;
/// The size bit of device-TLB descriptors (`S`): the address encodes the size.
pub(crate) const DIOTLB_S: u64 = 1;
pub(crate) const PDIOTLB_S: u64 = 1 << 11;
/// Device-TLB invalidations a device may have outstanding, at most (more reads as 0).
const MAX_QDEP: u16 = 32;

/// The PFSID field of both device-TLB descriptors: bits 15:12 and 63:52.
fn pfsid_bits(pfsid: u16) -> u64 {
    (u64::from(pfsid & 0xf) << 12) | (u64::from((pfsid >> 4) & 0xfff) << 52)
}

/// The descriptors of `r` for `tag` of a nested domain into `out`; how many.
///
/// The unit's IOTLB takes a PASID-based IOTLB invalidation of the pages (or of the whole
/// PASID at [`ORDER_ALL`]) with the domain ID and PASID. A device TLB takes a device-TLB
/// invalidation with the address encoding the size (the `S` bit and the lowest clear bit),
/// PASID-based unless the tag is for requests without PASID, twice for devices with that
/// erratum.
pub(crate) fn descs(r: &Range, tag: &Tag, out: &mut [Desc; MAX_DESCS]) -> usize {
    match tag.kind {
        TagKind::Iotlb => {
            let head = (u64::from(tag.pasid) << 32) | (u64::from(tag.did) << 16) | TYPE_PIOTLB;
            out[0] = if r.order >= ORDER_ALL {
                [head | PIOTLB_GRAN_PASID, 0, 0, 0]
            } else {
                let qw1 = (r.addr & !0xfff) | (u64::from(r.ih) << 6) | u64::from(r.order & 0x3f);
                [head | PIOTLB_GRAN_PAGES, qw1, 0, 0]
            };
            1
        }
        TagKind::DevTlb => {
            let qdep = if tag.qdep >= MAX_QDEP { 0 } else { tag.qdep };
            let d = if tag.pasid == 0 {
                let qw0 = (u64::from(tag.sid) << 32)
                    | (u64::from(qdep & 0x1f) << 16)
                    | TYPE_DIOTLB
                    | pfsid_bits(tag.pfsid);
                let qw1 = if r.order == 0 {
                    r.addr & !0xfff
                } else {
                    // The bits below the block's top bit set: the lowest clear one tells the size.
                    let order = r.order.min(ORDER_ALL);
                    ((r.addr | ((1u64 << (PAGE_SHIFT + order - 1)) - 1)) & !0xfff) | DIOTLB_S
                };
                [qw0, qw1, 0, 0]
            } else {
                let qw0 = (u64::from(tag.pasid & 0xf_ffff) << 32)
                    | (u64::from(tag.sid) << 16)
                    | (u64::from(qdep & 0x1f) << 4)
                    | TYPE_PDIOTLB
                    | pfsid_bits(tag.pfsid);
                let order = r.order.min(ORDER_ALL);
                let mut qw1 = r.addr & !0xfff;
                if order != 0 {
                    // Ones from bit 12 up to the block's top bit, which is clear.
                    qw1 |= ((1u64 << (PAGE_SHIFT + order - 1)) - 1) & !0xfff;
                    qw1 &= !(1u64 << (PAGE_SHIFT + order - 1));
                    qw1 |= PDIOTLB_S;
                }
                [qw0, qw1, 0, 0]
            };
            out[0] = d;
            if tag.extra {
                out[1] = d;
                2
            } else {
                1
            }
        }
    }
}

/// A checked user invalidation, for every cache tag of the domain.
pub(crate) struct Request(pub(crate) Range);

impl Invalidation for Request {
    fn build(&self, tag: &Tag, out: &mut [Desc; MAX_DESCS]) -> usize {
        descs(&self.0, tag, out)
    }
}
