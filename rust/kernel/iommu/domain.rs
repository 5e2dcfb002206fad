// SPDX-License-Identifier: GPL-2.0

//! IOMMU domains, groups and attachments, as seen by a user of the IOMMU API.
//!
//! This is the side iommufd uses for the domains of any IOMMU driver (VT-d,
//! SMMUv3, the selftest mock): allocate a paging domain for a device, map and
//! unmap, translate, track dirty pages, and attach groups and PASIDs to
//! domains. Drivers are written with [`super::driver`].
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)

use crate::{
    alloc::Flags,
    bindings,
    device::Device,
    dma::DmaAddress,
    error::{
        from_err_ptr,
        to_result, //
    },
    io::PhysAddr,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    types::Opaque, //
};
use core::ptr::NonNull;

use super::fault::{
    iopf_handler_callback,
    AttachHandle,
    FaultRoute, //
};

/// Mapping permission: the device may read (`IOMMU_READ`).
pub const PROT_READ: u32 = bindings::IOMMU_READ;
/// Mapping permission: the device may write (`IOMMU_WRITE`).
pub const PROT_WRITE: u32 = bindings::IOMMU_WRITE;
/// Mapping attribute: DMA is cache coherent (`IOMMU_CACHE`).
pub const PROT_CACHE: u32 = bindings::IOMMU_CACHE;
/// Mapping attribute: no instruction fetch (`IOMMU_NOEXEC`).
pub const PROT_NOEXEC: u32 = bindings::IOMMU_NOEXEC;
/// Mapping attribute: MMIO, not memory (`IOMMU_MMIO`).
pub const PROT_MMIO: u32 = bindings::IOMMU_MMIO;

/// `read_and_clear_dirty` flag: report dirty pages without clearing them.
pub const DIRTY_NO_CLEAR: u64 = bindings::IOMMU_DIRTY_NO_CLEAR as u64;

/// Domain type of a domain that blocks all DMA (`IOMMU_DOMAIN_BLOCKED`).
pub const TYPE_BLOCKED: u32 = bindings::IOMMU_DOMAIN_BLOCKED;
/// Domain type of a paging domain for a user such as iommufd (`IOMMU_DOMAIN_UNMANAGED`).
pub const TYPE_UNMANAGED: u32 = bindings::IOMMU_DOMAIN_UNMANAGED;
/// Domain type of a user-managed stage-1 table nested over a paging domain
/// (`IOMMU_DOMAIN_NESTED`).
pub const TYPE_NESTED: u32 = bindings::IOMMU_DOMAIN_NESTED;

/// A capability of the IOMMU that translates a device (`enum iommu_cap`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// The IOMMU can enforce cache coherent DMA.
    CacheCoherency,
    /// Mappings may be made non-executable (`IOMMU_NOEXEC`).
    NoExec,
    /// The IOMMU can enforce cache coherency for all mappings of a domain.
    EnforceCacheCoherency,
    /// The IOMMU supports deferred flushing.
    DeferredFlush,
    /// The IOMMU can track dirty pages.
    DirtyTracking,
    /// The IOMMU lets a PCI device use ATS.
    PciAtsSupported,
    /// Another capability, by its raw value.
    Other(u32),
}

impl Capability {
    const TABLE: [(Capability, bindings::iommu_cap); 6] = [
        (
            Self::CacheCoherency,
            bindings::iommu_cap::IOMMU_CAP_CACHE_COHERENCY,
        ),
        (Self::NoExec, bindings::iommu_cap::IOMMU_CAP_NOEXEC),
        (
            Self::EnforceCacheCoherency,
            bindings::iommu_cap::IOMMU_CAP_ENFORCE_CACHE_COHERENCY,
        ),
        (
            Self::DeferredFlush,
            bindings::iommu_cap::IOMMU_CAP_DEFERRED_FLUSH,
        ),
        (
            Self::DirtyTracking,
            bindings::iommu_cap::IOMMU_CAP_DIRTY_TRACKING,
        ),
        (
            Self::PciAtsSupported,
            bindings::iommu_cap::IOMMU_CAP_PCI_ATS_SUPPORTED,
        ),
    ];

    /// Converts from the C value.
    pub fn from_raw(cap: bindings::iommu_cap) -> Self {
        for (c, raw) in Self::TABLE {
            if raw.0 == cap.0 {
                return c;
            }
        }
        Self::Other(cap.0)
    }

    /// Converts to the C value.
    pub fn to_raw(self) -> bindings::iommu_cap {
        if let Self::Other(raw) = self {
            return bindings::iommu_cap(raw);
        }
        for (c, raw) in Self::TABLE {
            if c == self {
                return raw;
            }
        }
        bindings::iommu_cap(0)
    }
}

/// Returns whether the IOMMU translating `dev` has `cap` (`device_iommu_capable`).
pub fn device_capable(dev: &Device, cap: Capability) -> bool {
    // SAFETY: `dev` is a valid device for the duration of the call.
    unsafe { bindings::device_iommu_capable(dev.as_raw(), cap.to_raw()) }
}

/// Hardware information of the IOMMU translating a device (`iommu_ops.hw_info`).
pub struct HwInfoData {
    /// The `IOMMU_HW_INFO_TYPE_*` of `data`.
    pub info_type: u32,
    /// The driver's structure, as bytes.
    pub data: KVec<u8>,
}

/// Returns whether the driver of the IOMMU translating `dev` reports
/// hardware information (`iommu_ops.hw_info`); false when no IOMMU
/// translates `dev`.
pub fn device_has_hw_info(dev: &Device) -> bool {
    // SAFETY: `dev` is valid; `dev->iommu` is set while the device is probed.
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return false;
    }
    // SAFETY: A probed device has a valid `iommu_dev` whose ops are valid.
    let ops = unsafe { (*(*iommu).iommu_dev).ops };
    // SAFETY: `ops` points to the driver's valid ops table.
    unsafe { (*ops).hw_info }.is_some()
}

/// Asks the driver of `dev` for its hardware information of type
/// `requested` (`IOMMU_HW_INFO_TYPE_DEFAULT` for its own type), as
/// `IOMMU_GET_HW_INFO` does.
///
/// Fails with `EOPNOTSUPP` when the driver has no `hw_info` and `ENODEV`
/// when no IOMMU translates `dev`.
pub fn device_hw_info(dev: &Device, requested: u32) -> Result<HwInfoData> {
    let dev_ptr = dev.as_raw();
    // SAFETY: `dev` is valid; `dev->iommu` is set while the device is probed.
    let iommu = unsafe { (*dev_ptr).iommu };
    if iommu.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: A probed device has a valid `iommu_dev` whose ops are valid.
    let ops = unsafe { (*(*iommu).iommu_dev).ops };
    // SAFETY: `ops` points to the driver's valid ops table.
    let f = unsafe { (*ops).hw_info }.ok_or(EOPNOTSUPP)?;
    let mut len: u32 = 0;
    let mut info_type = bindings::iommu_hw_info_type(requested);
    // SAFETY: The arguments are valid for the call.
    let ptr = from_err_ptr(unsafe { f(dev_ptr, &mut len, &mut info_type) })?;
    if ptr.is_null() {
        return Err(ENOMEM);
    }
    if len == 0 {
        // SAFETY: The buffer came from kmalloc() and is ours to free.
        unsafe { bindings::kfree(ptr) };
        return Err(EINVAL);
    }
    // CAST: `u32` fits in `usize`.
    let len = len as usize;
    // SAFETY: The driver returned a kmalloc()ed buffer of `len` bytes that
    // the caller frees; `KVec` frees it with kfree().
    let data = unsafe { KVec::from_raw_parts(ptr.cast::<u8>(), len, len) };
    Ok(HwInfoData {
        info_type: info_type.0,
        data,
    })
}

