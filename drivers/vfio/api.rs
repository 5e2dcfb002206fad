// SPDX-License-Identifier: GPL-2.0

//! The in-kernel iommufd API that VFIO calls, implemented on the Rust core.
//!
//! `drivers/vfio/api.c` exports the upstream symbols with their C prototypes and calls the
//! functions here; this file is the C edge, where errors become errnos. The C types map as
//! follows:
//!
//! - `struct iommufd_ctx *` is a counted reference to an [`IommufdCtx`] (`Arc::into_raw`):
//!   `iommufd_ctx_from_file()` and `iommufd_ctx_get()` take one, `iommufd_ctx_put()` drops it. A
//!   context VFIO holds outlives the user's close of `/dev/iommu`, as upstream's file reference
//!   does.
//! - `struct iommufd_device *` is a [`BoundDevice`] (`KBox::into_raw`), created by
//!   `iommufd_device_bind()` and freed by `iommufd_device_unbind()`: the DEVICE object, a user
//!   reference to it (so user space cannot destroy it, `EBUSY`) and a reference to the context.
//! - `struct iommufd_access *` is an [`crate::vfio::access::KernelAccess`] (see there).

use kernel::{
    bindings,
    device::Device,
    iommu::domain::Group,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc,
        ArcBorrow, //
    },
    types::ForeignOwnable, //
};

use crate::{
    device::IDevice,
    ioas::Ioas,
    object::{
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    IommufdCtx, //
};

/// A device bound to a context by an in-kernel user (upstream's `struct iommufd_device` as VFIO
/// holds it).
pub(crate) struct BoundDevice {
    /// The context; held for as long as the device is bound, as upstream's device object holds
    /// its context.
    ictx: Arc<IommufdCtx>,
    idev: Arc<IDevice>,
    /// The DEVICE object, with the long-term use that belongs to the driver until unbind.
    obj: Option<ObjectRef>,
    /// The object's id.
    id: u32,
}

impl BoundDevice {
    /// Binds `dev` to `ictx`; the new DEVICE object's id is `self.id`.
    fn bind(ictx: Arc<IommufdCtx>, dev: &Device) -> Result<KBox<Self>> {
        let new = ictx.objects.reserve()?;
        let (idev, id) = IDevice::bind(&ictx, new, dev, None)?;
        // User space may destroy the object as soon as it is published (its id is guessable);
        // then binding fails and the object is gone already.
        let obj = ictx.objects.get(id, ObjectType::Device)?.into_long_term();
        // If the allocation fails, dropping the new `BoundDevice` takes the object out again.
        let b = KBox::new(
            BoundDevice {
                ictx,
                idev,
                obj: Some(obj),
                id,
            },
            GFP_KERNEL,
        )?;
        Ok(b)
    }
}

impl Drop for BoundDevice {
    fn drop(&mut self) {
        // Upstream's `iommufd_object_destroy_user()`: wait until no ioctl uses the device (none
        // can start afterwards), then detach what is still attached (VFIO detaches before it
        // unbinds) and destroy the object. The DMA ownership claim goes with the last
        // reference to the device, `self.idev`, before unbind returns.
        if let Some(obj) = self.obj.take() {
            let (idev, ictx) = (&self.idev, &self.ictx);
            self.ictx.objects.destroy_user(&self.ictx, obj, || {
                idev.pasid_detach_all(ictx);
                idev.detach(ictx);
                idev.remove_vdev(ictx);
            });
        }
    }
}

/// Borrows the context behind a `struct iommufd_ctx *`.
///
/// # Safety
///
/// `ictx` must be a context reference handed out by this file and not yet put.
pub(crate) unsafe fn ctx<'a>(ictx: *const IommufdCtx) -> ArcBorrow<'a, IommufdCtx> {
    // SAFETY: The pointer came from `Arc::into_raw` and its count is still held.
    unsafe { ArcBorrow::from_raw(ictx) }
}

/// Borrows the device behind a `struct iommufd_device *`.
///
/// # Safety
///
/// `idev` must come from [`iommufd_rs_device_bind`] and not be unbound yet.
unsafe fn bound<'a>(idev: *const BoundDevice) -> &'a BoundDevice {
    // SAFETY: By the function's safety requirements the box is alive.
    unsafe { &*idev }
}

/// The C return value of `r`: 0 or a negative errno.
pub(crate) fn errno(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Takes a reference to the context that is the private data of an open `/dev/iommu` (or
/// `/dev/vfio/vfio`) file.
///
/// # Safety
///
/// `private_data` must be the private data of an open file of this module's misc devices, which
/// the caller keeps open for the duration of the call.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_from_private(
    private_data: *mut c_void,
) -> *const IommufdCtx {
    // SAFETY: The misc device stores its `Arc<IommufdCtx>` with `into_foreign` as the file's
    // private data, and the open file keeps it.
    let borrowed = unsafe { <Arc<IommufdCtx> as ForeignOwnable>::borrow(private_data) };
    Arc::from(borrowed).into_raw()
}

/// `iommufd_ctx_get()`.
///
/// # Safety
///
/// `ictx` must be a context reference handed out by this file and not yet put.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_get(ictx: *const IommufdCtx) {
    // SAFETY: By the function's safety requirements.
    let c = unsafe { ctx(ictx) };
    // The new count belongs to the caller until `iommufd_ctx_put()`.
    let _ = Arc::from(c).into_raw();
}

/// `iommufd_ctx_put()`.
///
/// # Safety
///
/// `ictx` must be a context reference handed out by this file and not yet put; it is put here.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_put(ictx: *const IommufdCtx) {
    // SAFETY: The count taken when the pointer was handed out is given back.
    drop(unsafe { Arc::from_raw(ictx) });
}

