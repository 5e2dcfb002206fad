// SPDX-License-Identifier: GPL-2.0

//! IO page faults (`iopf`): page requests of devices that translate through a domain with a fault
//! handler, routed to whoever attached the device.
//!
//! A user of domains (iommufd) marks a domain as handling faults ([`super::domain::PagingDomain::
//! with_iopf`], [`super::domain::NestedDomain::with_iopf`]) and attaches devices to it with a
//! [`FaultRoute`]: the [`IopfSink`] that receives the fault groups reported for that attachment,
//! and a tag of its own. The sink owns each [`IopfGroup`] it is given until it answers it. When
//! the attachment goes (detach, or replace by another domain), the sink is told with
//! [`IopfSink::detached`], after the device left the domain and before the attachment's handle is
//! freed, so that it answers what is still pending for it.
//!
//! A driver reports faults with [`report_device_fault`] for devices it added to an [`IopfQueue`]
//! (the core's per-IOMMU queue), and answers them in its `page_response` operation.
//!
//! The core reads an attachment's handle while it reports a fault. The reporter must not report
//! for a device while that device's attachments change (the drivers flush or lock around it).
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)

use crate::{
    bindings,
    device::Device,
    error::to_result,
    prelude::*,
    sync::Arc,
    types::Opaque, //
};
use core::{
    mem::offset_of,
    ptr::NonNull, //
};

/// Page request flag: `pasid` is valid (`IOMMU_FAULT_PAGE_REQUEST_PASID_VALID`).
pub const PAGE_REQUEST_PASID_VALID: u32 = bindings::IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
/// Page request flag: the last request of its group (`IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE`).
pub const PAGE_REQUEST_LAST_PAGE: u32 = bindings::IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;

/// One page request (`struct iommu_fault_page_request`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PageRequest {
    /// `PAGE_REQUEST_*` flags.
    pub flags: u32,
    /// The PASID, with [`PAGE_REQUEST_PASID_VALID`].
    pub pasid: u32,
    /// The page request group index.
    pub grpid: u32,
    /// The requested access (`IOMMU_FAULT_PERM_*`).
    pub perm: u32,
    /// The faulting address.
    pub addr: u64,
}

/// How a fault group is answered (`enum iommu_page_response_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseCode {
    /// The fault was handled; the device retries.
    Success,
    /// The request was invalid; the device does not retry.
    Invalid,
    /// The handling failed; the device gives up on the page requests of the PASID.
    Failure,
}

impl ResponseCode {
    /// The code of a raw value; unknown values read as a failure.
    pub(super) fn from_raw(code: bindings::iommu_page_response_code) -> Self {
        match code {
            bindings::iommu_page_response_code_IOMMU_PAGE_RESP_SUCCESS => Self::Success,
            bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID => Self::Invalid,
            _ => Self::Failure,
        }
    }

    fn to_raw(self) -> bindings::iommu_page_response_code {
        match self {
            Self::Success => bindings::iommu_page_response_code_IOMMU_PAGE_RESP_SUCCESS,
            Self::Invalid => bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID,
            Self::Failure => bindings::iommu_page_response_code_IOMMU_PAGE_RESP_FAILURE,
        }
    }
}

/// The identity of an attachment's handle, to match fault groups with the attachment they came
/// through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleId(usize);

/// Receives the fault groups of attachments made with a [`FaultRoute`] naming it.
pub trait IopfSink: Send + Sync {
    /// A fault group arrived through an attachment whose route has `tag`. The sink owns it now;
    /// giving it back makes the core answer it with [`ResponseCode::Failure`].
    ///
    /// Called from the context the driver reports faults in (a thread, never an interrupt).
    fn deliver(&self, group: IopfGroup, tag: u32) -> core::result::Result<(), IopfGroup>;

    /// The attachment with handle `handle` is gone: no group comes through it any more, and every
    /// group of it the sink still holds must be answered now.
    fn detached(&self, handle: HandleId);
}