/// Returns how many PASIDs `dev` can use (`dev->iommu->max_pasids`); 0
/// when no IOMMU translates it or it has no PASIDs.
pub fn device_max_pasids(dev: &Device) -> u32 {
    // SAFETY: `dev` is valid; `dev->iommu` is set while the device is probed.
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return 0;
    }
    // SAFETY: `iommu` is valid while the device is probed.
    unsafe { (*iommu).max_pasids }
}

/// The IOVA range a domain can translate (`struct iommu_domain_geometry`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// First IOVA of the aperture.
    pub aperture_start: DmaAddress,
    /// Last IOVA of the aperture (inclusive; C calls it `aperture_end`).
    pub aperture_end: DmaAddress,
    /// DMA outside the aperture is impossible.
    pub force_aperture: bool,
}

/// An IOMMU domain, borrowed (`struct iommu_domain`).
///
/// # Invariants
///
/// The wrapped `struct iommu_domain` is valid (allocated and not yet freed)
/// for as long as a reference to this type exists.
#[repr(transparent)]
pub struct Domain(Opaque<bindings::iommu_domain>);

// SAFETY: The IOMMU API may be used on a domain from any thread; drivers
// serialise what needs serialising.
unsafe impl Send for Domain {}
// SAFETY: Every method takes `&self` and calls C functions that may run
// concurrently on one domain.
unsafe impl Sync for Domain {}

impl Domain {
    /// Borrows a C domain.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct iommu_domain` that stays valid for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::iommu_domain) -> &'a Self {
        // SAFETY: `Domain` is a transparent wrapper of the C struct; validity
        // for `'a` is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer to the C domain.
    pub fn as_raw(&self) -> *mut bindings::iommu_domain {
        self.0.get()
    }

    fn raw(&self) -> &bindings::iommu_domain {
        // SAFETY: By the type invariant the domain is valid. The fields read
        // through this reference are set when the domain is allocated and not
        // changed while it is in use.
        unsafe { &*self.0.get() }
    }

    /// Returns the domain type (`IOMMU_DOMAIN_*`).
    pub fn domain_type(&self) -> u32 {
        self.raw().type_
    }

    /// Returns whether the domain translates with page tables.
    pub fn is_paging(&self) -> bool {
        self.domain_type() & bindings::__IOMMU_DOMAIN_PAGING != 0
    }

    /// Returns the page sizes the domain can map (a bitmap of sizes).
    pub fn pgsize_bitmap(&self) -> usize {
        self.raw().pgsize_bitmap
    }

    /// Returns the smallest page size of the domain, or 0 if it has none.
    pub fn min_page_size(&self) -> usize {
        let bitmap = self.pgsize_bitmap();
        if bitmap == 0 {
            return 0;
        }
        1 << bitmap.trailing_zeros()
    }

    /// Returns the domain's aperture.
    pub fn geometry(&self) -> Geometry {
        let g = &self.raw().geometry;
        Geometry {
            aperture_start: g.aperture_start,
            aperture_end: g.aperture_end,
            force_aperture: g.force_aperture,
        }
    }

    /// Returns whether page faults of devices attached to the domain are handled
    /// (`iopf_handler`): drivers enable fault reporting for such devices.
    pub fn has_iopf_handler(&self) -> bool {
        self.raw().iopf_handler.is_some()
    }

    /// Returns whether the domain has dirty tracking operations.
    pub fn has_dirty_ops(&self) -> bool {
        !self.raw().dirty_ops.is_null()
    }

    /// Returns the `struct iommu_ops` of the driver that allocated the domain.
    ///
    /// Only useful to compare with a driver's own ops.
    pub fn owner(&self) -> *const bindings::iommu_ops {
        self.raw().owner
    }

    /// Makes every mapping of the domain cache coherent (no snoop
    /// override); returns whether the driver could (`enforce_cache_coherency`).
    pub fn enforce_cache_coherency(&self) -> bool {
        let ops = self.raw().ops;
        if ops.is_null() {
            return false;
        }
        // SAFETY: `ops` of a valid domain points to a valid ops table.
        match unsafe { (*ops).enforce_cache_coherency } {
            // SAFETY: The domain is valid; `f` belongs to its driver.
            Some(f) => unsafe { f(self.as_raw()) },
            None => false,
        }
    }

    /// Maps `size` bytes at `iova` to `paddr` (`iommu_map`).
    ///
    /// `prot` is a combination of the `PROT_*` constants. On failure nothing
    /// stays mapped.
    pub fn map(&self, iova: usize, paddr: PhysAddr, size: usize, prot: u32, gfp: Flags) -> Result {
        // CAST: The `PROT_*` bits fit in a C int.
        let prot = prot as c_int;
        // SAFETY: By the type invariant the domain is valid.
        to_result(unsafe {
            bindings::iommu_map(self.as_raw(), iova, paddr, size, prot, gfp.as_raw())
        })
    }

    /// Unmaps `size` bytes at `iova` and returns how many bytes were unmapped (`iommu_unmap`).
    pub fn unmap(&self, iova: usize, size: usize) -> usize {
        // SAFETY: By the type invariant the domain is valid.
        unsafe { bindings::iommu_unmap(self.as_raw(), iova, size) }
    }

    /// Translates `iova`; returns 0 when nothing is mapped there (`iommu_iova_to_phys`).
    pub fn iova_to_phys(&self, iova: DmaAddress) -> PhysAddr {
        // SAFETY: By the type invariant the domain is valid.
        unsafe { bindings::iommu_iova_to_phys(self.as_raw(), iova) }
    }

    /// Starts or stops dirty tracking.
    ///
    /// Fails with `EOPNOTSUPP` when the domain has no dirty tracking operations.
    pub fn set_dirty_tracking(&self, enable: bool) -> Result {
        let ops = self.raw().dirty_ops;
        if ops.is_null() {
            return Err(EOPNOTSUPP);
        }
        // SAFETY: `dirty_ops` of a valid domain points to a valid ops table.
        let f = unsafe { (*ops).set_dirty_tracking }.ok_or(EOPNOTSUPP)?;
        // SAFETY: By the type invariant the domain is valid; `f` belongs to its driver.
        to_result(unsafe { f(self.as_raw(), enable) })
    }

    /// Reads (and, without [`DIRTY_NO_CLEAR`] in `flags`, clears) the dirty
    /// bits of `[iova, iova + size)`, then flushes the IOTLB as needed.
    ///
    /// Dirty pages are recorded in `bitmap` when given. Returns the range
    /// `(first, last)` of IOVA the driver recorded as dirty, if any.
    pub fn read_and_clear_dirty(
        &self,
        iova: usize,
        size: usize,
        flags: u64,
        bitmap: Option<&IovaBitmapChunk>,
    ) -> Result<Option<(usize, usize)>> {
        let ops = self.raw().dirty_ops;
        if ops.is_null() {
            return Err(EOPNOTSUPP);
        }
        // SAFETY: `dirty_ops` of a valid domain points to a valid ops table.
        let f = unsafe { (*ops).read_and_clear_dirty }.ok_or(EOPNOTSUPP)?;
        let bitmap_ptr = bitmap.map_or(core::ptr::null_mut(), |b| b.0.get());
        let mut gather = core::mem::MaybeUninit::<bindings::iommu_iotlb_gather>::uninit();
        let mut dirty = core::mem::MaybeUninit::<bindings::iommu_dirty_bitmap>::uninit();
        // SAFETY: Both pointers are valid for writes; the helper initialises
        // `dirty` and `gather` (whose free list points into itself, so it is
        // not moved afterwards).
        unsafe {
            bindings::iommu_dirty_bitmap_init(dirty.as_mut_ptr(), bitmap_ptr, gather.as_mut_ptr())
        };
        // CAST: The C parameter is an `unsigned long` of flags.
        let cflags = flags as usize;
        // SAFETY: The domain is valid, `dirty` was initialised above and
        // refers to `gather` and the optional bitmap, both alive for the call.
        let ret = unsafe { f(self.as_raw(), iova, size, cflags, dirty.as_mut_ptr()) };
        // SAFETY: `gather` is initialised; read it before the sync resets it.
        let range = unsafe {
            let g = gather.assume_init_ref();
            (g.start <= g.end).then_some((g.start, g.end))
        };
        // SAFETY: `gather` was initialised above; the sync releases anything
        // the driver queued on it.
        unsafe { bindings::iommu_iotlb_sync(self.as_raw(), gather.as_mut_ptr()) };
        to_result(ret)?;
        Ok(range)
    }
}