/// `iommufd_ctx_has_group()`: whether a device of `group` is bound to the context.
///
/// # Safety
///
/// `ictx` must be a live context reference and `group` a valid group.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_has_group(
    ictx: *const IommufdCtx,
    group: *mut bindings::iommu_group,
) -> bool {
    // SAFETY: By the function's safety requirements.
    let c = unsafe { ctx(ictx) };
    let mut found = false;
    c.objects.for_each(ObjectType::Device, |obj| {
        if let Some(idev) = obj.data::<IDevice>() {
            found |= core::ptr::eq(Group::as_raw(idev.group()), group);
        }
    });
    found
}

/// `iommufd_device_bind()`: binds `dev` to the context; `*out` is the device handle and `*id`
/// the DEVICE object's id.
///
/// # Safety
///
/// `ictx` must be a live context reference, `dev` a valid device the caller keeps for the
/// duration of the binding, `out` and `id` valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_bind(
    ictx: *const IommufdCtx,
    dev: *mut bindings::device,
    out: *mut *mut BoundDevice,
    id: *mut u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let (c, dev) = unsafe { (ctx(ictx), Device::from_raw(dev)) };
    match BoundDevice::bind(c.into(), dev) {
        Ok(b) => {
            let obj_id = b.id;
            // SAFETY: `out` and `id` are valid for writes.
            unsafe {
                *id = obj_id;
                *out = KBox::into_raw(b);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_device_unbind()`: detaches whatever is attached, destroys the DEVICE object and
/// releases the device's DMA ownership.
///
/// # Safety
///
/// `idev` must come from [`iommufd_rs_device_bind`] and not be unbound yet; it is freed here.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_unbind(idev: *mut BoundDevice) {
    // SAFETY: The box was handed out by `iommufd_rs_device_bind` and is given back once.
    drop(unsafe { KBox::from_raw(idev) });
}

/// `iommufd_device_attach()`: attaches the device (or its `pasid`) to `*pt_id`, an IOAS or a
/// HWPT; `*pt_id` becomes the HWPT's id.
///
/// # Safety
///
/// `idev` must be a bound device and `pt_id` valid for reads and writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_attach(
    idev: *const BoundDevice,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let (b, id) = unsafe { (bound(idev), &mut *pt_id) };
    errno(
        b.idev
            .pasid_attach(&b.ictx, pasid, *id)
            .map(|hwpt| *id = hwpt),
    )
}

/// `iommufd_device_replace()`: moves the attached device (or `pasid`) to `*pt_id` without
/// blocking DMA in between; `*pt_id` becomes the new HWPT's id.
///
/// # Safety
///
/// `idev` must be a bound device and `pt_id` valid for reads and writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_replace(
    idev: *const BoundDevice,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let (b, id) = unsafe { (bound(idev), &mut *pt_id) };
    errno(
        b.idev
            .pasid_replace(&b.ictx, pasid, *id)
            .map(|hwpt| *id = hwpt),
    )
}

/// `iommufd_device_detach()`.
///
/// # Safety
///
/// `idev` must be a bound device.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_detach(idev: *const BoundDevice, pasid: u32) {
    // SAFETY: By the function's safety requirements.
    let b = unsafe { bound(idev) };
    b.idev.pasid_detach(&b.ictx, pasid);
}

/// `iommufd_device_to_ictx()`: the context, without a new reference.
///
/// # Safety
///
/// `idev` must be a bound device.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_to_ictx(
    idev: *const BoundDevice,
) -> *const IommufdCtx {
    // SAFETY: By the function's safety requirements.
    Arc::as_ptr(&unsafe { bound(idev) }.ictx)
}

/// `iommufd_device_to_id()`.
///
/// # Safety
///
/// `idev` must be a bound device.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_to_id(idev: *const BoundDevice) -> u32 {
    // SAFETY: By the function's safety requirements.
    unsafe { bound(idev) }.id
}

/// `iommufd_vfio_compat_ioas_get_id()`: the compat IOAS's id (`ENODEV` without one).
///
/// # Safety
///
/// `ictx` must be a live context reference and `out` valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_ioas_get_id(
    ictx: *const IommufdCtx,
    out: *mut u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let c = unsafe { ctx(ictx) };
    match crate::vfio::compat::compat_ioas(&c) {
        Ok(obj) => {
            // SAFETY: `out` is valid for writes.
            unsafe { *out = obj.id() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_vfio_compat_ioas_create()`: makes sure the context has a compat IOAS (a group is
/// being attached to it as a VFIO container).
///
/// # Safety
///
/// `ictx` must be a live context reference.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_ioas_create(
    ictx: *const IommufdCtx,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let c = unsafe { ctx(ictx) };
    errno(compat_ioas_create(&c))
}

fn compat_ioas_create(ictx: &IommufdCtx) -> Result {
    // As upstream, the IOAS is allocated first and dropped again if not needed.
    let new = ictx.objects.alloc(ObjectKind::new(Ioas::new()?))?;
    // VFIO does not let a container serve both IOMMU and no-IOMMU groups.
    if ictx.no_iommu.load(Relaxed) {
        return Err(EINVAL);
    }
    if crate::vfio::compat::compat_ioas(ictx).is_ok() {
        return Ok(());
    }
    let id = new.id();
    // Claimed before it is published, so of two concurrent creates only one publishes its IOAS
    // (upstream decides under the table's lock); the other drops its unpublished one.
    if ictx.vfio_ioas.cmpxchg(0, id, Relaxed).is_err() {
        return Ok(());
    }
    // Treated as an IOAS user space made: `IOMMU_VFIO_IOAS_GET` reports it, `IOMMU_DESTROY`
    // and the file's release destroy it.
    if let Err(e) = new.finalize() {
        ictx.forget_vfio_ioas(id);
        return Err(e);
    }
    Ok(())
}

/// `iommufd_vfio_compat_set_no_iommu()`: a no-IOMMU group is attached to the container; only
/// possible while there is no compat IOAS (`EINVAL`).
///
/// # Safety
///
/// `ictx` must be a live context reference.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_set_no_iommu(
    ictx: *const IommufdCtx,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let c = unsafe { ctx(ictx) };
    if c.vfio_ioas.load(Relaxed) != 0 {
        return EINVAL.to_errno();
    }
    c.no_iommu.store(true, Relaxed);
    0
}
