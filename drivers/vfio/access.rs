// SPDX-License-Identifier: GPL-2.0

//! The in-kernel access API (`iommufd_access_*`) that emulated VFIO devices (mdev drivers such
//! as mtty) call, on the Rust core's access objects (`drivers/ioas/access.rs`). The C shims are
//! in `drivers/vfio/api.c`; this is the C edge, where errors become errnos.

use kernel::{
    prelude::*,
    sync::Arc, //
};

use crate::{
    ioas::access::Access,
    object::{
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    vfio::api::errno,
    IommufdCtx, //
};

/// `IOMMUFD_ACCESS_RW_WRITE`: pin for writing / write into the IOAS.
const IOMMUFD_ACCESS_RW_WRITE: u32 = 1 << 0;
/// `IOMMUFD_ACCESS_RW_KTHREAD`: the caller is a kernel thread, the user address cannot be used.
const IOMMUFD_ACCESS_RW_KTHREAD: u32 = 1 << 1;

/// An access created by an in-kernel user (`struct iommufd_access *` in C, see
/// `drivers/vfio/api.rs`): the ACCESS object, a long-term use of it (user space cannot destroy
/// it) and a reference to the context.
pub(crate) struct KernelAccess {
    ictx: Arc<IommufdCtx>,
    access: Arc<Access>,
    /// The owner's use of the object; taken when the access is destroyed.
    obj: Option<ObjectRef>,
    /// The object's id.
    id: u32,
}

impl KernelAccess {
    fn create(ictx: Arc<IommufdCtx>, ops: *const c_void, data: *mut c_void) -> Result<KBox<Self>> {
        // SAFETY: `ops` is the caller's valid ops table, and it and `data` stay valid until the
        // access is destroyed (`iommufd_rs_access_create`'s safety requirements).
        let access = unsafe { Access::for_kernel_owner(ops, data) }?;
        let new = ictx.objects.alloc(ObjectKind::new(access.clone()))?;
        let id = new.id();
        new.finalize()?;
        let obj = ictx.objects.get(id, ObjectType::Access)?.into_long_term();
        // If the allocation fails, dropping the new `KernelAccess` takes the object out again.
        let b = KBox::new(
            KernelAccess {
                ictx,
                access,
                obj: Some(obj),
                id,
            },
            GFP_KERNEL,
        )?;
        Ok(b)
    }
}

impl Drop for KernelAccess {
    fn drop(&mut self) {
        // `iommufd_access_destroy()`: once no unmap is notifying the access any more (and none
        // can start), it leaves its IOAS and the object goes. No callback into the owner runs
        // after this returns.
        if let Some(obj) = self.obj.take() {
            let access = &self.access;
            self.ictx
                .objects
                .destroy_user(&self.ictx, obj, || access.detach());
            self.access.retire();
        }
    }
}

/// Borrows the access behind a `struct iommufd_access *`.
///
/// # Safety
///
/// `access` must come from [`iommufd_rs_access_create`] and not be destroyed yet.
unsafe fn kaccess<'a>(access: *const KernelAccess) -> &'a KernelAccess {
    // SAFETY: By the function's safety requirements the box is alive.
    unsafe { &*access }
}

/// `iommufd_access_create()`: a new access of the context for an emulated device; `ops` tell it
/// whether the device pins pages and how to make it unpin.
///
/// # Safety
///
/// `ictx` must be a live context reference (`drivers/vfio/api.rs`); `ops` and `data` must stay
/// valid until the access is destroyed; `out` and `id` must be valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_create(
    ictx: *const IommufdCtx,
    ops: *const c_void,
    data: *mut c_void,
    out: *mut *mut KernelAccess,
    id: *mut u32,
) -> c_int {
    // SAFETY: The context reference is live by the function's safety requirements.
    let ctx: Arc<IommufdCtx> = unsafe { crate::vfio::api::ctx(ictx) }.into();
    match KernelAccess::create(ctx, ops, data) {
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

/// `iommufd_access_destroy()`: unpins what is left, leaves the IOAS and destroys the object.
///
/// # Safety
///
/// `access` must come from [`iommufd_rs_access_create`] and not be destroyed yet; it is freed.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_destroy(access: *mut KernelAccess) {
    // SAFETY: The box was handed out by `iommufd_rs_access_create` and is given back once.
    drop(unsafe { KBox::from_raw(access) });
}

/// `iommufd_access_attach()` (`replace` false: `EINVAL` if attached) and
/// `iommufd_access_replace()` (`replace` true: `ENOENT` if not attached).
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_attach(
    access: *const KernelAccess,
    ioas_id: u32,
    replace: bool,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    let attached = ka.access.is_attached();
    if attached != replace {
        return if replace { ENOENT } else { EINVAL }.to_errno();
    }
    errno(ka.access.attach(&ka.ictx, ioas_id))
}

/// `iommufd_access_detach()`.
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_detach(access: *const KernelAccess) {
    // SAFETY: By the function's safety requirements.
    unsafe { kaccess(access) }.access.detach();
}

/// `iommufd_access_pin_pages()`: pins `[iova, iova + length)` and writes the page frame numbers
/// of its pages to `out_pfns` (the C shim turns them into `struct page` pointers).
///
/// # Safety
///
/// `access` must be a live access; `out_pfns` must have room for every page the range touches.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_pin_pages(
    access: *const KernelAccess,
    iova: usize,
    length: usize,
    out_pfns: *mut usize,
    flags: u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    let can_unmap = ka.access.owner_can_unmap();
    if !ka.access.pins_pages() || !can_unmap || length == 0 {
        return EINVAL.to_errno();
    }
    if iova.checked_add(length - 1).is_none() {
        return EOVERFLOW.to_errno();
    }
    let write = flags & IOMMUFD_ACCESS_RW_WRITE != 0;
    match ka.access.pin(iova as u64, length as u64, write) {
        Ok((_, phys)) => {
            for (i, p) in phys.iter().enumerate() {
                // SAFETY: The caller's array has room for every page of the range, and `phys`
                // has one entry per page.
                unsafe { *out_pfns.add(i) = (*p >> kernel::page::PAGE_SHIFT) as usize };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_access_unpin_pages()`: unpins a range pinned before with exactly these bounds.
///
/// # Safety
///
/// `access` must be a live access.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_unpin_pages(
    access: *const KernelAccess,
    iova: usize,
    length: usize,
) {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    if ka.access.unpin_range(iova as u64, length as u64).is_err() {
        pr_warn!("iommufd_access_unpin_pages: nothing pinned at {iova:#x}+{length:#x}\n");
    }
}

/// `iommufd_access_rw()`: reads or writes `len` bytes at `data` from or to the IOAS at `iova`.
///
/// # Safety
///
/// `access` must be a live access and `data` valid for `len` bytes of reads and writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_rw(
    access: *const KernelAccess,
    iova: usize,
    data: *mut u8,
    len: usize,
    flags: u32,
) -> c_int {
    // SAFETY: By the function's safety requirements.
    let ka = unsafe { kaccess(access) };
    if len == 0 {
        return EINVAL.to_errno();
    }
    if iova.checked_add(len - 1).is_none() {
        return EOVERFLOW.to_errno();
    }
    // SAFETY: `data` is valid for `len` bytes by the function's safety requirements.
    let buf = unsafe { core::slice::from_raw_parts_mut(data, len) };
    let write = flags & IOMMUFD_ACCESS_RW_WRITE != 0;
    let kthread = flags & IOMMUFD_ACCESS_RW_KTHREAD != 0;
    errno(ka.access.rw(iova as u64, buf, write, kthread))
}
