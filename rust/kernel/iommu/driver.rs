// SPDX-License-Identifier: GPL-2.0

//! Writing IOMMU drivers in Rust.
//!
//! A driver implements [`Driver`] (the device-level `struct iommu_ops`) and
//! [`DomainOps`] for its paging domain type (`struct iommu_domain_ops` and
//! `struct iommu_dirty_ops`). The C `struct iommu_domain` is embedded at the
//! start of [`DriverDomain`], which the abstraction allocates and frees, so
//! the C core and the driver see the same object. Every device the driver
//! translates is a [`BusDevice`], which carries the driver's per-device data.
//!
//! An [`IommuDevice`] is one registered IOMMU instance (`struct
//! iommu_device`). It carries its own `struct iommu_ops` and a static
//! blocking domain, used as the default and the blocked domain of every
//! device (the 7.3 core needs one of them). Today an instance can be
//! registered on a private bus of its own, the way the iommufd selftest
//! registers its mock IOMMU ([`IommuDevice::register_private_bus`], which
//! needs `CONFIG_IOMMUFD_TEST` because the core builds
//! `iommu_device_register_bus()` and `iommu_mock_device_add()` only then).
//!
//! Lifetimes: devices and domains hold an [`Arc`] of their instance, so an
//! instance stays registered until its last device and domain are gone.
//! While a device is probed the IOMMU core also holds a reference to the
//! driver's module (`iommu_ops.owner`).
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)

// Without `CONFIG_IOMMUFD_TEST` nothing can register an instance, so the
// registration helpers are unused.
#![cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code, unused_imports))]

use super::domain::{
    Capability,
    Domain,
    Geometry,
    IommuInstance,
    NestedDomain,
    UserData,
    UserDataArray, //
};
use crate::{
    alloc::Flags,
    bindings,
    device::Device,
    dma::DmaAddress,
    error::{
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    io::PhysAddr,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, //
    },
    types::Opaque, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// Data returned by `IOMMU_GET_HW_INFO` for a device (`iommu_ops.hw_info`).
pub struct HwInfo {
    /// The `IOMMU_HW_INFO_TYPE_*` of `data`.
    pub info_type: u32,
    data: KVec<u8>,
}

impl HwInfo {
    /// Copies `data` (the driver's uAPI structure, as bytes) into a new buffer.
    ///
    /// `data` must not be empty.
    pub fn new(info_type: u32, data: &[u8]) -> Result<Self> {
        if data.is_empty() {
            return Err(EINVAL);
        }
        let mut v = KVec::with_capacity(data.len(), GFP_KERNEL)?;
        v.extend_from_slice(data, GFP_KERNEL)?;
        Ok(Self { info_type, data: v })
    }
}

/// The properties of a new paging domain, set by [`Driver::domain_alloc_paging`].
#[derive(Copy, Clone, Debug)]
pub struct DomainConfig {
    /// The page sizes the domain can map.
    pub pgsize_bitmap: usize,
    /// The IOVA range the domain translates.
    pub geometry: Geometry,
    /// The domain gets dirty tracking operations (`iommu_dirty_ops`).
    pub dirty_tracking: bool,
}

/// Where a driver records dirty IOVA ranges (`struct iommu_dirty_bitmap`).
#[repr(transparent)]
pub struct DirtyBitmap(Opaque<bindings::iommu_dirty_bitmap>);

impl DirtyBitmap {
    /// Records `[iova, iova + length)` as dirty (`iommu_dirty_bitmap_record`).
    pub fn record(&self, iova: usize, length: usize) {
        // SAFETY: The bitmap is valid for the duration of the driver callback
        // it was given to.
        unsafe { bindings::iommu_dirty_bitmap_record(self.0.get(), iova, length) };
    }
}

/// The operations of an IOMMU driver (`struct iommu_ops`).
#[vtable]
pub trait Driver: Sized + Send + Sync + 'static {
    /// Per-device data, stored in each [`BusDevice`].
    type DeviceData: Send + Sync;

    /// The driver's paging domain.
    type Domain: DomainOps<Driver = Self>;

    /// The driver's nested domain: a stage-1 table given by user space over one of its paging
    /// domains.
    type NestedDomain: NestedDomainOps<Driver = Self>;

    /// Largest number of PASIDs of the IOMMU (`iommu_device.max_pasids`).
    const MAX_PASIDS: u32 = 0;

    /// The driver manages PASID tables given by user space (`user_pasid_table`).
    const USER_PASID_TABLE: bool = false;

    /// The device type of the driver's [`BusDevice`]s: a `static` of the driver's own, made with
    /// [`iommu_device_type!`](crate::iommu_device_type).
    ///
    /// The driver's callbacks recognise its devices by the address of this table
    /// (`dev->type`), as C code recognises a kind of device. Rust guarantees that a `static` has
    /// one address and that two statics do not share one; it guarantees neither for functions
    /// (such as a release function) nor for constants.
    const DEVICE_TYPE: &'static DeviceType<Self>;

    /// Called when the IOMMU core probes `dev`; an error makes the device
    /// untranslated.
    fn probe_device(_dev: &BusDevice<Self>) -> Result {
        Ok(())
    }

    /// Returns whether the IOMMU has `cap` for `dev` (`capable`).
    fn capable(_dev: &BusDevice<Self>, _cap: Capability) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Returns hardware information for `dev` (`hw_info`).
    ///
    /// `requested` is the `IOMMU_HW_INFO_TYPE_*` user space asked for
    /// (`IOMMU_HW_INFO_TYPE_DEFAULT`: the driver's own type).
    fn hw_info(_dev: &BusDevice<Self>, _requested: u32) -> Result<HwInfo> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Allocates a paging domain for `dev` (`domain_alloc_paging_flags`).
    ///
    /// `flags` are `IOMMU_HWPT_ALLOC_*`; `user_data` is set when iommufd
    /// passes driver-specific data.
    fn domain_alloc_paging(
        dev: &BusDevice<Self>,
        flags: u32,
        user_data: Option<&UserData>,
    ) -> Result<(DomainConfig, impl PinInit<Self::Domain, Error>)>;

    /// Allocates a nested domain for `dev` over `parent`, one of the driver's paging domains,
    /// from user space's `data` (`domain_alloc_nested`).
    ///
    /// `flags` are `IOMMU_HWPT_ALLOC_*` (iommufd keeps `IOMMU_HWPT_FAULT_ID_VALID` to itself).
    /// A parent that is not one of the driver's paging domains never gets here (`EINVAL`).
    fn domain_alloc_nested(
        dev: &BusDevice<Self>,
        parent: &DriverDomain<Self>,
        flags: u32,
        data: &UserData,
    ) -> Result<impl PinInit<Self::NestedDomain, Error>>;

    /// Answers the page request group `grpid` of `pasid` of `dev` with `code`
    /// (`page_response`); needed to add devices to an [`IopfQueue`](super::fault::IopfQueue).
    fn page_response(
        _dev: &BusDevice<Self>,
        _pasid: u32,
        _grpid: u32,
        _code: super::fault::ResponseCode,
    ) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Attaches `dev` to the blocking domain (`attach_dev` of the blocked domain).
    fn blocked_attach_dev(_dev: &BusDevice<Self>) -> Result {
        Ok(())
    }

    /// Attaches `pasid` of `dev` to the blocking domain (`set_dev_pasid`).
    fn blocked_set_dev_pasid(_dev: &BusDevice<Self>, _pasid: u32) -> Result {
        Ok(())
    }
}

