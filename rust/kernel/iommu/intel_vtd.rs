// SPDX-License-Identifier: GPL-2.0

//! The Intel VT-d driver's nesting mechanism, for a nesting backend written in Rust.
//!
//! C header: [`include/linux/intel-iommu-rust.h`](srctree/include/linux/intel-iommu-rust.h)
//! (symbol namespace `INTEL_IOMMU_RUST`).
//!
//! The C driver keeps the mechanism: the second-stage paging domain, domain IDs, cache tags,
//! the PASID table and its flushes, the invalidation queue, page requests. The user of this
//! module makes the decisions: which stage-1 description is accepted on which unit
//! ([`PasidEntryBuilder`]), the PASID-table entry a nested attach writes (the same), and the
//! invalidation descriptors a user's invalidation becomes ([`Invalidation`]).

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_uint,
        c_void, //
    },
    iommu::domain::{
        Domain,
        NestedDomain,
        PagingDomain, //
    },
    prelude::*,
};
use core::ptr::NonNull;

/// Scalable mode is on.
pub const UNIT_SM: u32 = bindings::INTEL_IOMMU_RUST_SM;
/// The unit can nest (scalable mode and `ECAP.NEST`).
pub const UNIT_NESTED: u32 = bindings::INTEL_IOMMU_RUST_NESTED;
/// The device has ATS enabled.
pub const DEV_ATS: u32 = bindings::INTEL_IOMMU_RUST_ATS;

/// Descriptors one cache tag may take at most.
pub const MAX_DESCS: usize = bindings::INTEL_IOMMU_RUST_MAX_DESCS as usize;

/// One invalidation descriptor: four words, CPU values.
pub type Desc = [u64; 4];

/// A device the VT-d driver translates, and its unit (`struct intel_iommu_rust_info`).
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// The capability register.
    pub cap: u64,
    /// The extended capability register.
    pub ecap: u64,
    /// The unit's number (`dmar<seq_id>`).
    pub seq_id: u32,
    /// `UNIT_*` and `DEV_*`.
    pub flags: u32,
}

impl Info {
    /// Describes `dev`: `ENODEV` unless the VT-d driver translates it.
    pub fn of(dev: &Device) -> Result<Self> {
        let mut raw = bindings::intel_iommu_rust_info::default();
        // SAFETY: `dev` is valid; `raw` is a valid output buffer for the call.
        to_result(unsafe { bindings::intel_iommu_rust_info(dev.as_raw(), &mut raw) })?;
        Ok(Self {
            cap: raw.cap,
            ecap: raw.ecap,
            seq_id: raw.seq_id,
            flags: raw.flags,
        })
    }

    /// Whether all of `flags` are set.
    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags == flags
    }
}

/// The user's stage-1 description (`struct iommu_hwpt_vtd_s1`, its reserved word aside).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S1 {
    /// `IOMMU_VTD_S1_*`.
    pub flags: u64,
    /// The guest physical address of the first-stage table.
    pub pgtbl_addr: u64,
    /// The input address width (48 or 57).
    pub addr_width: u32,
}

/// What a nested attach's PASID-table entry is made of (`struct intel_iommu_rust_nested_cfg`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NestedCfg {
    /// The nested domain's stage-1 description.
    pub s1: S1,
    /// The nested domain's domain ID on the unit.
    pub did: u16,
    /// The unit's capability register.
    pub cap: u64,
    /// The unit's extended capability register.
    pub ecap: u64,
    /// The parent's second-stage table pointer.
    pub s2_ptptr: u64,
    /// The parent's address-width field.
    pub s2_aw: u16,
    /// The parent snoops every access (`PGSNP`).
    pub s2_pgsnp: bool,
    /// The parent's page walks snoop (`PWSNP`).
    pub s2_pwsnp: bool,
    /// The parent tracks dirty pages (`SSADE`).
    pub s2_ssade: bool,
}

impl NestedCfg {
    fn from_raw(raw: &bindings::intel_iommu_rust_nested_cfg) -> Self {
        Self {
            s1: S1 {
                flags: raw.flags,
                pgtbl_addr: raw.pgtbl_addr,
                addr_width: raw.addr_width,
            },
            did: raw.did,
            cap: raw.cap,
            ecap: raw.ecap,
            s2_ptptr: raw.s2_ptptr,
            s2_aw: raw.s2_aw,
            s2_pgsnp: raw.s2_flags & bindings::INTEL_IOMMU_RUST_S2_PGSNP != 0,
            s2_pwsnp: raw.s2_flags & bindings::INTEL_IOMMU_RUST_S2_PWSNP != 0,
            s2_ssade: raw.s2_flags & bindings::INTEL_IOMMU_RUST_S2_SSADE != 0,
        }
    }
}

/// Builds the PASID-table entry of a nested attach.
pub trait PasidEntryBuilder {
    /// The eight words (CPU values) of the entry for `cfg`, present bit set, or the refusal of
    /// the attach (`EINVAL` for a description the unit cannot serve).
    ///
    /// Called without locks held, at every attach of a domain of [`nested_alloc`].
    fn pasid_entry(cfg: &NestedCfg) -> Result<[u64; 8]>;
}

/// What a cache tag of a nested domain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    /// The unit's IOTLB (and paging-structure caches) for a domain ID and PASID.
    Iotlb,
    /// A device's TLB (ATS).
    DevTlb,
}

