// SPDX-License-Identifier: GPL-2.0

//! The ARM SMMUv3 driver's nesting mechanism, for a nesting backend written in Rust.
//!
//! C header: [`include/linux/arm-smmu-v3-rust.h`](srctree/include/linux/arm-smmu-v3-rust.h)
//! (symbol namespace `ARM_SMMU_V3_RUST`).
//!
//! The C driver keeps the mechanism: the stage-2 paging domain, nested STEs and their
//! installation, the command queue, the event queue. The user of this module makes the
//! decisions: which vIOMMU may exist, which vSTE and which guest commands are accepted and how
//! they are rewritten, and where a nested master's events go ([`VsmmuServices`]).

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_ulong,
        c_void, //
    },
    iommu::domain::{
        NestedDomain,
        PagingDomain, //
    },
    prelude::*,
    sync::Arc,
};
use core::ptr::NonNull;

/// The SMMU has stage 1 and stage 2 (`ARM_SMMU_FEAT_NESTING`).
pub const FEAT_NESTING: u32 = bindings::ARM_SMMU_RUST_NESTING;
/// The SMMU implements ATS.
pub const FEAT_ATS: u32 = bindings::ARM_SMMU_RUST_ATS;
/// The SMMU has range invalidation.
pub const FEAT_RANGE_INV: u32 = bindings::ARM_SMMU_RUST_RANGE_INV;
/// The SMMU has `SMMU_IDR5.DS` (52-bit addresses with 4K and 16K granules).
pub const FEAT_DS: u32 = bindings::ARM_SMMU_RUST_DS;
/// The SMMU has stage-2 forced write-back (`SMMU_IDR3.FWB`).
pub const FEAT_S2FWB: u32 = bindings::ARM_SMMU_RUST_S2FWB;
/// The master is fully coherent (IORT `CANWBS`).
pub const FEAT_CANWBS: u32 = bindings::ARM_SMMU_RUST_CANWBS;
/// The command queue must sync after every command (an erratum workaround).
pub const FEAT_FORCE_SYNC: u32 = bindings::ARM_SMMU_RUST_FORCE_SYNC;
/// TLBI and CFGI commands must be repeated (an erratum; `hw_info` reports it).
pub const FEAT_REPEAT_TLBI_CFGI: u32 = bindings::ARM_SMMU_RUST_REPEAT_TLBI_CFGI;

/// An SMMUv3 master and what its SMMU offers (`struct arm_smmu_rust_info`).
#[derive(Clone, Copy)]
pub struct Info {
    /// `FEAT_*`.
    pub features: u32,
    /// ASID width.
    pub asid_bits: u32,
    /// SubstreamID width; `0` without substreams.
    pub ssid_bits: u32,
    /// The master's StreamIDs.
    pub num_streams: u32,
    /// The master's first StreamID.
    pub sid: u32,
    /// Commands per [`Vsmmu::issue`] at most.
    pub max_cmds: u32,
    /// `SMMU_IDR0` to `SMMU_IDR5`.
    pub idr: [u32; 6],
    /// `SMMU_IIDR`.
    pub iidr: u32,
    /// `SMMU_AIDR`.
    pub aidr: u32,
}

impl Info {
    /// Describes `dev`: `ENODEV` unless the SMMUv3 driver translates it.
    pub fn of(dev: &Device) -> Result<Self> {
        let mut raw = bindings::arm_smmu_rust_info::default();
        // SAFETY: `dev` is valid; `raw` is a valid output buffer for the call.
        to_result(unsafe { bindings::arm_smmu_rust_info(dev.as_raw(), &mut raw) })?;
        Ok(Self {
            features: raw.features,
            asid_bits: raw.asid_bits,
            ssid_bits: raw.ssid_bits,
            num_streams: raw.num_streams,
            sid: raw.sid,
            max_cmds: raw.max_cmds,
            idr: raw.idr,
            iidr: raw.iidr,
            aidr: raw.aidr,
        })
    }

    /// Whether the SMMU has all of `features`.
    pub fn has(&self, features: u32) -> bool {
        self.features & features == features
    }
}

/// Reads the STE the SMMU uses for `dev`'s first StreamID now (eight little-endian words, as
/// CPU values); `ENODEV` unless the SMMUv3 driver translates `dev`.
pub fn read_ste(dev: &Device) -> Result<[u64; 8]> {
    let mut ste = [0u64; 8];
    // SAFETY: `dev` is valid and `ste` has room for the eight words the call writes.
    to_result(unsafe { bindings::arm_smmu_rust_read_ste(dev.as_raw(), ste.as_mut_ptr()) })?;
    Ok(ste.map(u64::from_le))
}

/// What the C driver's nesting mechanism asks of the owner of a vIOMMU.
pub trait VsmmuServices: Send + Sync {
    /// The virtual StreamID of `dev` on the vIOMMU (`iommufd_viommu_get_vdev_id()`), asked when
    /// a nested domain is attached to `dev`; an error if it has none.
    fn vdev_id(&self, dev: &Device) -> Result<u64>;

    /// Queues a vEVENT of `veventq_type` (`iommufd_viommu_report_event()`), from the SMMU's
    /// event thread; may sleep but should not wait long.
    fn report_event(&self, veventq_type: u32, data: &[u8]) -> Result;
}

/// The SMMU side of a vIOMMU (`struct arm_vsmmu`), with a VMID of its own.
///
/// # Invariants
///
/// `ptr` is a vIOMMU from `arm_smmu_rust_vsmmu_alloc()` owned by this object, whose
/// `core_priv` is `_svc`'s pointer; it is freed before `_svc` is dropped.
pub struct Vsmmu<T: VsmmuServices> {
    ptr: NonNull<bindings::arm_vsmmu>,
    /// Only held: the C side reaches it through `core_priv`.
    _svc: Arc<T>,
}