/// User data for a driver-specific domain allocation (`struct iommu_user_data`).
///
/// The driver copies it from user memory itself.
#[repr(transparent)]
pub struct UserData(bindings::iommu_user_data);

impl UserData {
    /// Describes `len` bytes of type `data_type` (`IOMMU_HWPT_DATA_*`) at user address `uptr`.
    pub fn new(data_type: u32, uptr: crate::uaccess::UserPtr, len: usize) -> Self {
        Self(bindings::iommu_user_data {
            type_: data_type,
            uptr: uptr.as_mut_ptr(),
            len,
        })
    }

    /// Returns the data type.
    pub fn data_type(&self) -> u32 {
        self.0.type_
    }

    /// Returns the length of the user data in bytes.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Returns whether there is no user data.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Returns the user address of the data.
    pub fn uptr(&self) -> crate::uaccess::UserPtr {
        crate::uaccess::UserPtr::from_ptr(self.0.uptr)
    }

    /// Borrows the C user data.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct iommu_user_data` that stays valid for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *const bindings::iommu_user_data) -> &'a Self {
        // SAFETY: `UserData` is a transparent wrapper; validity is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *const bindings::iommu_user_data {
        &self.0
    }

    /// Copies the data into a `T`, the driver's uAPI structure of type `data_type`, as
    /// `iommu_copy_struct_from_user()` does.
    ///
    /// `min_len` is the size of the structure's first version (up to its first version's last
    /// field). The data must be of type `data_type` and between `min_len` and `size_of::<T>()`
    /// bytes long (`EINVAL` otherwise); a shorter structure reads as zero-filled.
    pub fn copy_struct<T: FromBytes + AsBytes + Zeroable>(
        &self,
        data_type: u32,
        min_len: usize,
    ) -> Result<T> {
        copy_struct(
            self.uptr(),
            self.len(),
            self.data_type(),
            data_type,
            min_len,
        )
    }

    /// Writes `val`, the driver's uAPI structure of type `data_type`, back to the user's
    /// structure, as `iommu_copy_struct_to_user()` does: the data must be of type `data_type`
    /// and between `min_len` and `size_of::<T>()` bytes long (`EINVAL` otherwise); only the
    /// user's length is written.
    pub fn write_struct<T: AsBytes>(&self, data_type: u32, min_len: usize, val: &T) -> Result {
        let len = self.len();
        if self.data_type() != data_type || len < min_len || len > core::mem::size_of::<T>() {
            return Err(EINVAL);
        }
        let bytes = val.as_bytes();
        crate::uaccess::UserSlice::new(self.uptr(), len)
            .writer()
            .write_slice(bytes.get(..len).ok_or(EINVAL)?)
    }
}

/// Checks that the `len` bytes of user memory at `ptr` are all zero (`check_zeroed_user()`).
///
/// Fails with `E2BIG` on a non-zero byte, and with `EFAULT` if the range is not user memory or
/// a fault comes before any non-zero byte: the C function reads aligned words in order and
/// stops at the first non-zero one, so the errno depends on which comes first, exactly as it
/// does for `copy_struct_from_user()` in the C iommufd.
pub fn check_zeroed_user(ptr: crate::uaccess::UserPtr, len: usize) -> Result {
    // SAFETY: `check_zeroed_user()` accepts any address and length: it checks the range with
    // `access_ok()` and reads it only through the fault-handling user accessors.
    match unsafe { bindings::check_zeroed_user(ptr.as_const_ptr(), len) } {
        1 => Ok(()),
        0 => Err(E2BIG),
        _ => Err(EFAULT),
    }
}

/// Copies `len` bytes of type `have` at `uptr` into a `T` of type `want` (see
/// [`UserData::copy_struct`]).
fn copy_struct<T: FromBytes + AsBytes + Zeroable>(
    uptr: crate::uaccess::UserPtr,
    len: usize,
    have: u32,
    want: u32,
    min_len: usize,
) -> Result<T> {
    if have != want || len < min_len || len > core::mem::size_of::<T>() {
        return Err(EINVAL);
    }
    let mut val = T::zeroed();
    let bytes = val.as_bytes_mut();
    crate::uaccess::UserSlice::new(uptr, len)
        .reader()
        .read_slice(bytes.get_mut(..len).ok_or(EINVAL)?)?;
    Ok(val)
}

/// An array of user data entries for a driver, such as cache invalidation requests
/// (`struct iommu_user_data_array`).
///
/// The driver reads the entries itself and reports how many it handled with
/// [`UserDataArray::set_done`].
#[repr(transparent)]
pub struct UserDataArray(bindings::iommu_user_data_array);

impl UserDataArray {
    /// Describes `entry_num` entries of `entry_len` bytes each, of type `data_type`, at user
    /// address `uptr`.
    pub fn new(
        data_type: u32,
        uptr: crate::uaccess::UserPtr,
        entry_len: usize,
        entry_num: u32,
    ) -> Self {
        Self(bindings::iommu_user_data_array {
            type_: data_type,
            uptr: uptr.as_mut_ptr(),
            entry_len,
            entry_num,
        })
    }

    /// Returns the data type of the entries.
    pub fn data_type(&self) -> u32 {
        self.0.type_
    }

    /// Returns the number of entries (after a driver call: how many it handled).
    pub fn entry_num(&self) -> u32 {
        self.0.entry_num
    }

    /// Returns the length of one entry in bytes.
    pub fn entry_len(&self) -> usize {
        self.0.entry_len
    }

    /// Records that the first `done` entries were handled (the driver's answer).
    pub fn set_done(&mut self, done: u32) {
        self.0.entry_num = done;
    }

    /// Copies entry `index` into a `T` of type `data_type`, as
    /// `iommu_copy_struct_from_user_array()` does: `EINVAL` for an index past the end, another
    /// type, or an entry length below `min_len` or above `size_of::<T>()`; a shorter entry reads
    /// as zero-filled.
    pub fn entry<T: FromBytes + AsBytes + Zeroable>(
        &self,
        data_type: u32,
        index: u32,
        min_len: usize,
    ) -> Result<T> {
        if index >= self.0.entry_num {
            return Err(EINVAL);
        }
        let offset = self
            .0
            .entry_len
            .checked_mul(usize::try_from(index)?)
            .ok_or(EFAULT)?;
        // CAST: A user address is an integer to the kernel; the sum is checked.
        let addr = (self.0.uptr as usize).checked_add(offset).ok_or(EFAULT)?;
        copy_struct(
            crate::uaccess::UserPtr::from_addr(addr),
            self.0.entry_len,
            self.0.type_,
            data_type,
            min_len,
        )
    }