/// Where the faults of an attachment go.
#[derive(Clone)]
pub struct FaultRoute {
    /// The receiver.
    pub sink: Arc<dyn IopfSink>,
    /// Handed to the receiver with every group.
    pub tag: u32,
}

/// An attach handle (`struct iommu_attach_handle`) with the route of the attachment's faults.
///
/// # Invariants
///
/// `raw` is the first field, so the core's handle pointer is a pointer to this struct.
#[repr(C)]
pub(super) struct AttachHandle {
    raw: Opaque<bindings::iommu_attach_handle>,
    route: Option<FaultRoute>,
}

impl AttachHandle {
    pub(super) fn new(route: Option<FaultRoute>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(
            Self {
                raw: Opaque::zeroed(),
                route,
            },
            GFP_KERNEL,
        )?)
    }

    pub(super) fn get(&self) -> *mut bindings::iommu_attach_handle {
        self.raw.get()
    }

    /// Tells the route's sink that the attachment is gone; the core no longer uses the handle.
    pub(super) fn detached(&self) {
        if let Some(route) = &self.route {
            route.sink.detached(HandleId(self.raw.get() as usize));
        }
    }
}

/// A group of page requests of one device (`struct iopf_group`), owned until answered.
///
/// Dropping it answers it with [`ResponseCode::Invalid`].
///
/// # Invariants
///
/// `ptr` is a group the core handed to [`iopf_handler_callback`], dequeued from the device's
/// pending list, and not answered or freed yet.
pub struct IopfGroup {
    ptr: NonNull<bindings::iopf_group>,
}

// SAFETY: A group may be answered and freed from any thread.
unsafe impl Send for IopfGroup {}
// SAFETY: The methods taking `&self` only read fields that do not change.
unsafe impl Sync for IopfGroup {}

impl IopfGroup {
    fn raw(&self) -> &bindings::iopf_group {
        // SAFETY: The group is valid until answered (type invariant); its fields do not change.
        unsafe { self.ptr.as_ref() }
    }

    /// The number of page requests in the group.
    pub fn len(&self) -> usize {
        self.raw().fault_count
    }

    /// Whether the group has no page request (never the case for a group the core made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The attachment the group came through.
    pub fn handle(&self) -> HandleId {
        HandleId(self.raw().attach_handle as usize)
    }

    /// Calls `f` with each page request of the group, the partial ones first and the last one
    /// last, until `f` fails.
    pub fn for_each_request(&self, mut f: impl FnMut(PageRequest) -> Result) -> Result {
        let head = core::ptr::addr_of!(self.raw().faults).cast_mut();
        // SAFETY: `faults` is an initialised list of `iopf_fault.list` nodes owned by the group.
        let mut node = unsafe { (*head).next };
        while !core::ptr::eq(node, head) {
            // SAFETY: Every node of the list is the `list` field of a live `iopf_fault`.
            let iopf = unsafe {
                &*node
                    .cast::<u8>()
                    .sub(offset_of!(bindings::iopf_fault, list))
                    .cast::<bindings::iopf_fault>()
            };
            let prm = &iopf.fault.prm;
            f(PageRequest {
                flags: prm.flags,
                pasid: prm.pasid,
                grpid: prm.grpid,
                perm: prm.perm,
                addr: prm.addr,
            })?;
            node = iopf.list.next;
        }
        Ok(())
    }

    /// Answers the group with `code` (`iopf_group_response`) and frees it.
    pub fn respond(self, code: ResponseCode) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: The group is valid and not answered yet (type invariant); it is freed exactly
        // once, here, and never used again.
        unsafe {
            bindings::iopf_group_response(this.ptr.as_ptr(), code.to_raw());
            bindings::iopf_free_group(this.ptr.as_ptr());
        }
    }
}

impl Drop for IopfGroup {
    fn drop(&mut self) {
        // SAFETY: As in `respond`: the group is answered and freed once.
        unsafe {
            bindings::iopf_group_response(self.ptr.as_ptr(), ResponseCode::Invalid.to_raw());
            bindings::iopf_free_group(self.ptr.as_ptr());
        }
    }
}

