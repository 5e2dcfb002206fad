// SPDX-License-Identifier: GPL-2.0

//! FAULT objects (`IOMMU_FAULT_QUEUE_ALLOC`): a queue of IO page fault groups with a file.
//!
//! A HWPT allocated with `IOMMU_HWPT_FAULT_ID_VALID` takes faults; every attachment to it routes
//! its fault groups here (the object is the attachment's [`IopfSink`], with the id of the device
//! that made the attachment as the tag). `read()` on the file returns each queued group as
//! `struct iommu_hwpt_pgfault` records, one per page request, with a cookie; `write()` of
//! `struct iommu_hwpt_page_response` answers the group of a cookie. Groups still queued or
//! unanswered when their attachment goes, or when the object is destroyed, are answered
//! `INVALID`, as upstream.
//!
//! The file holds a user reference on the object (so `IOMMU_DESTROY` is `EBUSY` while it is
//! open) and the context; the object outlives the file. Locks: `responses` (held across user
//! copies, as upstream's `fault->mutex`), then `deliver` (short sections; the only lock the
//! reporting path takes).

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    bindings,
    fs::{
        anon_file::{
            AnonFileOps,
            FileOps, //
        },
        File,
    },
    iommu::fault::{
        FaultRoute,
        HandleId,
        IopfGroup,
        IopfSink,
        ResponseCode, //
    },
    new_mutex,
    prelude::*,
    static_lock_class,
    sync::{
        poll::{
            PollCondVarBox,
            PollTable, //
        },
        Arc,
        Mutex, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    }, //
};
use zerocopy_derive::Immutable;

use super::{
    publish_with_file,
    QueueFile, //
};
use crate::{
    object::{
        ObjectData,
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};

/// `struct iommu_fault_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuFaultAlloc {
    size: u32,
    flags: u32,
    out_fault_id: u32,
    out_fault_fd: u32,
}

const _: () = assert!(size_of::<IommuFaultAlloc>() == 16);

impl UserCmd for IommuFaultAlloc {
    const MIN_SIZE: usize = offset_of!(IommuFaultAlloc, out_fault_fd) + size_of::<u32>();
}

/// `struct iommu_hwpt_pgfault`: what `read()` returns, one per page request.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, Default)]
struct HwptPgfault {
    flags: u32,
    dev_id: u32,
    pasid: u32,
    grpid: u32,
    perm: u32,
    reserved: u32,
    addr: u64,
    length: u32,
    cookie: u32,
}

const _: () = assert!(size_of::<HwptPgfault>() == 40);

/// `struct iommu_hwpt_page_response`: what `write()` takes.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, Default)]
struct HwptPageResponse {
    cookie: u32,
    code: u32,
}

const _: () = assert!(size_of::<HwptPageResponse>() == 8);

/// `IOMMUFD_PAGE_RESP_SUCCESS` and `IOMMUFD_PAGE_RESP_INVALID`.
const PAGE_RESP_SUCCESS: u32 = 0;
const PAGE_RESP_INVALID: u32 = 1;

/// A fault group a FAULT object holds (queued or read and unanswered), counted in the module's
/// stats while it does. Dropping it answers the group `INVALID`.
struct HeldGroup(Option<IopfGroup>);

impl HeldGroup {
    fn new(group: IopfGroup) -> Self {
        crate::stats::faults_add(1);
        Self(Some(group))
    }

    /// Takes the group out (to answer it): the object no longer holds it.
    fn into_inner(mut self) -> Option<IopfGroup> {
        self.0.take()
    }
}

impl core::ops::Deref for HeldGroup {
    type Target = Option<IopfGroup>;

    fn deref(&self) -> &Option<IopfGroup> {
        &self.0
    }
}

impl Drop for HeldGroup {
    fn drop(&mut self) {
        crate::stats::faults_add(-1);
    }
}

/// A queued group and the device id its attachment reports it under.
struct Queued {
    group: HeldGroup,
    dev_id: u32,
}

/// The groups that were read and wait for an answer, by cookie.
struct Responses {
    pending: KVec<(u32, HeldGroup)>,
    /// The last cookie given (cookies run from 1, skipping those in use).
    last: u32,
}

impl Responses {
    fn new_cookie(&mut self) -> u32 {
        loop {
            self.last = self.last.wrapping_add(1).max(1);
            let c = self.last;
            if !self.pending.iter().any(|(k, _)| *k == c) {
                return c;
            }
        }
    }
}