    /// Copies the entries from `first` on into `out`, one per element, in one user copy, when
    /// the entries are of type `data_type` and exactly `size_of::<T>()` bytes long, and all of
    /// them exist. Returns false (having copied nothing) when they are not; the caller then
    /// reads them one by one with [`Self::entry`], which applies `copy_struct_from_user()`'s
    /// rules. A fault is `EFAULT`; nothing tells which entry faulted.
    pub fn entries_into<T: FromBytes + AsBytes + Zeroable>(
        &self,
        data_type: u32,
        first: u32,
        out: &mut [T],
    ) -> Result<bool> {
        let size = core::mem::size_of::<T>();
        let n = u32::try_from(out.len()).map_err(|_| EINVAL)?;
        let end = first.checked_add(n).ok_or(EINVAL)?;
        if self.0.type_ != data_type || self.0.entry_len != size || end > self.0.entry_num {
            return Ok(false);
        }
        let offset = size.checked_mul(usize::try_from(first)?).ok_or(EFAULT)?;
        // CAST: A user address is an integer to the kernel; the sum is checked.
        let addr = (self.0.uptr as usize).checked_add(offset).ok_or(EFAULT)?;
        let bytes = out.as_bytes_mut();
        let len = bytes.len();
        crate::uaccess::UserSlice::new(crate::uaccess::UserPtr::from_addr(addr), len)
            .reader()
            .read_slice(bytes)?;
        Ok(true)
    }