/// `iommu_domain.iopf_handler` of domains marked with `with_iopf`: hands the group to the sink
/// of the attachment it came through.
///
/// # Safety
///
/// Called by the IOMMU core with a valid group whose attach handle is valid for the call and was
/// made by this module's attachments ([`AttachHandle`]): only they attach domains with this
/// handler.
pub(super) unsafe extern "C" fn iopf_handler_callback(group: *mut bindings::iopf_group) -> c_int {
    // SAFETY: The group is valid; by the function's requirements its handle is an `AttachHandle`
    // (whose first field is the C handle) that stays valid for the call.
    let handle = unsafe { &*(*group).attach_handle.cast::<AttachHandle>() };
    let Some(route) = &handle.route else {
        return EINVAL.to_errno();
    };
    // SAFETY: The group is valid; dequeuing it makes it ours (the core no longer answers it when
    // the device leaves its queue).
    unsafe { bindings::iopf_group_dequeue(group) };
    // SAFETY: `group` is valid and non-NULL.
    let ptr = unsafe { NonNull::new_unchecked(group) };
    // INVARIANT: The group was handed to us and dequeued.
    match route.sink.deliver(IopfGroup { ptr }, route.tag) {
        Ok(()) => 0,
        Err(g) => {
            // The core answers and frees a group whose handler fails.
            core::mem::forget(g);
            EINVAL.to_errno()
        }
    }
}

/// A fault queue of an IOMMU (`struct iopf_queue`): the devices added to it can report page
/// requests. Freed on drop.
///
/// # Invariants
///
/// `ptr` is a queue from `iopf_queue_alloc` owned by this object.
pub struct IopfQueue {
    ptr: NonNull<bindings::iopf_queue>,
}

// SAFETY: The queue's functions lock internally.
unsafe impl Send for IopfQueue {}
// SAFETY: See above.
unsafe impl Sync for IopfQueue {}

impl IopfQueue {
    /// Allocates a queue named `name` (its workqueue is `iopf_queue/<name>`).
    pub fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated static string.
        let ptr = unsafe { bindings::iopf_queue_alloc(name.as_char_ptr()) };
        // INVARIANT: A non-NULL result is a new queue we own.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Adds `dev` to the queue (`iopf_queue_add_device`); its driver must answer page requests.
    pub fn add_device(&self, dev: &Device) -> Result {
        // SAFETY: The queue and the device are valid.
        to_result(unsafe { bindings::iopf_queue_add_device(self.ptr.as_ptr(), dev.as_raw()) })
    }

    /// Removes `dev`, added before, from the queue; groups nobody took are answered.
    pub fn remove_device(&self, dev: &Device) {
        // SAFETY: The queue and the device are valid.
        unsafe { bindings::iopf_queue_remove_device(self.ptr.as_ptr(), dev.as_raw()) };
    }
}

impl Drop for IopfQueue {
    fn drop(&mut self) {
        // SAFETY: We own the queue (type invariant); it removes any device left.
        unsafe { bindings::iopf_queue_free(self.ptr.as_ptr()) };
    }
}

/// Reports a page request of `dev` (`iommu_report_device_fault`), as a driver does when its
/// hardware reports one. The device must be in an [`IopfQueue`].
pub fn report_device_fault(dev: &Device, req: PageRequest) -> Result {
    let mut evt: bindings::iopf_fault = pin_init::zeroed();
    evt.fault.type_ = bindings::iommu_fault_type_IOMMU_FAULT_PAGE_REQ;
    evt.fault.prm.flags = req.flags;
    evt.fault.prm.pasid = req.pasid;
    evt.fault.prm.grpid = req.grpid;
    evt.fault.prm.perm = req.perm;
    evt.fault.prm.addr = req.addr;
    // SAFETY: The device is valid; the event is copied by the core.
    to_result(unsafe { bindings::iommu_report_device_fault(dev.as_raw(), &mut evt) })
}