/// A FAULT object.
#[pin_data]
pub(crate) struct Fault {
    #[pin]
    responses: Mutex<Responses>,
    /// The groups not read yet, oldest first.
    #[pin]
    deliver: Mutex<KVec<Queued>>,
    /// Boxed and freed after an RCU grace period (`kfree_rcu`): dropping a pinned
    /// `PollCondVar` waits for a whole grace period (`synchronize_rcu`) instead, which made
    /// every destroy of the object take milliseconds on SMP kernels.
    wait: PollCondVarBox,
}

impl ObjectData for Fault {
    const TYPE: ObjectType = ObjectType::Fault;
}

impl Fault {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                responses <- new_mutex!(Responses {
                    pending: KVec::new(),
                    last: 0,
                }),
                deliver <- new_mutex!(KVec::new()),
                wait: PollCondVarBox::new(c"Fault::wait", static_lock_class!())?,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Takes the oldest queued group.
    fn pop(&self) -> Option<Queued> {
        let mut q = self.deliver.lock();
        if q.is_empty() {
            return None;
        }
        q.remove(0).ok()
    }

    /// Puts a group taken with [`Fault::pop`] back at the head (the room it left is still there).
    fn unpop(&self, e: Queued) {
        let mut q = self.deliver.lock();
        // Room was left by `pop`; should a report have taken it meanwhile, the group is answered
        // by being dropped.
        let _ = q.insert_within_capacity(0, e);
    }

    /// `read()`: whole groups only, as many as fit.
    fn read(&self, buf: &mut UserSliceWriter, offset: i64) -> Result<usize> {
        let rec = size_of::<HwptPgfault>();
        let count = buf.len();
        if offset != 0 || count % rec != 0 {
            return Err(ESPIPE);
        }
        let mut resp = self.responses.lock();
        let mut done = 0usize;
        let mut res = Ok(());
        while let Some(e) = self.pop() {
            let Some(group) = e.group.as_ref() else {
                continue;
            };
            let need = group.len().saturating_mul(rec);
            if done >= count || need > count - done {
                self.unpop(e);
                if done == 0 {
                    res = Err(EINVAL);
                }
                break;
            }
            if let Err(err) = resp.pending.reserve(1, GFP_KERNEL) {
                self.unpop(e);
                res = Err(err.into());
                break;
            }
            let cookie = resp.new_cookie();
            let copied = group.for_each_request(|r| {
                let m = HwptPgfault {
                    flags: r.flags,
                    dev_id: e.dev_id,
                    pasid: r.pasid,
                    grpid: r.grpid,
                    perm: r.perm,
                    addr: r.addr,
                    cookie,
                    ..Default::default()
                };
                buf.write_slice(m.as_bytes())
            });
            if let Err(err) = copied {
                self.unpop(e);
                res = Err(err);
                break;
            }
            // Room was reserved above.
            let _ = resp.pending.push_within_capacity((cookie, e.group));
            done += need;
        }
        match (done, res) {
            (0, Err(e)) => Err(e),
            (n, _) => Ok(n),
        }
    }

    /// `write()`: answers groups by cookie, until a bad response.
    fn write(&self, buf: &mut UserSliceReader, offset: i64) -> Result<usize> {
        let size = size_of::<HwptPageResponse>();
        let count = buf.len();
        if offset != 0 || count % size != 0 {
            return Err(ESPIPE);
        }
        let mut resp = self.responses.lock();
        let mut done = 0usize;
        let mut res = Ok(());
        while done < count {
            let mut r = HwptPageResponse::default();
            if let Err(e) = buf.read_slice(r.as_mut_bytes()) {
                res = Err(e);
                break;
            }
            let code = match r.code {
                PAGE_RESP_SUCCESS => ResponseCode::Success,
                PAGE_RESP_INVALID => ResponseCode::Invalid,
                _ => {
                    res = Err(EINVAL);
                    break;
                }
            };
            let Some(pos) = resp.pending.iter().position(|(k, _)| *k == r.cookie) else {
                res = Err(EINVAL);
                break;
            };
            match resp.pending.remove(pos) {
                Ok((_, group)) => {
                    if let Some(g) = group.into_inner() {
                        g.respond(code);
                    }
                }
                Err(_) => {
                    res = Err(EINVAL);
                    break;
                }
            }
            done += size;
        }
        match (done, res) {
            (0, Err(e)) => Err(e),
            (n, _) => Ok(n),
        }
    }

    /// `poll()`: always writable, readable while groups are queued.
    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.wait);
        let mut mask = bindings::POLLOUT;
        if !self.deliver.lock().is_empty() {
            mask |= bindings::POLLIN | bindings::POLLRDNORM;
        }
        mask
    }
}