    /// Copies every entry into a `T` of type `data_type`, as
    /// `iommu_copy_struct_from_full_user_array()` does: `EINVAL` for another type or no entry;
    /// entries of exactly `size_of::<T>()` bytes are copied in one go, others one by one with
    /// `copy_struct_from_user()`'s rules (a shorter entry reads as zero-filled, a longer one
    /// must have a zero tail, `E2BIG` otherwise). A fault is `EFAULT`.
    pub fn entries<T: FromBytes + AsBytes + Zeroable>(&self, data_type: u32) -> Result<KVVec<T>> {
        let size = core::mem::size_of::<T>();
        if self.0.type_ != data_type || self.0.entry_num == 0 || size == 0 {
            return Err(EINVAL);
        }
        let n = usize::try_from(self.0.entry_num)?;
        let len = self.0.entry_len;
        len.checked_mul(n).ok_or(EFAULT)?;
        let mut out = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        // CAST: A user address is an integer to the kernel.
        let base = crate::uaccess::UserPtr::from_addr(self.0.uptr as usize);
        let head = len.min(size);
        for i in 0..n {
            // No overflow: `len * n` was checked above. A range that wraps is not user
            // memory, and the reads below fail on it.
            let entry = base.wrapping_byte_add(len * i);
            // A longer entry than the kernel's structure: the rest must be zero, and it is
            // checked before the known part is read, as `copy_struct_from_user()` does.
            if len > size {
                check_zeroed_user(entry.wrapping_byte_add(size), len - size)?;
            }
            let mut val = T::zeroed();
            let bytes = val.as_bytes_mut();
            crate::uaccess::UserSlice::new(entry, head)
                .reader()
                .read_slice(bytes.get_mut(..head).ok_or(EINVAL)?)?;
            out.push(val, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(out)
    }

    /// Borrows the C array.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct iommu_user_data_array` that stays valid, and is not
    /// used otherwise, for `'a`.
    pub unsafe fn from_raw_mut<'a>(ptr: *mut bindings::iommu_user_data_array) -> &'a mut Self {
        // SAFETY: A transparent wrapper; validity and exclusivity are the caller's promise.
        unsafe { &mut *ptr.cast() }
    }

    fn as_raw_mut(&mut self) -> *mut bindings::iommu_user_data_array {
        &mut self.0
    }
}

/// An owned paging domain, freed with `iommu_domain_free` on drop.
///
/// # Invariants
///
/// `ptr` points to a valid paging domain owned by this object.
pub struct PagingDomain {
    ptr: NonNull<bindings::iommu_domain>,
    /// Releases the MSI doorbell owner given with [`PagingDomain::with_sw_msi_owner`], after the
    /// domain is freed.
    sw_msi_release: Option<unsafe fn(*mut c_void)>,
}

// SAFETY: A domain can be freed from any thread.
unsafe impl Send for PagingDomain {}
// SAFETY: See `Domain`.
unsafe impl Sync for PagingDomain {}

impl PagingDomain {
    /// Allocates a paging domain able to translate `dev` (`iommu_paging_domain_alloc_flags`).
    ///
    /// `flags` are `IOMMU_HWPT_ALLOC_*` flags.
    pub fn alloc(dev: &Device, flags: u32) -> Result<Self> {
        // SAFETY: `dev` is valid for the duration of the call.
        let ptr = from_err_ptr(unsafe {
            bindings::iommu_paging_domain_alloc_flags(dev.as_raw(), flags)
        })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // INVARIANT: The core returned a new paging domain that we own.
        Ok(Self {
            ptr,
            sw_msi_release: None,
        })
    }

    /// Allocates a paging domain with driver-specific `data`, as iommufd does
    /// for `IOMMU_HWPT_ALLOC` (the driver's `domain_alloc_paging_flags`).
    ///
    /// A driver without `domain_alloc_paging_flags` (virtio-iommu, arm-smmu v2, ...) gets a
    /// plain paging domain from the core ([`PagingDomain::alloc`]) when neither flags nor data
    /// are asked for; with flags or data it fails with `EOPNOTSUPP`.
    pub fn alloc_user(dev: &Device, flags: u32, data: Option<&UserData>) -> Result<Self> {
        let dev_ptr = dev.as_raw();
        let ops = device_ops(dev)?;
        // SAFETY: `ops` points to the driver's valid ops table.
        let Some(f) = (unsafe { (*ops).domain_alloc_paging_flags }) else {
            if flags != 0 || data.is_some() {
                return Err(EOPNOTSUPP);
            }
            // The core sets `owner` itself.
            return Self::alloc(dev, 0);
        };
        let data_ptr = data.map_or(core::ptr::null(), |d| d.as_raw());
        // SAFETY: The arguments are valid for the duration of the call.
        let ptr = from_err_ptr(unsafe { f(dev_ptr, flags, data_ptr) })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: The driver returned a new valid domain; as iommufd does,
        // record the ops it came from.
        unsafe { (*ptr.as_ptr()).owner = ops };
        // INVARIANT: We own the new domain.
        Ok(Self {
            ptr,
            sw_msi_release: None,
        })
    }

    /// Returns the raw domain pointer and gives up ownership.
    ///
    /// A domain with an MSI doorbell owner cannot be given up (`EBUSY`).
    pub fn into_raw(self) -> Result<*mut bindings::iommu_domain> {
        if self.sw_msi_release.is_some() {
            return Err(EBUSY);
        }
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        Ok(ptr)
    }

    /// Takes ownership of a C paging domain.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid paging domain that the caller owns and hands over.
    pub unsafe fn from_raw(ptr: NonNull<bindings::iommu_domain>) -> Self {
        // INVARIANT: Ownership is handed over by the caller.
        Self {
            ptr,
            sw_msi_release: None,
        }
    }
}

impl PagingDomain {
    /// Makes the domain handle page faults: those of its attachments go to the attachment's
    /// [`FaultRoute`] (see [`super::fault`]).
    pub fn with_iopf(self) -> Self {
        // SAFETY: We own the domain (type invariant) and nothing is attached to it yet.
        unsafe { set_iopf_handler(self.ptr) };
        self
    }

    /// Makes `owner` map MSI doorbells into this domain (`IOMMU_COOKIE_SW_MSI`): when the irq
    /// layer prepares an MSI of a device attached to the domain whose doorbell is translated by
    /// the IOMMU (`iommu_dma_prepare_msi()`), [`SwMsiOwner::map_msi`] is called. The domain holds
    /// `owner` until it is freed.
    ///
    /// Fails with `EBUSY` if the domain already has a cookie; `owner` is dropped then.
    pub fn with_sw_msi_owner<T: SwMsiOwner>(mut self, owner: Arc<T>) -> Result<Self> {
        // SAFETY: The domain is valid and owned by `self` (type invariant), not attached to
        // anything yet, and freed before `sw_msi_release` runs (see `Drop`).
        self.sw_msi_release = Some(unsafe { set_sw_msi_owner(self.ptr, owner) }?);
        Ok(self)
    }
}

/// Frees the owned `domain` (`iommu_domain_free`), then releases its MSI doorbell owner with
/// `release`.
///
/// # Safety
///
/// The caller owns `domain`, which nothing uses any more; `release`, if given, is the function
/// [`set_sw_msi_owner`] returned for it.
unsafe fn free_owned(
    domain: NonNull<bindings::iommu_domain>,
    release: Option<unsafe fn(*mut c_void)>,
) {
    let ptr = domain.as_ptr();
    // SAFETY: The domain is valid; only read before it is freed.
    let data = unsafe { bindings::iommu_domain_sw_msi_data(ptr) };
    // SAFETY: The caller owns the domain and nothing uses it any more.
    unsafe { bindings::iommu_domain_free(ptr) };
    if let Some(release) = release {
        // SAFETY: `data` is the owner `release` belongs to; the domain is freed.
        unsafe { release(data) };
    }
}

/// Makes `domain` hand its page faults to the routes of its attachments ([`super::fault`]).
///
/// # Safety
///
/// The caller owns `domain` and nothing is attached to it yet, so nobody reads the field
/// concurrently.
unsafe fn set_iopf_handler(domain: NonNull<bindings::iommu_domain>) {
    // SAFETY: The domain is valid and not read concurrently (the function's requirements).
    unsafe { (*domain.as_ptr()).iopf_handler = Some(iopf_handler_callback) };
}

/// Gives `domain` the MSI doorbell owner `owner`; returns the function that releases it.
///
/// # Safety
///
/// `domain` must be a valid domain owned by the caller and not attached to anything. The caller
/// must call the returned function with `iommu_domain_sw_msi_data()` of the domain, once, after
/// the domain is freed.
unsafe fn set_sw_msi_owner<T: SwMsiOwner>(
    domain: NonNull<bindings::iommu_domain>,
    owner: Arc<T>,
) -> Result<unsafe fn(*mut c_void)> {
    let data = Arc::into_raw(owner).cast_mut();
    // SAFETY: The domain is valid and not attached (the function's safety requirements).
    // `data` stays valid until the release runs after the domain is freed, so the callback never
    // sees it dangling.
    let res = to_result(unsafe {
        bindings::iommu_domain_set_sw_msi(domain.as_ptr(), Some(sw_msi_callback::<T>), data.cast())
    });
    if let Err(e) = res {
        // SAFETY: `data` came from `Arc::into_raw` above and was not handed out.
        drop(unsafe { Arc::from_raw(data) });
        return Err(e);
    }
    Ok(sw_msi_release::<T>)
}

/// Drops the owner given with [`PagingDomain::with_sw_msi_owner`].
///
/// # Safety
///
/// `data` must come from `Arc::<T>::into_raw` in [`PagingDomain::with_sw_msi_owner`], and the
/// domain it was given to must be freed.
unsafe fn sw_msi_release<T: SwMsiOwner>(data: *mut c_void) {
    // SAFETY: By the function's safety requirements.
    drop(unsafe { Arc::<T>::from_raw(data.cast()) });
}

/// The owner of a paging domain that maps MSI doorbells into it itself.
pub trait SwMsiOwner: Sync {
    /// Maps the doorbell at physical address `msi_addr` into `domain` for `dev`.
    ///
    /// Returns the IOVA of the page the doorbell is mapped at (the doorbell's offset in its page
    /// is kept), or `None` when the device's doorbell is not translated and the MSI message stays
    /// as it is. Called under the group's mutex.
    fn map_msi(&self, domain: &Domain, dev: &Device, msi_addr: PhysAddr) -> Result<Option<u64>>;
}

/// `iommu_domain::sw_msi` of domains given an owner with [`PagingDomain::with_sw_msi_owner`].
///
/// # Safety
///
/// Called by the IOMMU core with a valid attached domain whose data is a `*const T` set by
/// [`PagingDomain::with_sw_msi_owner`], and a valid MSI descriptor of an attached device.
unsafe extern "C" fn sw_msi_callback<T: SwMsiOwner>(
    domain: *mut bindings::iommu_domain,
    desc: *mut bindings::msi_desc,
    msi_addr: bindings::phys_addr_t,
) -> c_int {
    // SAFETY: The domain is valid by the function's safety requirements.
    let owner = unsafe { bindings::iommu_domain_sw_msi_data(domain) }.cast::<T>();
    if owner.is_null() {
        return 0;
    }
    // SAFETY: `desc` is valid; an MSI descriptor always names its device.
    let dev_ptr = unsafe { bindings::msi_desc_to_dev(desc) };
    // SAFETY: The domain holds its owner until it is freed (`with_sw_msi_owner`); the domain
    // and the device are valid for the call.
    let (owner, domain_ref, dev) =
        unsafe { (&*owner, Domain::from_raw(domain), Device::from_raw(dev_ptr)) };
    match owner.map_msi(domain_ref, dev, msi_addr) {
        Ok(Some(iova)) => {
            // SAFETY: `desc` is valid for the call.
            unsafe {
                bindings::msi_desc_set_iommu_msi_iova(desc, iova, bindings::PAGE_SHIFT as u32)
            };
            0
        }
        Ok(None) => 0,
        Err(e) => e.to_errno(),
    }
}

impl core::ops::Deref for PagingDomain {
    type Target = Domain;

    fn deref(&self) -> &Domain {
        // SAFETY: By the type invariant the domain is valid while `self` lives.
        unsafe { Domain::from_raw(self.ptr.as_ptr()) }
    }
}

impl Drop for PagingDomain {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the domain; nothing uses it after this
        // (attachments hold the owner, see `DomainOwner`), and `sw_msi_release` is the release
        // of the owner given with `with_sw_msi_owner`.
        unsafe { free_owned(self.ptr, self.sw_msi_release) };
    }
}

/// Something that keeps a domain alive and gives access to it.
///
/// # Safety
///
/// [`DomainOwner::domain`] must return the same domain every time, and that
/// domain must stay valid for as long as the owner exists.
pub unsafe trait DomainOwner: Send + Sync {
    /// Returns the owned domain.
    fn domain(&self) -> &Domain;
}

// SAFETY: A reference keeps the domain borrowed and always returns it.
unsafe impl DomainOwner for &PagingDomain {
    fn domain(&self) -> &Domain {
        self
    }
}

// SAFETY: The `Arc` keeps the domain alive and always returns it.
unsafe impl DomainOwner for Arc<PagingDomain> {
    fn domain(&self) -> &Domain {
        self
    }
}

// SAFETY: The box owns the domain and always returns it.
unsafe impl DomainOwner for KBox<PagingDomain> {
    fn domain(&self) -> &Domain {
        self
    }
}

/// An owned nested domain: a stage-1 translation table managed by user space (a guest), nested
/// over a paging domain of the same driver, its parent. Freed with `iommu_domain_free` on drop.
///
/// # Invariants
///
/// `ptr` points to a valid domain of type [`TYPE_NESTED`] owned by this object.
pub struct NestedDomain {
    ptr: NonNull<bindings::iommu_domain>,
    /// Releases the MSI doorbell owner given with [`NestedDomain::with_sw_msi_owner`], after the
    /// domain is freed.
    sw_msi_release: Option<unsafe fn(*mut c_void)>,
}

// SAFETY: A domain can be freed from any thread.
unsafe impl Send for NestedDomain {}
// SAFETY: See `Domain`.
unsafe impl Sync for NestedDomain {}

impl NestedDomain {
    /// Allocates a nested domain for `dev` over `parent` from the driver's `data`
    /// (`iommu_ops.domain_alloc_nested`), as iommufd does for `IOMMU_HWPT_ALLOC` on a nest parent.
    ///
    /// `flags` are `IOMMU_HWPT_ALLOC_*` flags for the driver. `EOPNOTSUPP` if the driver cannot
    /// nest; a driver that returns another domain type has a bug (a warning, `EOPNOTSUPP`).
    pub fn alloc(dev: &Device, parent: &Domain, flags: u32, data: &UserData) -> Result<Self> {
        let ops = device_ops(dev)?;
        // SAFETY: `ops` points to the driver's valid ops table.
        let f = unsafe { (*ops).domain_alloc_nested }.ok_or(EOPNOTSUPP)?;
        // SAFETY: The arguments are valid for the duration of the call; the parent outlives the
        // nested domain (the caller holds it).
        let ptr = from_err_ptr(unsafe { f(dev.as_raw(), parent.as_raw(), flags, data.as_raw()) })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: The driver returned a new valid domain; as iommufd does, record the ops it
        // came from.
        unsafe { (*ptr.as_ptr()).owner = ops };
        // SAFETY: The domain is new and ours, with its owner set.
        unsafe { Self::from_raw(ptr) }
    }

