// SPDX-License-Identifier: GPL-2.0

//! vEVENTQ objects (`IOMMU_VEVENTQ_ALLOC`): a vIOMMU's queue of events of one type for user
//! space, read from a file.
//!
//! The driver reports events ([`crate::viommu::ViommuCore::report_event`]); each gets the next
//! sequence number (they wrap at `INT_MAX`). At most `veventq_depth` events wait in the queue;
//! when an event finds it full, or no memory, a header with `IOMMU_VEVENTQ_FLAG_LOST_EVENTS`
//! takes its sequence number instead, at the tail, at most once: a later event takes its place
//! there, so user space sees either the header or the gap in the numbers. `read()` returns whole
//! events (a header and the event's data), as many as fit; a buffer that holds no header, or
//! not even the first event, is `EINVAL`.
//!
//! The object holds a user reference on its vIOMMU (one vEVENTQ per type per vIOMMU,
//! `EEXIST`); the file holds one on the object and the context. Locks: the vIOMMU's list of
//! queues, then the queue's spinlock (short sections, nothing that sleeps; user copies are made
//! outside it, as upstream).

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
    new_spinlock,
    prelude::*,
    static_lock_class,
    sync::{
        poll::{
            PollCondVarBox,
            PollTable, //
        },
        Arc,
        SpinLock, //
    },
    uaccess::UserSliceWriter, //
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
    viommu::Viommu,
    IommufdCtx, //
};

/// `IOMMU_VEVENTQ_TYPE_DEFAULT`: reserved.
const IOMMU_VEVENTQ_TYPE_DEFAULT: u32 = 0;
/// `IOMMU_VEVENTQ_FLAG_LOST_EVENTS`.
const IOMMU_VEVENTQ_FLAG_LOST_EVENTS: u32 = 1 << 0;
/// Upstream's bound on `veventq_depth`, above what any hardware queues.
const VEVENTQ_MAX_DEPTH: u32 = 1 << 19;
/// Sequence numbers wrap here (`INT_MAX`).
const SEQUENCE_MASK: u32 = i32::MAX as u32;

/// `struct iommu_veventq_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuVeventqAlloc {
    size: u32,
    flags: u32,
    viommu_id: u32,
    veventq_type: u32,
    veventq_depth: u32,
    out_veventq_id: u32,
    out_veventq_fd: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<IommuVeventqAlloc>() == 32);

impl UserCmd for IommuVeventqAlloc {
    const MIN_SIZE: usize = offset_of!(IommuVeventqAlloc, out_veventq_fd) + size_of::<u32>();
}

/// `struct iommufd_vevent_header`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, Default)]
struct VeventHeader {
    flags: u32,
    sequence: u32,
}

const HDR: usize = size_of::<VeventHeader>();
const _: () = assert!(HDR == 8);

/// A queued event; `data` is `None` for the lost-events header.
struct Vevent {
    sequence: u32,
    data: Option<KVec<u8>>,
}

impl Vevent {
    fn is_lost(&self) -> bool {
        self.data.is_none()
    }

    fn len(&self) -> usize {
        HDR + self.data.as_ref().map_or(0, |d| d.len())
    }
}

struct QueueState {
    /// Oldest first, from `head` on (entries before it were read; compacted as they pile up).
    events: KVVec<Vevent>,
    head: usize,
    /// Normal events queued (the header does not count).
    num_events: u32,
    /// The next sequence number.
    sequence: u32,
}

impl QueueState {
    fn is_empty(&self) -> bool {
        self.head >= self.events.len()
    }

    fn next_sequence(&mut self) -> u32 {
        let s = self.sequence;
        self.sequence = (s + 1) & SEQUENCE_MASK;
        s
    }

    /// Appends `e` with the next sequence number; a lost-events header at the tail makes room
    /// for it (upstream's `iommufd_vevent_handler()`). The caller made room in `events`.
    fn push(&mut self, mut e: Vevent) -> Result {
        if self.events.last().is_some_and(|t| t.is_lost()) && !self.is_empty() {
            self.events.pop();
        }
        e.sequence = self.next_sequence();
        self.events.push_within_capacity(e).map_err(|_| ENOMEM)
    }