// SAFETY: The C vIOMMU can be used and freed from any thread; `T` is `Send + Sync`.
unsafe impl<T: VsmmuServices> Send for Vsmmu<T> {}
// SAFETY: The C functions called through `&self` may run concurrently.
unsafe impl<T: VsmmuServices> Sync for Vsmmu<T> {}

impl<T: VsmmuServices> Vsmmu<T> {
    const OPS: bindings::iommufd_viommu_core_ops = bindings::iommufd_viommu_core_ops {
        get_vdev_id: Some(Self::get_vdev_id_callback),
        report_event: Some(Self::report_event_callback),
    };

    /// Makes a vIOMMU for `dev` over `parent`, a nest-parent stage-2 domain the SMMUv3 driver
    /// allocated for `dev`, whose nesting mechanism calls `svc`.
    ///
    /// `ENODEV` if the SMMUv3 driver does not translate `dev`, `EINVAL` for a parent of
    /// another SMMU, `ENOSPC` when the VMIDs are used up.
    pub fn new(dev: &Device, parent: &PagingDomain, svc: Arc<T>) -> Result<Self> {
        let priv_ = Arc::as_ptr(&svc).cast_mut().cast::<c_void>();
        // SAFETY: `dev` and `parent` are valid; `OPS` is a `'static` promoted constant; `svc`
        // outlives the vIOMMU (type invariant), so `priv_` stays valid for the callbacks.
        let ptr = from_err_ptr(unsafe {
            bindings::arm_smmu_rust_vsmmu_alloc(dev.as_raw(), parent.as_raw(), &Self::OPS, priv_)
        })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // INVARIANT: A new vIOMMU whose `core_priv` is `svc`'s pointer.
        Ok(Self { ptr, _svc: svc })
    }

    /// The vIOMMU's VMID.
    pub fn vmid(&self) -> u16 {
        // SAFETY: `ptr` is valid (type invariant).
        unsafe { bindings::arm_smmu_rust_vsmmu_vmid(self.ptr.as_ptr()) }
    }

    /// Makes a nested domain of the vIOMMU from `ste`, a vSTE its caller validated (two
    /// words, CPU values, `EATS` cleared); `enable_ats` if the vSTE asks for ATS.
    pub fn nested(&self, ste: [u64; 2], enable_ats: bool) -> Result<NestedDomain> {
        let ste = ste.map(u64::to_le);
        // SAFETY: `ptr` is valid (type invariant) and `ste` holds the two words read.
        let dom = from_err_ptr(unsafe {
            bindings::arm_smmu_rust_nested_alloc(self.ptr.as_ptr(), ste.as_ptr(), enable_ats)
        })?;
        let dom = NonNull::new(dom).ok_or(ENOMEM)?;
        // SAFETY: A new nested domain, ours, with its owner set by the driver. The vIOMMU
        // outlives it: its user keeps the vIOMMU until its nested domains are freed.
        unsafe { NestedDomain::from_raw(dom) }
    }

    /// Issues `cmds` (at most [`Info::max_cmds`] commands of two CPU-endian words, checked and
    /// rewritten for this vIOMMU) on the SMMU's command queue, then a `CMD_SYNC`.
    pub fn issue(&self, cmds: &mut [[u64; 2]]) -> Result {
        let n = u32::try_from(cmds.len())?;
        // SAFETY: `ptr` is valid; `cmds` holds `n` commands of two `u64`s, contiguous.
        to_result(unsafe {
            bindings::arm_smmu_rust_issue_cmds(self.ptr.as_ptr(), cmds.as_mut_ptr().cast(), n)
        })
    }

    /// # Safety
    ///
    /// `priv_` is the `core_priv` of a live [`Vsmmu<T>`]; `dev` is a valid device and `out` a
    /// valid pointer.
    unsafe extern "C" fn get_vdev_id_callback(
        priv_: *mut c_void,
        dev: *mut bindings::device,
        out: *mut c_ulong,
    ) -> c_int {
        // SAFETY: `priv_` points to the live `T` of the vIOMMU (type invariant of `Vsmmu`).
        let svc = unsafe { &*priv_.cast::<T>() };
        // SAFETY: The driver calls with a device it holds for the call.
        let dev = unsafe { Device::from_raw(dev) };
        match svc
            .vdev_id(dev)
            .and_then(|id| c_ulong::try_from(id).map_err(|_| EOVERFLOW))
        {
            Ok(id) => {
                // SAFETY: `out` is valid for a write (the caller's promise).
                unsafe { *out = id };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `priv_` is the `core_priv` of a live [`Vsmmu<T>`]; `data` points to `len` readable bytes.
    unsafe extern "C" fn report_event_callback(
        priv_: *mut c_void,
        veventq_type: bindings::iommu_veventq_type,
        data: *mut c_void,
        len: usize,
    ) -> c_int {
        // SAFETY: `priv_` points to the live `T` of the vIOMMU (type invariant of `Vsmmu`).
        let svc = unsafe { &*priv_.cast::<T>() };
        if data.is_null() {
            return EINVAL.to_errno();
        }
        // SAFETY: `data` holds `len` bytes for the call (the caller's promise).
        let data = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) };
        match svc.report_event(veventq_type, data) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

impl<T: VsmmuServices> Drop for Vsmmu<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is ours (type invariant); its nested domains are gone (their user keeps
        // the vIOMMU until then), so nothing calls `_svc` through it any more. `_svc` is dropped
        // after this.
        unsafe { bindings::arm_smmu_rust_vsmmu_free(self.ptr.as_ptr()) };
    }
}