    /// Takes ownership of a C nested domain a driver made outside `domain_alloc_nested` (the
    /// nested domain of a vIOMMU); a domain of another type is a driver bug (a warning,
    /// `EOPNOTSUPP`, and the domain is freed).
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid domain that the caller owns and hands over, with its `owner` set.
    pub unsafe fn from_raw(ptr: NonNull<bindings::iommu_domain>) -> Result<Self> {
        // INVARIANT: Ownership is handed over by the caller; the type is checked next (on error
        // the domain is freed).
        let this = Self {
            ptr,
            sw_msi_release: None,
        };
        if crate::warn_on!(this.domain_type() != TYPE_NESTED) {
            return Err(EOPNOTSUPP);
        }
        Ok(this)
    }

    /// Makes the domain handle page faults; see [`PagingDomain::with_iopf`].
    pub fn with_iopf(self) -> Self {
        // SAFETY: We own the domain (type invariant) and nothing is attached to it yet.
        unsafe { set_iopf_handler(self.ptr) };
        self
    }

    /// Makes `owner` map MSI doorbells for devices attached to this domain; see
    /// [`PagingDomain::with_sw_msi_owner`]. (A nested domain's doorbells are mapped in its
    /// parent, which is what the owner should do.)
    pub fn with_sw_msi_owner<T: SwMsiOwner>(mut self, owner: Arc<T>) -> Result<Self> {
        // SAFETY: The domain is valid and owned by `self` (type invariant), not attached to
        // anything yet, and freed before `sw_msi_release` runs (see `Drop`).
        self.sw_msi_release = Some(unsafe { set_sw_msi_owner(self.ptr, owner) }?);
        Ok(self)
    }

    /// Hands the driver a batch of cache invalidation requests of the user
    /// (`iommu_domain_ops.cache_invalidate_user`); afterwards `array` tells how many entries the
    /// driver handled (also on error).
    ///
    /// `EOPNOTSUPP` if the driver has no such operation.
    pub fn cache_invalidate_user(&self, array: &mut UserDataArray) -> Result {
        let ops = self.raw().ops;
        // SAFETY: `ops` of a valid domain is NULL or points to a valid ops table.
        let Some(f) = (unsafe { ops.as_ref() }).and_then(|o| o.cache_invalidate_user) else {
            array.set_done(0);
            return Err(EOPNOTSUPP);
        };
        // SAFETY: The domain is valid (type invariant) and `array` is valid and exclusively ours
        // for the call; `f` belongs to the domain's driver.
        to_result(unsafe { f(self.as_raw(), array.as_raw_mut()) })
    }
}

impl core::ops::Deref for NestedDomain {
    type Target = Domain;

    fn deref(&self) -> &Domain {
        // SAFETY: By the type invariant the domain is valid while `self` lives.
        unsafe { Domain::from_raw(self.ptr.as_ptr()) }
    }
}

impl Drop for NestedDomain {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the domain; nothing uses it after this
        // (attachments hold the owner, see `DomainOwner`), and `sw_msi_release` is the release
        // of the owner given with `with_sw_msi_owner`.
        unsafe { free_owned(self.ptr, self.sw_msi_release) };
    }
}

// SAFETY: The `Arc` keeps the domain alive and always returns it.
unsafe impl DomainOwner for Arc<NestedDomain> {
    fn domain(&self) -> &Domain {
        self
    }
}

/// An owned domain of either kind a user attaches devices to.
#[derive(Clone)]
pub enum AttachDomain {
    /// A paging domain.
    Paging(Arc<PagingDomain>),
    /// A nested domain.
    Nested(Arc<NestedDomain>),
}

// SAFETY: Each variant keeps its domain alive and always returns it.
unsafe impl DomainOwner for AttachDomain {
    fn domain(&self) -> &Domain {
        match self {
            Self::Paging(d) => d,
            Self::Nested(d) => d,
        }
    }
}

/// Returns whether the driver that translates `dev` can allocate nested domains
/// (`iommu_ops.domain_alloc_nested`).
pub fn device_can_nest(dev: &Device) -> bool {
    // SAFETY: `device_ops` returns the driver's valid ops table.
    device_ops(dev).is_ok_and(|ops| unsafe { (*ops).domain_alloc_nested }.is_some())
}

/// Returns whether `domain` was allocated by the driver that translates `dev`.
pub fn device_owns(dev: &Device, domain: &Domain) -> bool {
    device_ops(dev).is_ok_and(|ops| core::ptr::eq(domain.owner(), ops))
}

/// The `struct iommu_ops` of the driver that translates `dev`; `ENODEV` if none does.
/// The IOMMU instance that translates a device (its `struct iommu_device`), as an identity to
/// compare: a vIOMMU serves the devices of one IOMMU instance only.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IommuInstance(usize);

impl IommuInstance {
    pub(crate) fn from_raw(iommu: *const bindings::iommu_device) -> Self {
        Self(iommu as usize)
    }
}

/// The IOMMU instance of `dev` (`__iommu_get_iommu_dev()`); `None` if no IOMMU driver probed it.
pub fn device_iommu(dev: &Device) -> Option<IommuInstance> {
    // SAFETY: `dev` is valid; `dev->iommu` is read under the device reference held by the
    // caller, and is set for as long as the device is probed by an IOMMU driver.
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return None;
    }
    // SAFETY: A probed device has a valid `dev_iommu`.
    let idev = unsafe { (*iommu).iommu_dev };
    (!idev.is_null()).then(|| IommuInstance::from_raw(idev))
}

fn device_ops(dev: &Device) -> Result<*const bindings::iommu_ops> {
    // SAFETY: `dev` is valid; `dev->iommu` is read under the device reference held by the
    // caller, and is set for as long as the device is probed by an IOMMU driver.
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: A probed device has a valid `iommu_dev` whose ops are valid.
    Ok(unsafe { (*(*iommu).iommu_dev).ops })
}

/// An IOMMU group (`struct iommu_group`), reference counted.
///
/// # Invariants
///
/// The wrapped group is valid; a reference to it holds a group reference.
#[repr(transparent)]
pub struct Group(Opaque<bindings::iommu_group>);

// SAFETY: Group references may be taken and dropped from any thread.
unsafe impl Send for Group {}
// SAFETY: The group's C functions lock internally.
unsafe impl Sync for Group {}

// SAFETY: `iommu_group_ref_get` and `iommu_group_put` manage the group's kobject count.
unsafe impl AlwaysRefCounted for Group {
    fn inc_ref(&self) {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_ref_get(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up one reference.
        unsafe { bindings::iommu_group_put(obj.as_ptr().cast()) };
    }
}

impl Group {
    /// Returns the group of `dev`, if the device has one (`iommu_group_get`).
    pub fn get(dev: &Device) -> Option<ARef<Self>> {
        // SAFETY: `dev` is valid; the call returns a new reference or NULL.
        let ptr = unsafe { bindings::iommu_group_get(dev.as_raw()) };
        let ptr = NonNull::new(ptr.cast::<Self>())?;
        // SAFETY: A non-NULL result is a group reference we now own, and
        // `Group` is a transparent wrapper of the C group.
        Some(unsafe { ARef::from_raw(ptr) })
    }