    /// Takes the oldest event (compacting first, see [`QueueState::compact`]); a normal one
    /// leaves the count of queued events.
    fn pop(&mut self) -> Option<Vevent> {
        if self.is_empty() {
            return None;
        }
        self.compact();
        // Swapped out for a placeholder; the slot is behind `head` from now on.
        let slot = self.events.get_mut(self.head)?;
        let e = core::mem::replace(
            slot,
            Vevent {
                sequence: 0,
                data: None,
            },
        );
        self.head += 1;
        if !e.is_lost() {
            self.num_events = self.num_events.saturating_sub(1);
            crate::stats::vevents_add(-1);
        }
        Some(e)
    }

    /// Puts back an event [`QueueState::pop`] took, at the head. A lost-events header only
    /// comes back if the queue is empty (as upstream: the gap in the sequence numbers tells the
    /// rest).
    fn unpop(&mut self, e: Vevent) {
        if e.is_lost() && !self.is_empty() {
            return;
        }
        // Only `read()` pops (and compacts, before it takes an event), and nothing compacts
        // between a pop and its unpop: the slot the event came from is still there.
        if self.head > 0 {
            self.head -= 1;
            if !e.is_lost() {
                self.num_events += 1;
                crate::stats::vevents_add(1);
            }
            if let Some(slot) = self.events.get_mut(self.head) {
                *slot = e;
            }
        }
    }

    /// Drops the entries before `head` once they are half the vector ([`QueueState::pop`]
    /// calls this before it takes an event).
    fn compact(&mut self) {
        if self.head > 0 && self.head * 2 >= self.events.len() {
            let live = self.events.len() - self.head;
            for i in 0..live {
                self.events.swap(i, self.head + i);
            }
            self.events.truncate(live);
            self.head = 0;
        }
    }
}

/// The queue of a vEVENTQ, shared with its vIOMMU's list (which reports into it).
#[pin_data(PinnedDrop)]
pub(crate) struct EventQueue {
    queue_type: u32,
    depth: u32,
    #[pin]
    state: SpinLock<QueueState>,
    /// Boxed and freed after an RCU grace period (`kfree_rcu`): dropping a pinned
    /// `PollCondVar` waits for a whole grace period (`synchronize_rcu`) instead, which made
    /// every destroy of the object take milliseconds on SMP kernels.
    wait: PollCondVarBox,
}

impl EventQueue {
    /// The type of events it takes (`IOMMU_VEVENTQ_TYPE_*`).
    pub(crate) fn queue_type(&self) -> u32 {
        self.queue_type
    }

    /// Queues an event with `data` (see the module documentation).
    pub(crate) fn report(&self, data: &[u8]) -> Result {
        // Allocated without sleeping, as upstream; a failure records lost events.
        let mut buf = KVec::new();
        let mut res = buf.extend_from_slice(data, GFP_NOWAIT).map_err(|_| ENOMEM);
        {
            let mut st = self.state.lock();
            let full = st.num_events >= self.depth;
            let e = match (&res, full) {
                (Ok(()), false) => Vevent {
                    sequence: 0,
                    data: Some(core::mem::take(&mut buf)),
                },
                _ => Vevent {
                    sequence: 0,
                    data: None,
                },
            };
            let normal = !e.is_lost();
            if st.events.reserve(1, GFP_NOWAIT).is_err() {
                // Not even the header fits: the event is lost without a trace but for the gap
                // its sequence number leaves.
                st.next_sequence();
                return Err(ENOMEM);
            }
            if st.push(e).is_ok() && normal {
                st.num_events += 1;
                crate::stats::vevents_add(1);
            } else if normal {
                res = Err(ENOMEM);
            }
        }
        self.wait.notify_all();
        res
    }