/// The operations of a driver's paging domain (`struct iommu_domain_ops`
/// and `struct iommu_dirty_ops`).
///
/// The domain is freed by dropping it.
#[vtable]
pub trait DomainOps: Send + Sync + Sized {
    /// The driver of the domain.
    type Driver: Driver<Domain = Self>;

    /// Attaches `dev` to this domain, whose C view is `domain` (`attach_dev`).
    fn attach_dev(&self, domain: &Domain, dev: &BusDevice<Self::Driver>) -> Result;

    /// Attaches `pasid` of `dev` to this domain, whose C view is `domain` (`set_dev_pasid`).
    fn set_dev_pasid(
        &self,
        _domain: &Domain,
        _dev: &BusDevice<Self::Driver>,
        _pasid: u32,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Maps `pgcount` pages of `pgsize` bytes at `iova` to `paddr` (`map_pages`).
    ///
    /// `*mapped` must be set to the number of bytes mapped, also on failure.
    #[expect(clippy::too_many_arguments)]
    fn map_pages(
        &self,
        iova: usize,
        paddr: PhysAddr,
        pgsize: usize,
        pgcount: usize,
        prot: u32,
        gfp: Flags,
        mapped: &mut usize,
    ) -> Result;

    /// Unmaps up to `pgcount` pages of `pgsize` bytes at `iova`; returns
    /// the number of bytes unmapped (`unmap_pages`).
    fn unmap_pages(&self, iova: usize, pgsize: usize, pgcount: usize) -> usize;

    /// Translates `iova`; 0 when nothing is mapped (`iova_to_phys`).
    fn iova_to_phys(&self, iova: DmaAddress) -> PhysAddr;

    /// Starts or stops dirty tracking (`set_dirty_tracking`).
    ///
    /// Only called on domains allocated with [`DomainConfig::dirty_tracking`].
    fn set_dirty_tracking(&self, _enable: bool) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Records the dirty pages of `[iova, iova + size)` in `dirty`, and
    /// clears them unless `flags` has `IOMMU_DIRTY_NO_CLEAR` (`read_and_clear_dirty`).
    fn read_and_clear_dirty(
        &self,
        _iova: usize,
        _size: usize,
        _flags: u64,
        _dirty: &DirtyBitmap,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The operations of a driver's nested domain (the `struct iommu_domain_ops` of an
/// `IOMMU_DOMAIN_NESTED` domain).
///
/// The domain is freed by dropping it.
#[vtable]
pub trait NestedDomainOps: Send + Sync + Sized {
    /// The driver of the domain.
    type Driver: Driver<NestedDomain = Self>;

    /// Attaches `dev` to this domain, whose C view is `domain` (`attach_dev`).
    fn attach_dev(&self, domain: &Domain, dev: &BusDevice<Self::Driver>) -> Result;

    /// Attaches `pasid` of `dev` to this domain, whose C view is `domain` (`set_dev_pasid`).
    fn set_dev_pasid(
        &self,
        _domain: &Domain,
        _dev: &BusDevice<Self::Driver>,
        _pasid: u32,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Carries out user space's cache invalidation requests in `array`
    /// (`cache_invalidate_user`), recording with [`UserDataArray::set_done`] how many entries
    /// were handled, also on error.
    fn cache_invalidate_user(&self, _array: &mut UserDataArray) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Calls `f` with the domain and the bus device of a domain callback for `dev`, and returns its
/// result as the callback's errno; a device that is not one of `T`'s is `EINVAL`.
///
/// # Safety
///
/// `domain` must be a valid domain and `dev` a valid device for the duration of the call.
unsafe fn domain_dev_call<T: Driver>(
    domain: *mut bindings::iommu_domain,
    dev: *mut bindings::device,
    f: impl FnOnce(&Domain, &BusDevice<T>) -> Result,
) -> c_int {
    // SAFETY: `dev` is valid for the call (the function's safety requirements).
    let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `domain` is valid for the call (the function's safety requirements).
    let dom = unsafe { Domain::from_raw(domain) };
    match f(dom, bdev) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Converts the core's `gfp_t` to allocation flags.
fn gfp_to_flags(gfp: bindings::gfp_t) -> Flags {
    let reclaim: bindings::gfp_t = 1 << bindings::___GFP_DIRECT_RECLAIM_BIT;
    let account: bindings::gfp_t = 1 << bindings::___GFP_ACCOUNT_BIT;
    if gfp & reclaim == 0 {
        GFP_ATOMIC
    } else if gfp & account != 0 {
        GFP_KERNEL_ACCOUNT
    } else {
        GFP_KERNEL
    }
}

/// A paging domain of driver `T`: the C domain followed by the driver's domain.
///
/// # Invariants
///
/// `raw` is the `struct iommu_domain` the C core uses; it was set up by
/// [`IommuDevice`]'s allocation callback with this type's ops.
#[repr(C)]
#[pin_data]
pub struct DriverDomain<T: Driver> {
    #[pin]
    raw: Opaque<bindings::iommu_domain>,
    iommu: Arc<IommuDevice<T>>,
    #[pin]
    inner: T::Domain,
}

impl<T: Driver> DriverDomain<T> {
    /// Returns the driver's domain.
    pub fn inner(&self) -> &T::Domain {
        &self.inner
    }

    /// Returns the C view of the domain.
    pub fn domain(&self) -> &Domain {
        // SAFETY: `raw` is a valid domain for as long as `self` lives.
        unsafe { Domain::from_raw(self.raw.get()) }
    }

    /// Returns the IOMMU instance that allocated the domain.
    pub fn iommu(&self) -> &Arc<IommuDevice<T>> {
        &self.iommu
    }

    /// # Safety
    ///
    /// `domain` must be the `raw` field of a live `DriverDomain<T>`.
    unsafe fn from_raw<'a>(domain: *mut bindings::iommu_domain) -> &'a Self {
        // SAFETY: `raw` is the first field of this `repr(C)` struct.
        unsafe { &*domain.cast::<Self>() }
    }

    const OPS: bindings::iommu_domain_ops = bindings::iommu_domain_ops {
        attach_dev: Some(Self::attach_dev_callback),
        set_dev_pasid: if <T::Domain as DomainOps>::HAS_SET_DEV_PASID {
            Some(Self::set_dev_pasid_callback)
        } else {
            None
        },
        map_pages: Some(Self::map_pages_callback),
        unmap_pages: Some(Self::unmap_pages_callback),
        iova_to_phys: Some(Self::iova_to_phys_callback),
        free: Some(Self::free_callback),
        ..pin_init::zeroed()
    };

    const DIRTY_OPS: bindings::iommu_dirty_ops = bindings::iommu_dirty_ops {
        set_dirty_tracking: Some(Self::set_dirty_tracking_callback),
        read_and_clear_dirty: Some(Self::read_and_clear_dirty_callback),
    };

    const fn ops() -> &'static bindings::iommu_domain_ops {
        &Self::OPS
    }

    const fn dirty_ops() -> &'static bindings::iommu_dirty_ops {
        &Self::DIRTY_OPS
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type and `dev` a device probed by the core.
    unsafe extern "C" fn attach_dev_callback(
        domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        // SAFETY: The core passes a live domain and a valid device for the call.
        unsafe { domain_dev_call::<T>(domain, dev, |dom, bdev| this.inner.attach_dev(dom, bdev)) }
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type and `dev` a device probed by the core.
    unsafe extern "C" fn set_dev_pasid_callback(
        domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        pasid: bindings::ioasid_t,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        // SAFETY: The core passes a live domain and a valid device for the call.
        unsafe {
            domain_dev_call::<T>(domain, dev, |dom, bdev| {
                this.inner.set_dev_pasid(dom, bdev, pasid)
            })
        }
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type and `mapped` is valid for writes.
    unsafe extern "C" fn map_pages_callback(
        domain: *mut bindings::iommu_domain,
        iova: usize,
        paddr: bindings::phys_addr_t,
        pgsize: usize,
        pgcount: usize,
        prot: c_int,
        gfp: bindings::gfp_t,
        mapped: *mut usize,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        let mut done = 0;
        // CAST: The `IOMMU_*` permission bits are non-negative.
        let prot = prot as u32;
        let ret = this.inner.map_pages(
            iova,
            paddr,
            pgsize,
            pgcount,
            prot,
            gfp_to_flags(gfp),
            &mut done,
        );
        // SAFETY: `mapped` is valid for writes.
        unsafe { *mapped = done };
        match ret {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type.
    unsafe extern "C" fn unmap_pages_callback(
        domain: *mut bindings::iommu_domain,
        iova: usize,
        pgsize: usize,
        pgcount: usize,
        _gather: *mut bindings::iommu_iotlb_gather,
    ) -> usize {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        this.inner.unmap_pages(iova, pgsize, pgcount)
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type.
    unsafe extern "C" fn iova_to_phys_callback(
        domain: *mut bindings::iommu_domain,
        iova: bindings::dma_addr_t,
    ) -> bindings::phys_addr_t {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        this.inner.iova_to_phys(iova)
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type that nothing uses any more.
    unsafe extern "C" fn free_callback(domain: *mut bindings::iommu_domain) {
        // SAFETY: The domain was allocated as a `KBox<Self>` by
        // `domain_alloc_callback` and is freed exactly once, here.
        drop(unsafe { KBox::from_raw(domain.cast::<Self>()) });
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type.
    unsafe extern "C" fn set_dirty_tracking_callback(
        domain: *mut bindings::iommu_domain,
        enabled: bool,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        if !<T::Domain as DomainOps>::HAS_SET_DIRTY_TRACKING {
            return EOPNOTSUPP.to_errno();
        }
        match this.inner.set_dirty_tracking(enabled) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `domain` is a domain of this type and `dirty` is valid for the call.
    unsafe extern "C" fn read_and_clear_dirty_callback(
        domain: *mut bindings::iommu_domain,
        iova: usize,
        size: usize,
        flags: usize,
        dirty: *mut bindings::iommu_dirty_bitmap,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        if !<T::Domain as DomainOps>::HAS_READ_AND_CLEAR_DIRTY {
            return EOPNOTSUPP.to_errno();
        }
        // SAFETY: `dirty` is valid for the call; `DirtyBitmap` is transparent.
        let dirty = unsafe { &*dirty.cast::<DirtyBitmap>() };
        // CAST: `unsigned long` flags fit in u64.
        match this
            .inner
            .read_and_clear_dirty(iova, size, flags as u64, dirty)
        {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// A nested domain of driver `T`: the C domain followed by the driver's nested domain.
///
/// # Invariants
///
/// `raw` is the `struct iommu_domain` the C core uses; it was set up by [`IommuDevice`]'s
/// nested allocation callback with this type's ops.
#[repr(C)]
#[pin_data]
pub struct DriverNestedDomain<T: Driver> {
    #[pin]
    raw: Opaque<bindings::iommu_domain>,
    iommu: Arc<IommuDevice<T>>,
    #[pin]
    inner: T::NestedDomain,
}

impl<T: Driver> DriverNestedDomain<T> {
    /// Returns the driver's nested domain.
    pub fn inner(&self) -> &T::NestedDomain {
        &self.inner
    }

    /// Returns the IOMMU instance that allocated the domain.
    pub fn iommu(&self) -> &Arc<IommuDevice<T>> {
        &self.iommu
    }

    /// # Safety
    ///
    /// `domain` must be the `raw` field of a live `DriverNestedDomain<T>`.
    unsafe fn from_raw<'a>(domain: *mut bindings::iommu_domain) -> &'a Self {
        // SAFETY: `raw` is the first field of this `repr(C)` struct.
        unsafe { &*domain.cast::<Self>() }
    }

    const OPS: bindings::iommu_domain_ops = bindings::iommu_domain_ops {
        attach_dev: Some(Self::attach_dev_callback),
        set_dev_pasid: if <T::NestedDomain as NestedDomainOps>::HAS_SET_DEV_PASID {
            Some(Self::set_dev_pasid_callback)
        } else {
            None
        },
        cache_invalidate_user: if <T::NestedDomain as NestedDomainOps>::HAS_CACHE_INVALIDATE_USER {
            Some(Self::cache_invalidate_user_callback)
        } else {
            None
        },
        free: Some(Self::free_callback),
        ..pin_init::zeroed()
    };

    const fn ops() -> &'static bindings::iommu_domain_ops {
        &Self::OPS
    }

    /// # Safety
    ///
    /// `domain` is a nested domain of this type and `dev` a device probed by the core.
    unsafe extern "C" fn attach_dev_callback(
        domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        // SAFETY: The core passes a live domain and a valid device for the call.
        unsafe { domain_dev_call::<T>(domain, dev, |dom, bdev| this.inner.attach_dev(dom, bdev)) }
    }

    /// # Safety
    ///
    /// `domain` is a nested domain of this type and `dev` a device probed by the core.
    unsafe extern "C" fn set_dev_pasid_callback(
        domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        pasid: bindings::ioasid_t,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        // SAFETY: The core passes a live domain and a valid device for the call.
        unsafe {
            domain_dev_call::<T>(domain, dev, |dom, bdev| {
                this.inner.set_dev_pasid(dom, bdev, pasid)
            })
        }
    }

    /// # Safety
    ///
    /// `domain` is a nested domain of this type; `array` is valid and not used by anyone else
    /// for the call.
    unsafe extern "C" fn cache_invalidate_user_callback(
        domain: *mut bindings::iommu_domain,
        array: *mut bindings::iommu_user_data_array,
    ) -> c_int {
        // SAFETY: The core passes a live domain of ours.
        let this = unsafe { Self::from_raw(domain) };
        // SAFETY: `array` is valid and exclusively ours for the call.
        let array = unsafe { UserDataArray::from_raw_mut(array) };
        match this.inner.cache_invalidate_user(array) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `domain` is a nested domain of this type that nothing uses any more.
    unsafe extern "C" fn free_callback(domain: *mut bindings::iommu_domain) {
        // SAFETY: The domain was allocated as a `KBox<Self>` by `domain_alloc_nested_callback`
        // and is freed exactly once, here.
        drop(unsafe { KBox::from_raw(domain.cast::<Self>()) });
    }
}

/// The `struct device_type` of the [`BusDevice`]s of driver `T` (no name, attributes or
/// callbacks: it only marks the devices).
#[repr(transparent)]
pub struct DeviceType<T: Driver>(bindings::device_type, PhantomData<T>);

// SAFETY: The table is all zeroes and never changes.
unsafe impl<T: Driver> Sync for DeviceType<T> {}

impl<T: Driver> DeviceType<T> {
    /// The device type of `T`; only for the `static` of
    /// [`iommu_device_type!`](crate::iommu_device_type).
    #[doc(hidden)]
    pub const fn build() -> Self {
        Self(pin_init::zeroed(), PhantomData)
    }

    fn as_raw(&'static self) -> *const bindings::device_type {
        &self.0
    }
}

/// The value of [`Driver::DEVICE_TYPE`] for the driver `$t`: a reference to a `static` of its
/// own.
#[macro_export]
macro_rules! iommu_device_type {
    ($t:ty) => {{
        static TYPE: $crate::iommu::driver::DeviceType<$t> =
            $crate::iommu::driver::DeviceType::build();
        &TYPE
    }};
}

/// A device on the private bus of an [`IommuDevice`], with the driver's data.
///
/// The IOMMU core probes it when it is added; the driver's callbacks receive
/// it. The owner of the device holds a [`BusDeviceOwner`].
///
/// # Invariants
///
/// `dev` is an initialised `struct device` whose `release` is
/// [`BusDevice::release`] for this `T` and whose `type` is `T::DEVICE_TYPE`; the
/// object lives in a `KBox` that the release function frees.
#[repr(C)]
#[pin_data]
pub struct BusDevice<T: Driver> {
    #[pin]
    dev: Opaque<bindings::device>,
    iommu: Arc<IommuDevice<T>>,
    id: u32,
    data: T::DeviceData,
}

impl<T: Driver> BusDevice<T> {
    /// Returns the generic device.
    pub fn device(&self) -> &Device {
        // SAFETY: `dev` is an initialised device while `self` lives.
        unsafe { Device::from_raw(self.dev.get()) }
    }

    /// Returns the driver's per-device data.
    pub fn data(&self) -> &T::DeviceData {
        &self.data
    }

    /// Returns the device's number on its bus (part of its name).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Returns the IOMMU instance that translates the device.
    pub fn iommu(&self) -> &Arc<IommuDevice<T>> {
        &self.iommu
    }

    /// Returns the bus device behind `dev` if it is one of driver `T`.
    ///
    /// # Safety
    ///
    /// `dev` must be a valid device for `'a`.
    unsafe fn from_raw<'a>(dev: *mut bindings::device) -> Option<&'a Self> {
        // SAFETY: `dev` is valid; `type` is set before the device is
        // published and not changed afterwards.
        let ty = unsafe { (*dev).type_ };
        // Each `T` has its own static device type, so the type identifies the
        // container.
        if !core::ptr::eq(ty, T::DEVICE_TYPE.as_raw()) {
            return None;
        }
        // SAFETY: Only devices created by `IommuDevice::add_device` for this
        // `T` have this device type, and `dev` is the first field of their
        // `repr(C)` container.
        Some(unsafe { &*dev.cast::<Self>() })
    }

    /// Returns the bus device behind `dev` if it is one of driver `T`.
    pub fn from_device(dev: &Device) -> Option<&Self> {
        // SAFETY: `dev` is valid for the lifetime of the returned reference.
        unsafe { Self::from_raw(dev.as_raw()) }
    }

    /// Frees the container once the last device reference is gone.
    ///
    /// # Safety
    ///
    /// Called by the driver core only, with a device of this type.
    unsafe extern "C" fn release(dev: *mut bindings::device) {
        // SAFETY: By the type invariant the container was allocated as a
        // `KBox<Self>` and this is the last reference.
        drop(unsafe { KBox::from_raw(dev.cast::<Self>()) });
    }
}

/// Ownership of a [`BusDevice`]: dropping it removes the device.
///
/// # Invariants
///
/// `ptr` is a device that was added with `device_add()` and not yet removed.
pub struct BusDeviceOwner<T: Driver> {
    ptr: NonNull<BusDevice<T>>,
}

// SAFETY: The device may be removed from any thread.
unsafe impl<T: Driver> Send for BusDeviceOwner<T> {}
// SAFETY: Only `&BusDevice<T>` is handed out, which is `Sync` as its fields are.
unsafe impl<T: Driver> Sync for BusDeviceOwner<T> {}

impl<T: Driver> core::ops::Deref for BusDeviceOwner<T> {
    type Target = BusDevice<T>;

    fn deref(&self) -> &BusDevice<T> {
        // SAFETY: By the type invariant the device is alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Driver> Drop for BusDeviceOwner<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device was added and not removed;
        // this removes it and drops our reference (the last one, normally).
        unsafe { bindings::device_unregister(self.ptr.as_ptr().cast()) };
    }
}

/// Registration stages of an [`IommuDevice`], undone in reverse on drop.
const STAGE_BUS: u32 = 1;
const STAGE_SYSFS: u32 = 2;
#[cfg(CONFIG_IOMMUFD_TEST)]
const STAGE_IOMMU: u32 = 3;

/// One registered IOMMU instance of driver `T` (`struct iommu_device`).
///
/// # Invariants
///
/// - `ops` and `blocked` are set up for `T` before anything is registered
///   and never change afterwards.
/// - `stage` tells how far registration went; [`Drop`] undoes exactly that.
#[pin_data(PinnedDrop)]
pub struct IommuDevice<T: Driver> {
    #[pin]
    iommu: Opaque<bindings::iommu_device>,
    #[pin]
    ops: Opaque<bindings::iommu_ops>,
    #[pin]
    blocked: Opaque<bindings::iommu_domain>,
    #[pin]
    bus: Opaque<bindings::bus_type>,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    dev_prefix: &'static CStr,
    next_id: Atomic<u32>,
    stage: Atomic<u32>,
    _p: PhantomData<T>,
}

// SAFETY: The C objects are only changed by the C core under its own locks;
// the Rust fields are atomics or immutable.
unsafe impl<T: Driver> Send for IommuDevice<T> {}
// SAFETY: See above.
unsafe impl<T: Driver> Sync for IommuDevice<T> {}

impl<T: Driver> IommuDevice<T> {
    const BLOCKED_OPS: bindings::iommu_domain_ops = bindings::iommu_domain_ops {
        attach_dev: Some(Self::blocked_attach_callback),
        set_dev_pasid: Some(Self::blocked_set_dev_pasid_callback),
        ..pin_init::zeroed()
    };

    const fn blocked_ops() -> &'static bindings::iommu_domain_ops {
        &Self::BLOCKED_OPS
    }

    fn new(dev_prefix: &'static CStr) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            iommu: Opaque::zeroed(),
            ops: Opaque::zeroed(),
            blocked: Opaque::zeroed(),
            bus: Opaque::zeroed(),
            nb: Opaque::zeroed(),
            dev_prefix,
            next_id: Atomic::new(0),
            stage: Atomic::new(0),
            _p: PhantomData,
        })
    }

    /// Fills in `ops`, the blocked domain and `max_pasids`; called before
    /// anything is registered.
    fn setup(&self, module: &'static ThisModule) {
        let ops = self.ops.get();
        let blocked = self.blocked.get();
        // SAFETY: Nothing is registered yet, so nobody else reads these
        // objects; the pointers are valid for writes.
        unsafe {
            (*ops).capable = if T::HAS_CAPABLE {
                Some(Self::capable_callback)
            } else {
                None
            };
            (*ops).hw_info = if T::HAS_HW_INFO {
                Some(Self::hw_info_callback)
            } else {
                None
            };
            (*ops).domain_alloc_paging_flags = Some(Self::domain_alloc_callback);
            (*ops).domain_alloc_nested = Some(Self::domain_alloc_nested_callback);
            (*ops).page_response = if T::HAS_PAGE_RESPONSE {
                Some(Self::page_response_callback)
            } else {
                None
            };
            (*ops).probe_device = Some(Self::probe_device_callback);
            (*ops).device_group = Some(bindings::generic_device_group);
            (*ops).owner = module.as_ptr();
            (*ops).default_domain = blocked;
            (*ops).blocked_domain = blocked;
            (*ops).set_user_pasid_table(u8::from(T::USER_PASID_TABLE));
            (*blocked).type_ = bindings::IOMMU_DOMAIN_BLOCKED;
            (*blocked).ops = Self::blocked_ops();
            (*self.iommu.get()).max_pasids = T::MAX_PASIDS;
        }
    }

    /// Registers a new IOMMU instance together with a private bus of its
    /// own, named `bus_name`; its devices are named `dev_prefix<N>`, and the
    /// instance `name` in sysfs (`/sys/class/iommu/<name>`).
    ///
    /// The IOMMU core translates every device added with
    /// [`IommuDevice::add_device`].
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub fn register_private_bus(
        module: &'static ThisModule,
        name: &'static CStr,
        bus_name: &'static CStr,
        dev_prefix: &'static CStr,
    ) -> Result<Arc<Self>> {
        let this = Arc::pin_init(Self::new(dev_prefix), GFP_KERNEL)?;
        this.setup(module);
        let bus = this.bus.get();
        // SAFETY: `bus` is valid for writes and not registered yet.
        unsafe { (*bus).name = bus_name.as_char_ptr() };
        // SAFETY: `bus` lives as long as `this`; `Drop` unregisters it.
        to_result(unsafe { bindings::bus_register(bus) })?;
        // INVARIANT: Record each stage as soon as it is done.
        this.stage.store(STAGE_BUS, Relaxed);
        // SAFETY: The iommu device is valid; the format takes one string.
        to_result(unsafe {
            bindings::iommu_device_sysfs_add(
                this.iommu.get(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        })?;
        this.stage.store(STAGE_SYSFS, Relaxed);
        // SAFETY: All objects are valid and live as long as `this`.
        to_result(unsafe {
            bindings::iommu_device_register_bus(
                this.iommu.get(),
                this.ops.get(),
                bus,
                this.nb.get(),
            )
        })?;
        this.stage.store(STAGE_IOMMU, Relaxed);
        Ok(this)
    }

    /// Adds a device with `data` to the private bus; the IOMMU core probes it.
    ///
    /// `pasid_bits` is the device's PASID width (property `pasid-num-bits`).
    #[cfg(CONFIG_IOMMUFD_TEST)]
    pub fn add_device(
        self: &Arc<Self>,
        data: T::DeviceData,
        pasid_bits: u32,
    ) -> Result<BusDeviceOwner<T>> {
        let id = self.next_id.fetch_add(1, Relaxed);
        let container = KBox::pin_init(
            try_pin_init!(BusDevice::<T> {
                dev: Opaque::zeroed(),
                iommu: self.clone(),
                id,
                data,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: The container is handed to the driver core, which frees it
        // through `BusDevice::release`; it is never moved.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(container) });
        // SAFETY: `ptr` is valid; `dev` is its first field.
        let dev = unsafe { core::ptr::addr_of_mut!((*ptr).dev) }.cast::<bindings::device>();
        // SAFETY: `dev` is zeroed memory for a new device. From here on the
        // container is freed by `put_device()`.
        unsafe {
            bindings::device_initialize(dev);
            (*dev).release = Some(BusDevice::<T>::release);
            (*dev).type_ = T::DEVICE_TYPE.as_raw();
            (*dev).bus = self.bus.get();
        }
        // INVARIANT: The device is initialised with our release function and
        // device type.
        let fail = |e: Error| {
            // SAFETY: Drops the initial reference; the release frees the container.
            unsafe { bindings::put_device(dev) };
            e
        };
        // SAFETY: `dev` is valid; the format takes a string and an unsigned int.
        to_result(unsafe {
            bindings::dev_set_name(
                dev,
                c"%s%u".as_char_ptr(),
                self.dev_prefix.as_char_ptr(),
                id,
            )
        })
        .map_err(fail)?;

        let mut props: [bindings::property_entry; 2] = [pin_init::zeroed(), pin_init::zeroed()];
        props[0].name = c"pasid-num-bits".as_char_ptr();
        props[0].length = core::mem::size_of::<u32>();
        props[0].is_inline = true;
        props[0].type_ = bindings::dev_prop_type_DEV_PROP_U32;
        props[0].__bindgen_anon_1 = bindings::property_entry__bindgen_ty_1 {
            value: bindings::property_entry__bindgen_ty_1__bindgen_ty_1 {
                u32_data: [pasid_bits, 0],
            },
        };
        // SAFETY: `dev` is valid; the properties are copied by the call.
        to_result(unsafe {
            bindings::device_create_managed_software_node(dev, props.as_ptr(), core::ptr::null())
        })
        .map_err(fail)?;

        // SAFETY: `dev` is initialised and named; the iommu is registered.
        to_result(unsafe { bindings::iommu_mock_device_add(dev, self.iommu.get()) })
            .map_err(fail)?;
        // SAFETY: `ptr` came from `KBox::into_raw`, so it is not NULL.
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        // INVARIANT: The device was added.
        Ok(BusDeviceOwner { ptr })
    }

    /// Returns whether `domain` is a paging domain allocated by this instance.
    pub fn owns(&self, domain: &Domain) -> bool {
        // Only `domain_alloc_callback` makes paging domains owned by our ops
        // (iommufd sets the same owner on the domains it gets from it).
        domain.owner() == self.ops.get().cast_const() && domain.is_paging()
    }

    /// Returns the driver's domain behind `domain` if this instance allocated it.
    pub fn driver_domain<'a>(&self, domain: &'a Domain) -> Option<&'a DriverDomain<T>> {
        if !self.owns(domain) {
            return None;
        }
        // SAFETY: Domains with our owner and ops were allocated by
        // `domain_alloc_callback` as `DriverDomain<T>`.
        Some(unsafe { DriverDomain::from_raw(domain.as_raw()) })
    }

    /// # Safety
    ///
    /// Called by the IOMMU core for a device whose fwspec names this instance.
    unsafe extern "C" fn probe_device_callback(
        dev: *mut bindings::device,
    ) -> *mut bindings::iommu_device {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return ENODEV.to_ptr();
        };
        if let Err(e) = T::probe_device(bdev) {
            return e.to_ptr();
        }
        bdev.iommu.iommu.get()
    }

    /// # Safety
    ///
    /// Called by the IOMMU core for a device it probed with these ops.
    unsafe extern "C" fn capable_callback(
        dev: *mut bindings::device,
        cap: bindings::iommu_cap,
    ) -> bool {
        // SAFETY: `dev` is valid for the call.
        match unsafe { BusDevice::<T>::from_raw(dev) } {
            Some(bdev) => T::capable(bdev, Capability::from_raw(cap)),
            None => false,
        }
    }

    /// # Safety
    ///
    /// Called by the IOMMU core; `length` and `info_type` are valid.
    unsafe extern "C" fn hw_info_callback(
        dev: *mut bindings::device,
        length: *mut u32,
        info_type: *mut bindings::iommu_hw_info_type,
    ) -> *mut c_void {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return ENODEV.to_ptr();
        };
        // SAFETY: `info_type` is valid for reads and writes.
        let requested = unsafe { (*info_type).0 };
        let info = match T::hw_info(bdev, requested) {
            Ok(info) => info,
            Err(e) => return e.to_ptr(),
        };
        let Ok(len) = u32::try_from(info.data.len()) else {
            return EOVERFLOW.to_ptr();
        };
        let (ptr, _len, _cap) = info.data.into_raw_parts();
        // SAFETY: Both pointers are valid for writes. The buffer came from
        // kmalloc (a non-empty `KVec`), and the caller frees it with kfree.
        unsafe {
            *length = len;
            *info_type = bindings::iommu_hw_info_type(info.info_type);
        }
        ptr.cast()
    }

    /// # Safety
    ///
    /// Called by the IOMMU core or iommufd for a device probed with these
    /// ops; `user_data` is NULL or valid for the call.
    unsafe extern "C" fn domain_alloc_callback(
        dev: *mut bindings::device,
        flags: u32,
        user_data: *const bindings::iommu_user_data,
    ) -> *mut bindings::iommu_domain {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return ENODEV.to_ptr();
        };
        let user_data = if user_data.is_null() {
            None
        } else {
            // SAFETY: A non-NULL `user_data` is valid for the call.
            Some(unsafe { UserData::from_raw(user_data) })
        };
        let (cfg, init) = match T::domain_alloc_paging(bdev, flags, user_data) {
            Ok(v) => v,
            Err(e) => return e.to_ptr(),
        };
        let boxed = KBox::pin_init(
            try_pin_init!(DriverDomain::<T> {
                raw: Opaque::zeroed(),
                iommu: bdev.iommu.clone(),
                inner <- init,
            }),
            GFP_KERNEL,
        );
        let boxed = match boxed {
            Ok(b) => b,
            Err(e) => return e.to_ptr(),
        };
        // SAFETY: The domain is handed to the C core and freed by
        // `free_callback`; it is never moved.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // SAFETY: `ptr` is valid; `raw` is its first field.
        let raw = unsafe { core::ptr::addr_of_mut!((*ptr).raw) }.cast::<bindings::iommu_domain>();
        // SAFETY: `raw` is a zeroed domain nobody else sees yet.
        unsafe {
            (*raw).type_ = bindings::IOMMU_DOMAIN_UNMANAGED;
            (*raw).ops = DriverDomain::<T>::ops();
            (*raw).dirty_ops = if cfg.dirty_tracking {
                DriverDomain::<T>::dirty_ops()
            } else {
                core::ptr::null()
            };
            (*raw).owner = bdev.iommu.ops.get();
            (*raw).pgsize_bitmap = cfg.pgsize_bitmap;
            (*raw).geometry.aperture_start = cfg.geometry.aperture_start;
            (*raw).geometry.aperture_end = cfg.geometry.aperture_end;
            (*raw).geometry.force_aperture = cfg.geometry.force_aperture;
        }
        // INVARIANT: `raw` is set up with this type's ops.
        raw
    }

    /// # Safety
    ///
    /// Called by the IOMMU core for a device probed with these ops; `msg` is valid.
    unsafe extern "C" fn page_response_callback(
        dev: *mut bindings::device,
        _evt: *mut bindings::iopf_fault,
        msg: *mut bindings::iommu_page_response,
    ) {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return;
        };
        // SAFETY: `msg` is valid for the call.
        let msg = unsafe { &*msg };
        T::page_response(
            bdev,
            msg.pasid,
            msg.grpid,
            super::fault::ResponseCode::from_raw(msg.code),
        );
    }

    /// Returns the driver's nested domain behind `domain` if this instance allocated it.
    pub fn nested_domain<'a>(&self, domain: &'a Domain) -> Option<&'a DriverNestedDomain<T>> {
        // Only `domain_alloc_nested_callback` makes nested domains owned by our ops.
        if domain.owner() != self.ops.get().cast_const()
            || domain.domain_type() != bindings::IOMMU_DOMAIN_NESTED
        {
            return None;
        }
        // SAFETY: Nested domains with our owner were allocated by
        // `domain_alloc_nested_callback` as `DriverNestedDomain<T>`.
        Some(unsafe { DriverNestedDomain::from_raw(domain.as_raw()) })
    }

    /// # Safety
    ///
    /// Called by iommufd for a device probed with these ops; `parent` is a valid domain and
    /// `user_data` is valid for the call.
    unsafe extern "C" fn domain_alloc_nested_callback(
        dev: *mut bindings::device,
        parent: *mut bindings::iommu_domain,
        flags: u32,
        user_data: *const bindings::iommu_user_data,
    ) -> *mut bindings::iommu_domain {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return ENODEV.to_ptr();
        };
        if parent.is_null() || user_data.is_null() {
            return EINVAL.to_ptr();
        }
        // SAFETY: `parent` is a valid domain for the call.
        let Some(parent) = bdev
            .iommu
            .driver_domain(unsafe { Domain::from_raw(parent) })
        else {
            return EINVAL.to_ptr();
        };
        // SAFETY: `user_data` is valid for the call.
        let data = unsafe { UserData::from_raw(user_data) };
        let init = match T::domain_alloc_nested(bdev, parent, flags, data) {
            Ok(init) => init,
            Err(e) => return e.to_ptr(),
        };
        match Self::make_nested(&bdev.iommu, init) {
            Ok(raw) => raw.as_ptr(),
            Err(e) => e.to_ptr(),
        }
    }

    /// Allocates a nested domain of this instance from `init` and sets up its C view; the
    /// caller owns the domain (its `free` op frees it).
    fn make_nested(
        iommu: &Arc<Self>,
        init: impl PinInit<T::NestedDomain, Error>,
    ) -> Result<NonNull<bindings::iommu_domain>> {
        let boxed = KBox::pin_init(
            try_pin_init!(DriverNestedDomain::<T> {
                raw: Opaque::zeroed(),
                iommu: iommu.clone(),
                inner <- init,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: The domain is handed to its owner and freed by `free_callback`; it is never
        // moved.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // SAFETY: `ptr` is valid; `raw` is its first field.
        let raw = unsafe { core::ptr::addr_of_mut!((*ptr).raw) }.cast::<bindings::iommu_domain>();
        // SAFETY: `raw` is a zeroed domain nobody else sees yet.
        unsafe {
            (*raw).type_ = bindings::IOMMU_DOMAIN_NESTED;
            (*raw).ops = DriverNestedDomain::<T>::ops();
            (*raw).owner = iommu.ops.get();
        }
        // INVARIANT: `raw` is set up with this type's ops.
        NonNull::new(raw).ok_or(ENOMEM)
    }

    /// Allocates a nested domain of this instance from `init` outside of `domain_alloc_nested`:
    /// what a driver's vIOMMU does for `IOMMU_HWPT_ALLOC` on the vIOMMU (upstream's
    /// `iommufd_viommu_ops.alloc_domain_nested`). The domain has this type's nested domain ops
    /// and this instance as owner, as those `domain_alloc_nested` makes.
    pub fn new_nested_domain(
        self: &Arc<Self>,
        init: impl PinInit<T::NestedDomain, Error>,
    ) -> Result<NestedDomain> {
        let raw = Self::make_nested(self, init)?;
        // SAFETY: `raw` is a new nested domain that nobody else owns, with its owner set.
        unsafe { NestedDomain::from_raw(raw) }
    }

    /// The instance, as the identity [`super::domain::device_iommu`] returns for its devices.
    pub fn instance(&self) -> IommuInstance {
        IommuInstance::from_raw(self.iommu.get())
    }

    /// # Safety
    ///
    /// Called by the IOMMU core with the group mutex held.
    unsafe extern "C" fn blocked_attach_callback(
        _domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return EINVAL.to_errno();
        };
        match T::blocked_attach_dev(bdev) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the IOMMU core with the group mutex held.
    unsafe extern "C" fn blocked_set_dev_pasid_callback(
        _domain: *mut bindings::iommu_domain,
        dev: *mut bindings::device,
        pasid: bindings::ioasid_t,
        _old: *mut bindings::iommu_domain,
    ) -> c_int {
        // SAFETY: `dev` is valid for the call.
        let Some(bdev) = (unsafe { BusDevice::<T>::from_raw(dev) }) else {
            return EINVAL.to_errno();
        };
        match T::blocked_set_dev_pasid(bdev, pasid) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

#[pinned_drop]
impl<T: Driver> PinnedDrop for IommuDevice<T> {
    fn drop(self: Pin<&mut Self>) {
        let stage = self.stage.load(Relaxed);
        #[cfg(CONFIG_IOMMUFD_TEST)]
        if stage >= STAGE_IOMMU {
            // SAFETY: Registered with `iommu_device_register_bus`; no device
            // or domain is left (each holds an `Arc` of `self`).
            unsafe {
                bindings::iommu_device_unregister_bus(
                    self.iommu.get(),
                    self.bus.get(),
                    self.nb.get(),
                )
            };
        }
        if stage >= STAGE_SYSFS {
            // SAFETY: Added with `iommu_device_sysfs_add`.
            unsafe { bindings::iommu_device_sysfs_remove(self.iommu.get()) };
        }
        if stage >= STAGE_BUS {
            // SAFETY: Registered with `bus_register`; the bus has no device left.
            unsafe { bindings::bus_unregister(self.bus.get()) };
        }
    }
}