    /// Returns the raw group pointer.
    pub fn as_raw(&self) -> *mut bindings::iommu_group {
        self.0.get()
    }

    /// Returns whether MSIs of the group's devices are isolated
    /// (`iommu_group_has_isolated_msi`).
    pub fn has_isolated_msi(&self) -> bool {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_has_isolated_msi(self.0.get()) }
    }

    /// Returns the group's id (`iommu_group_id`).
    pub fn id(&self) -> i32 {
        // SAFETY: The group is valid by the type invariant.
        unsafe { bindings::iommu_group_id(self.0.get()) }
    }
}

/// One attach handle, at a stable address.
type Handle = Pin<KBox<AttachHandle>>;

/// A group attached to a domain with an attach handle; detached on drop.
///
/// Uses `iommu_attach_group_handle`, `iommu_replace_group_handle` and
/// `iommu_detach_group_handle` (symbol namespace `IOMMUFD_INTERNAL`).
///
/// # Invariants
///
/// `group` is attached to `domain.domain()` through `handle`.
pub struct GroupAttachment<D: DomainOwner> {
    group: ARef<Group>,
    domain: D,
    handle: Handle,
}

// SAFETY: The attachment only holds references to C objects that may be used and released from
// any thread (the group, the domain owner, the handle the core reads under its own locks).
unsafe impl<D: DomainOwner> Send for GroupAttachment<D> {}
// SAFETY: The methods taking `&self` only read the fields.
unsafe impl<D: DomainOwner> Sync for GroupAttachment<D> {}

impl<D: DomainOwner> GroupAttachment<D> {
    /// Attaches `group` to `domain`; the faults that come through the attachment go to `route`.
    pub fn attach(group: ARef<Group>, domain: D, route: Option<FaultRoute>) -> Result<Self> {
        let handle = AttachHandle::new(route)?;
        // SAFETY: The domain, group and handle are valid; the handle stays at
        // its address until the group is detached or replaced (see `Drop`).
        to_result(unsafe {
            bindings::iommu_attach_group_handle(
                domain.domain().as_raw(),
                group.as_raw(),
                handle.get(),
            )
        })?;
        // INVARIANT: The group is now attached through `handle`.
        Ok(Self {
            group,
            domain,
            handle,
        })
    }

    /// Moves the group to `domain` without going through a blocking domain; the faults that
    /// come through the new attachment go to `route`.
    ///
    /// On failure the group stays attached to the old domain, which is
    /// returned with the error.
    pub fn replace<E: DomainOwner>(
        self,
        domain: E,
        route: Option<FaultRoute>,
    ) -> core::result::Result<GroupAttachment<E>, (Error, Self)> {
        let handle = match AttachHandle::new(route) {
            Ok(h) => h,
            Err(e) => return Err((e, self)),
        };
        // SAFETY: All pointers are valid; the new handle stays at its address
        // for the new attachment's lifetime.
        let ret = unsafe {
            bindings::iommu_replace_group_handle(
                self.group.as_raw(),
                domain.domain().as_raw(),
                handle.get(),
            )
        };
        if let Err(e) = to_result(ret) {
            return Err((e, self));
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; the fields are moved
        // out exactly once. The old handle is no longer referenced by the core.
        let (group, _old_domain, old_handle) = unsafe {
            (
                core::ptr::read(&this.group),
                core::ptr::read(&this.domain),
                core::ptr::read(&this.handle),
            )
        };
        old_handle.detached();
        // INVARIANT: The group is now attached to `domain` through `handle`.
        Ok(GroupAttachment {
            group,
            domain,
            handle,
        })
    }

    /// Returns the attached group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Returns the owner of the domain the group is attached to.
    pub fn domain(&self) -> &D {
        &self.domain
    }
}

impl<D: DomainOwner> Drop for GroupAttachment<D> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the group is attached to the domain;
        // this detaches it, after which the core no longer uses the handle.
        unsafe {
            bindings::iommu_detach_group_handle(self.domain.domain().as_raw(), self.group.as_raw())
        };
        self.handle.detached();
    }
}

/// A PASID of a device attached to a domain; detached on drop.
///
/// # Invariants
///
/// `pasid` of `dev` is attached to `domain.domain()` through `handle`.
pub struct PasidAttachment<D: DomainOwner> {
    dev: ARef<Device>,
    pasid: u32,
    domain: D,
    handle: Handle,
}

// SAFETY: As for `GroupAttachment`.
unsafe impl<D: DomainOwner> Send for PasidAttachment<D> {}
// SAFETY: As for `GroupAttachment`.
unsafe impl<D: DomainOwner> Sync for PasidAttachment<D> {}

impl<D: DomainOwner> PasidAttachment<D> {
    /// Attaches `pasid` of `dev` to `domain` (`iommu_attach_device_pasid`); the faults that come
    /// through the attachment go to `route`.
    pub fn attach(
        dev: ARef<Device>,
        pasid: u32,
        domain: D,
        route: Option<FaultRoute>,
    ) -> Result<Self> {
        let handle = AttachHandle::new(route)?;
        // SAFETY: All pointers are valid; the handle stays at its address
        // until the PASID is detached.
        to_result(unsafe {
            bindings::iommu_attach_device_pasid(
                domain.domain().as_raw(),
                dev.as_raw(),
                pasid,
                handle.get(),
            )
        })?;
        // INVARIANT: The PASID is now attached through `handle`.
        Ok(Self {
            dev,
            pasid,
            domain,
            handle,
        })
    }

    /// Moves the PASID to `domain` (`iommu_replace_device_pasid`); the faults that come through
    /// the new attachment go to `route`.
    ///
    /// On failure the PASID stays attached to the old domain.
    pub fn replace<E: DomainOwner>(
        self,
        domain: E,
        route: Option<FaultRoute>,
    ) -> core::result::Result<PasidAttachment<E>, (Error, Self)> {
        let handle = match AttachHandle::new(route) {
            Ok(h) => h,
            Err(e) => return Err((e, self)),
        };
        // SAFETY: All pointers are valid; the new handle stays at its address.
        let ret = unsafe {
            bindings::iommu_replace_device_pasid(
                domain.domain().as_raw(),
                self.dev.as_raw(),
                self.pasid,
                handle.get(),
            )
        };
        if let Err(e) = to_result(ret) {
            return Err((e, self));
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; each field is moved out once.
        let (dev, _old_domain, old_handle) = unsafe {
            (
                core::ptr::read(&this.dev),
                core::ptr::read(&this.domain),
                core::ptr::read(&this.handle),
            )
        };
        old_handle.detached();
        // INVARIANT: The PASID is now attached to `domain` through `handle`.
        Ok(PasidAttachment {
            dev,
            pasid: this.pasid,
            domain,
            handle,
        })
    }

    /// Returns the PASID.
    pub fn pasid(&self) -> u32 {
        self.pasid
    }

    /// Returns the owner of the domain the PASID is attached to.
    pub fn domain(&self) -> &D {
        &self.domain
    }
}

impl<D: DomainOwner> Drop for PasidAttachment<D> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the PASID is attached to the domain.
        unsafe {
            bindings::iommu_detach_device_pasid(
                self.domain.domain().as_raw(),
                self.dev.as_raw(),
                self.pasid,
            )
        };
        self.handle.detached();
    }
}

/// DMA ownership of a device claimed for a user-space driver; released on drop.
///
/// # Invariants
///
/// `iommu_device_claim_dma_owner(dev, owner)` succeeded and was not released.
pub struct DmaOwnerClaim {
    dev: ARef<Device>,
}