    /// `read()`: whole events only, as many as fit.
    fn read(&self, buf: &mut UserSliceWriter, offset: i64) -> Result<usize> {
        if offset != 0 {
            return Err(ESPIPE);
        }
        let count = buf.len();
        if count < HDR {
            return Err(EINVAL);
        }
        let mut done = 0usize;
        let mut res = Ok(());
        // One lock per event: the pop counts it out, an unpop back in.
        loop {
            let Some(e) = self.state.lock().pop() else {
                break;
            };
            if done >= count || HDR > count - done {
                self.state.lock().unpop(e);
                break;
            }
            if !e.is_lost() && e.len() > count - done {
                self.state.lock().unpop(e);
                if done == 0 {
                    res = Err(EINVAL);
                }
                break;
            }
            let hdr = VeventHeader {
                flags: if e.is_lost() {
                    IOMMU_VEVENTQ_FLAG_LOST_EVENTS
                } else {
                    0
                },
                sequence: e.sequence,
            };
            let copied = buf
                .write_slice(hdr.as_bytes())
                .and_then(|()| match &e.data {
                    Some(d) => buf.write_slice(d),
                    None => Ok(()),
                });
            if let Err(err) = copied {
                self.state.lock().unpop(e);
                res = Err(err);
                break;
            }
            done += e.len();
        }
        match (done, res) {
            (0, Err(e)) => Err(e),
            (n, _) => Ok(n),
        }
    }

    /// `poll()`: readable while events are queued.
    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.wait);
        if self.state.lock().is_empty() {
            0
        } else {
            bindings::POLLIN | bindings::POLLRDNORM
        }
    }
}

#[pinned_drop]
impl PinnedDrop for EventQueue {
    fn drop(self: Pin<&mut Self>) {
        // What user space never read.
        let st = self.state.lock();
        let left = st
            .events
            .iter()
            .skip(st.head)
            .filter(|e| !e.is_lost())
            .count();
        crate::stats::vevents_add(-(left as i64));
    }
}

/// A vEVENTQ object.
pub(crate) struct Veventq {
    queue: Arc<EventQueue>,
    viommu: Arc<Viommu>,
    /// The long-term user reference on the vIOMMU.
    _viommu_obj: ObjectRef,
}

impl ObjectData for Veventq {
    const TYPE: ObjectType = ObjectType::VEventq;

    fn on_destroy(&self, _ictx: &IommufdCtx, _id: u32) {
        // No event is reported into it any more.
        self.viommu.core.remove_veventq(&self.queue);
    }
}

struct VeventqFileOps;

#[vtable]
impl AnonFileOps for VeventqFileOps {
    type Data = KBox<QueueFile<EventQueue>>;
    const FOPS: &'static FileOps<Self> = kernel::anon_file_ops!(VeventqFileOps);

    fn read(data: &QueueFile<EventQueue>, buf: &mut UserSliceWriter, offset: i64) -> Result<usize> {
        data.queue.read(buf, offset)
    }

    fn poll(data: &QueueFile<EventQueue>, file: &File, table: PollTable<'_>) -> u32 {
        data.queue.poll(file, table)
    }
}

/// `IOMMU_VEVENTQ_ALLOC`, with upstream's checks in upstream's order.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuVeventqAlloc>) -> Result {
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.reserved != 0 || cmd.veventq_type == IOMMU_VEVENTQ_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    if cmd.veventq_depth == 0 || cmd.veventq_depth > VEVENTQ_MAX_DEPTH {
        return Err(EINVAL);
    }
    let ictx = ucmd.ictx;
    let viommu_obj = ictx.objects.get(cmd.viommu_id, ObjectType::Viommu)?;
    let viommu = Arc::from(viommu_obj.data::<Viommu>().ok_or(ENOENT)?);
    let queue = Arc::pin_init(
        try_pin_init!(EventQueue {
            queue_type: cmd.veventq_type,
            depth: cmd.veventq_depth,
            state <- new_spinlock!(QueueState {
                events: KVVec::new(),
                head: 0,
                num_events: 0,
                sequence: 0,
            }),
            wait: PollCondVarBox::new(c"EventQueue::wait", static_lock_class!())?,
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let veventq = Arc::new(
        Veventq {
            queue: queue.clone(),
            viommu: viommu.clone(),
            _viommu_obj: viommu_obj.into_long_term(),
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    let mut new = ictx.objects.reserve()?;
    new.prepare(ObjectKind::new(veventq))?;
    // One per type: the check and the insertion are one step under the vIOMMU's list lock.
    viommu.core.add_veventq(queue.clone())?;
    publish_with_file::<EventQueue, VeventqFileOps>(
        ictx,
        new,
        ObjectType::VEventq,
        queue.clone(),
        c"[iommufd-viommu-event]",
        |id, fd| {
            ucmd.cmd.out_veventq_id = id;
            ucmd.cmd.out_veventq_fd = fd;
            ucmd.respond()
        },
        || viommu.core.remove_veventq(&queue),
    )
}