/// One cache tag of a nested domain (`struct intel_iommu_rust_tag`).
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    /// Which cache.
    pub kind: TagKind,
    /// The unit's capability register.
    pub cap: u64,
    /// The unit's extended capability register.
    pub ecap: u64,
    /// The PASID the domain is attached with (`0`: requests without PASID).
    pub pasid: u32,
    /// The domain ID.
    pub did: u16,
    /// Device TLB: the requester ID.
    pub sid: u16,
    /// Device TLB: the physical function's requester ID.
    pub pfsid: u16,
    /// Device TLB: the ATS invalidate queue depth.
    pub qdep: u16,
    /// Device TLB: invalidate twice (an erratum of some devices).
    pub extra: bool,
}

/// A request that becomes invalidation descriptors for each cache tag of a nested domain.
pub trait Invalidation: Sync {
    /// Writes the descriptors for `tag` into `out`, returns how many (at most [`MAX_DESCS`]).
    ///
    /// Called with the domain's cache lock held (a spinlock, interrupts off): no sleeping, no
    /// allocation.
    fn build(&self, tag: &Tag, out: &mut [Desc; MAX_DESCS]) -> usize;
}

/// Whether `parent` can be a nest parent: a second-stage paging domain of the driver made as a
/// nest parent (`EINVAL` otherwise).
///
/// The caller must know that `parent` belongs to the VT-d driver.
pub fn parent_ok(parent: &PagingDomain) -> Result {
    // SAFETY: `parent` is a valid domain of the VT-d driver (the caller's check).
    to_result(unsafe { bindings::intel_iommu_rust_parent_ok(parent.as_raw()) })
}

/// Makes a nested domain over `parent` (see [`parent_ok`]) from `s1`, a description the
/// caller checked; every attach of it asks `B` for its PASID-table entry.
///
/// The caller must keep `parent` alive as long as the nested domain.
pub fn nested_alloc<B: PasidEntryBuilder>(parent: &PagingDomain, s1: &S1) -> Result<NestedDomain> {
    let raw = bindings::iommu_hwpt_vtd_s1 {
        flags: s1.flags,
        pgtbl_addr: s1.pgtbl_addr,
        addr_width: s1.addr_width,
        ..Default::default()
    };
    // SAFETY: `parent` is a valid domain; `raw` lives for the call; the callback is a plain
    // function of this module.
    let dom = from_err_ptr(unsafe {
        bindings::intel_iommu_rust_nested_alloc(
            parent.as_raw(),
            &raw,
            Some(pasid_entry_callback::<B>),
        )
    })?;
    let dom = NonNull::new(dom).ok_or(ENOMEM)?;
    // SAFETY: The driver's nested domains are made with their ops; iommufd records the owner.
    unsafe { (*dom.as_ptr()).owner = (*parent.as_raw()).owner };
    // SAFETY: A new nested domain, ours, with its owner set. The parent outlives it (the
    // caller's promise).
    unsafe { NestedDomain::from_raw(dom) }
}

/// Whether `domain` was made by [`nested_alloc`].
pub fn owns(domain: &Domain) -> bool {
    // SAFETY: `domain` is a valid domain.
    unsafe { bindings::intel_iommu_rust_owns(domain.as_raw()) }
}

/// Invalidates the caches of `domain` (made by [`nested_alloc`], `EINVAL` otherwise) for
/// `req`: the descriptors it builds for each cache tag are submitted and waited for.
pub fn flush<R: Invalidation>(domain: &NestedDomain, req: &R) -> Result {
    if !owns(domain) {
        return Err(EINVAL);
    }
    // SAFETY: `domain` is one of ours; `req` lives for the call and is only read, through
    // `inv_callback::<R>`.
    unsafe {
        bindings::intel_iommu_rust_nested_flush(
            domain.as_raw(),
            Some(inv_callback::<R>),
            core::ptr::from_ref(req).cast::<c_void>(),
        )
    };
    Ok(())
}

/// # Safety
///
/// `cfg` is valid for reads and `pe` for writes of eight `u64`s.
unsafe extern "C" fn pasid_entry_callback<B: PasidEntryBuilder>(
    cfg: *const bindings::intel_iommu_rust_nested_cfg,
    pe: *mut u64,
) -> c_int {
    // SAFETY: `cfg` is valid (the caller's promise).
    let cfg = NestedCfg::from_raw(unsafe { &*cfg });
    match B::pasid_entry(&cfg) {
        Ok(words) => {
            // SAFETY: `pe` has room for eight words (the caller's promise).
            unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), pe, words.len()) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `req` points to a live `R`, `tag` is valid for reads, and `descs` for writes of
/// [`MAX_DESCS`] descriptors.
unsafe extern "C" fn inv_callback<R: Invalidation>(
    req: *const c_void,
    tag: *const bindings::intel_iommu_rust_tag,
    descs: *mut [u64; 4],
) -> c_uint {
    // SAFETY: `req` points to a live `R` (the caller's promise, see `flush`).
    let req = unsafe { &*req.cast::<R>() };
    // SAFETY: `tag` is valid (the caller's promise).
    let raw = unsafe { &*tag };
    let tag = Tag {
        kind: if raw.type_ == bindings::INTEL_IOMMU_RUST_TAG_DEVTLB {
            TagKind::DevTlb
        } else {
            TagKind::Iotlb
        },
        cap: raw.cap,
        ecap: raw.ecap,
        pasid: raw.pasid,
        did: raw.did,
        sid: raw.sid,
        pfsid: raw.pfsid,
        qdep: raw.qdep,
        extra: raw.extra != 0,
    };
    let mut out = [[0u64; 4]; MAX_DESCS];
    let n = req.build(&tag, &mut out).min(MAX_DESCS);
    // SAFETY: `descs` has room for `MAX_DESCS` descriptors (the caller's promise); `n` is at
    // most that.
    unsafe { core::ptr::copy_nonoverlapping(out.as_ptr(), descs, n) };
    // CAST: `n <= MAX_DESCS`, a small number.
    n as c_uint
}