impl DmaOwnerClaim {
    /// Claims DMA ownership of `dev` for the owner identified by `owner`
    /// (`iommu_device_claim_dma_owner`).
    ///
    /// Devices of one group may share ownership only with the same `owner`
    /// cookie, which is compared and never dereferenced.
    pub fn claim(dev: ARef<Device>, owner: usize) -> Result<Self> {
        if owner == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `dev` is valid; the C code only compares the cookie.
        to_result(unsafe {
            bindings::iommu_device_claim_dma_owner(dev.as_raw(), owner as *mut c_void)
        })?;
        // INVARIANT: The claim succeeded.
        Ok(Self { dev })
    }
}

impl Drop for DmaOwnerClaim {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device's ownership is claimed.
        unsafe { bindings::iommu_device_release_dma_owner(self.dev.as_raw()) };
    }
}

/// Reserved region type: directly mapped memory the device uses (`IOMMU_RESV_DIRECT`).
pub const RESV_DIRECT: u32 = bindings::iommu_resv_type_IOMMU_RESV_DIRECT;
/// Reserved region type: directly mapped, but user space may map over it
/// (`IOMMU_RESV_DIRECT_RELAXABLE`).
pub const RESV_DIRECT_RELAXABLE: u32 = bindings::iommu_resv_type_IOMMU_RESV_DIRECT_RELAXABLE;
/// Reserved region type: hardware MSI doorbell range, not translated (`IOMMU_RESV_MSI`).
pub const RESV_MSI: u32 = bindings::iommu_resv_type_IOMMU_RESV_MSI;
/// Reserved region type: the IOVA window where software maps MSI doorbells
/// (`IOMMU_RESV_SW_MSI`).
pub const RESV_SW_MSI: u32 = bindings::iommu_resv_type_IOMMU_RESV_SW_MSI;

/// One reserved region of a device (`struct iommu_resv_region`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ResvRegion {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub last: u64,
    /// Region type (`IOMMU_RESV_*`).
    pub kind: u32,
    /// Mapping permissions of the region (`PROT_*`).
    pub prot: i32,
}

/// The reserved regions of a device (`iommu_get_resv_regions`), put on drop.
///
/// # Invariants
///
/// `head` is the head of the list filled by `iommu_get_resv_regions(dev)`
/// and not yet put.
pub struct ResvRegions {
    dev: ARef<Device>,
    head: Pin<KBox<Opaque<bindings::list_head>>>,
}

// SAFETY: The list is only read through `&self` and freed in `Drop`.
unsafe impl Send for ResvRegions {}
// SAFETY: See above.
unsafe impl Sync for ResvRegions {}

impl ResvRegions {
    /// Collects the reserved regions of `dev`.
    pub fn get(dev: &Device) -> Result<Self> {
        let head: Pin<KBox<Opaque<bindings::list_head>>> = KBox::pin(Opaque::uninit(), GFP_KERNEL)?;
        let h = head.get();
        // SAFETY: `h` is valid for writes; an empty list points to itself.
        unsafe {
            (*h).next = h;
            (*h).prev = h;
        }
        // SAFETY: `dev` and the empty list are valid.
        unsafe { bindings::iommu_get_resv_regions(dev.as_raw(), h) };
        // INVARIANT: The list was filled for `dev`.
        Ok(Self {
            dev: dev.into(),
            head,
        })
    }

    /// Iterates over the regions.
    pub fn iter(&self) -> impl Iterator<Item = ResvRegion> + '_ {
        let head = self.head.get();
        // SAFETY: The list head is valid and initialised.
        let mut pos = unsafe { (*head).next };
        core::iter::from_fn(move || {
            if pos == head {
                return None;
            }
            let off = core::mem::offset_of!(bindings::iommu_resv_region, list);
            // SAFETY: Every entry of the list is the `list` field of a valid
            // `struct iommu_resv_region`, alive until the list is put.
            let r = unsafe {
                &*pos
                    .cast::<u8>()
                    .sub(off)
                    .cast::<bindings::iommu_resv_region>()
            };
            pos = r.list.next;
            // CAST: `size_t` fits in u64 on every supported architecture.
            let len = r.length as u64;
            Some(ResvRegion {
                start: r.start,
                last: r.start.wrapping_add(len).wrapping_sub(1),
                kind: r.type_,
                prot: r.prot,
            })
        })
    }
}

impl Drop for ResvRegions {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the list was filled by
        // `iommu_get_resv_regions` for this device and not yet put.
        unsafe { bindings::iommu_put_resv_regions(self.dev.as_raw(), self.head.get()) };
    }
}

/// A chunk of a user dirty bitmap handed out by [`IovaBitmap::for_each`].
#[repr(transparent)]
pub struct IovaBitmapChunk(Opaque<bindings::iova_bitmap>);

#[cfg(CONFIG_IOMMUFD_DRIVER)]
impl IovaBitmapChunk {
    /// Marks `[iova, iova + length)` dirty (`iova_bitmap_set`).
    pub fn set(&self, iova: usize, length: usize) {
        // SAFETY: The chunk is valid for the duration of the `for_each` callback.
        unsafe { bindings::iova_bitmap_set(self.0.get(), iova, length) };
    }
}

/// A dirty bitmap in user memory for an IOVA range (`struct iova_bitmap`).
///
/// # Invariants
///
/// `ptr` was returned by `iova_bitmap_alloc` and is freed on drop.
#[cfg(CONFIG_IOMMUFD_DRIVER)]
pub struct IovaBitmap {
    ptr: NonNull<bindings::iova_bitmap>,
}

#[cfg(CONFIG_IOMMUFD_DRIVER)]
impl IovaBitmap {
    /// Describes the bitmap at `data` for `[iova, iova + length)` with one
    /// bit per `page_size` bytes (`iova_bitmap_alloc`).
    pub fn alloc(
        iova: usize,
        length: usize,
        page_size: usize,
        data: crate::uaccess::UserPtr,
    ) -> Result<Self> {
        // SAFETY: The C function validates the user pointer itself.
        let ptr = from_err_ptr(unsafe {
            bindings::iova_bitmap_alloc(iova, length, page_size, data.as_mut_ptr().cast())
        })?;
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        // INVARIANT: `ptr` came from `iova_bitmap_alloc`.
        Ok(Self { ptr })
    }

    /// Calls `f(chunk, iova, length)` for each part of the range whose
    /// bitmap is pinned in memory (`iova_bitmap_for_each`).
    pub fn for_each<F>(&mut self, mut f: F) -> Result
    where
        F: FnMut(&IovaBitmapChunk, usize, usize) -> Result,
    {
        /// Calls the closure behind `opaque` for one chunk.
        ///
        /// # Safety
        ///
        /// `opaque` must be the `&mut F` given to `iova_bitmap_for_each`, and
        /// `bitmap` valid for the call.
        unsafe extern "C" fn trampoline<F>(
            bitmap: *mut bindings::iova_bitmap,
            iova: usize,
            length: usize,
            opaque: *mut c_void,
        ) -> c_int
        where
            F: FnMut(&IovaBitmapChunk, usize, usize) -> Result,
        {
            // SAFETY: `opaque` is the `&mut F` passed below, alive for the call.
            let f = unsafe { &mut *opaque.cast::<F>() };
            // SAFETY: `bitmap` is valid during the callback.
            let chunk = unsafe { &*bitmap.cast::<IovaBitmapChunk>() };
            match f(chunk, iova, length) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }
        }
        let opaque: *mut F = &mut f;
        // SAFETY: `self.ptr` is valid; the trampoline matches the expected
        // signature and `opaque` outlives the call.
        to_result(unsafe {
            bindings::iova_bitmap_for_each(self.ptr.as_ptr(), opaque.cast(), Some(trampoline::<F>))
        })
    }
}

#[cfg(CONFIG_IOMMUFD_DRIVER)]
impl Drop for IovaBitmap {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ptr` came from `iova_bitmap_alloc`.
        unsafe { bindings::iova_bitmap_free(self.ptr.as_ptr()) };
    }
}