impl IopfSink for Fault {
    fn deliver(&self, group: IopfGroup, tag: u32) -> core::result::Result<(), IopfGroup> {
        {
            let mut q = self.deliver.lock();
            if q.reserve(1, GFP_KERNEL).is_err() {
                return Err(group);
            }
            let queued = Queued {
                group: HeldGroup::new(group),
                dev_id: tag,
            };
            // Room was reserved just now.
            if let Err(e) = q.push_within_capacity(queued) {
                return match e.0.group.into_inner() {
                    Some(g) => Err(g),
                    None => Ok(()),
                };
            }
        }
        self.wait.notify_all();
        Ok(())
    }

    fn detached(&self, handle: HandleId) {
        let mut resp = self.responses.lock();
        // The queued groups of the attachment, oldest first; answered after the queue's lock.
        let mut gone = KVec::new();
        {
            let mut q = self.deliver.lock();
            let mut i = 0;
            while i < q.len() {
                if q[i].group.as_ref().is_some_and(|g| g.handle() == handle) {
                    match q.remove(i) {
                        // Without room the group is answered here, under the lock (a group
                        // answers INVALID when dropped).
                        Ok(e) => {
                            let _ = gone.push(e, GFP_KERNEL);
                        }
                        Err(_) => break,
                    }
                } else {
                    i += 1;
                }
            }
        }
        for e in gone {
            if let Some(g) = e.group.into_inner() {
                g.respond(ResponseCode::Invalid);
            }
        }
        let mut i = 0;
        while i < resp.pending.len() {
            if resp.pending[i]
                .1
                .as_ref()
                .is_some_and(|g| g.handle() == handle)
            {
                if let Ok((_, held)) = resp.pending.remove(i) {
                    if let Some(g) = held.into_inner() {
                        g.respond(ResponseCode::Invalid);
                    }
                }
            } else {
                i += 1;
            }
        }
    }
}

// Dropping the object answers whatever is left: each `IopfGroup` answers `INVALID` when dropped.

/// A HWPT's reference to the FAULT object its faults go to.
pub(crate) struct FaultRef {
    /// A long-term user reference: the object cannot be destroyed before the HWPT.
    _obj: ObjectRef,
    fault: Arc<Fault>,
}

impl FaultRef {
    /// The FAULT object `id` of `ictx` (`ENOENT` if there is none).
    pub(crate) fn get(ictx: &IommufdCtx, id: u32) -> Result<FaultRef> {
        let obj = ictx.objects.get(id, ObjectType::Fault)?;
        let fault = Arc::from(obj.data::<Fault>().ok_or(ENOENT)?);
        Ok(FaultRef {
            _obj: obj.into_long_term(),
            fault,
        })
    }

    /// Where the faults of an attachment made by the device with object id `dev_id` go.
    pub(crate) fn route(&self, dev_id: u32) -> FaultRoute {
        let sink: Arc<dyn IopfSink> = self.fault.clone();
        FaultRoute { sink, tag: dev_id }
    }
}

struct FaultFileOps;

#[vtable]
impl AnonFileOps for FaultFileOps {
    type Data = KBox<QueueFile<Fault>>;
    const FOPS: &'static FileOps<Self> = kernel::anon_file_ops!(FaultFileOps);

    fn read(data: &QueueFile<Fault>, buf: &mut UserSliceWriter, offset: i64) -> Result<usize> {
        data.queue.read(buf, offset)
    }

    fn write(data: &QueueFile<Fault>, buf: &mut UserSliceReader, offset: i64) -> Result<usize> {
        data.queue.write(buf, offset)
    }

    fn poll(data: &QueueFile<Fault>, file: &File, table: PollTable<'_>) -> u32 {
        data.queue.poll(file, table)
    }
}

/// `IOMMU_FAULT_QUEUE_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuFaultAlloc>) -> Result {
    if ucmd.cmd.flags != 0 {
        return Err(EOPNOTSUPP);
    }
    let ictx = ucmd.ictx;
    let fault = Fault::new()?;
    let mut new = ictx.objects.reserve()?;
    new.prepare(ObjectKind::new(fault.clone()))?;
    publish_with_file::<Fault, FaultFileOps>(
        ictx,
        new,
        ObjectType::Fault,
        fault,
        c"[iommufd-pgfault]",
        |id, fd| {
            ucmd.cmd.out_fault_id = id;
            ucmd.cmd.out_fault_fd = fd;
            ucmd.respond()
        },
        || {},
    )
}
