// SPDX-License-Identifier: GPL-2.0

//! Event queues that user space reads from a file: FAULT ([`fault`]), the page requests of
//! devices attached to HWPTs that take faults, answered by writing to the same file; and
//! vEVENTQ ([`veventq`]), the events of a vIOMMU of one type (a guest's event queue records).
//!
//! Both objects come with a file made the same way ([`publish_with_file`]): the file keeps the
//! context alive, as upstream's does, and holds a user reference on the object, so
//! `IOMMU_DESTROY` of it is `EBUSY` while the file is open. The object outlives the file.

use kernel::{
    bindings,
    fs::{
        anon_file::{
            self,
            AnonFileOps, //
        },
        file::FileDescriptorReservation,
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

use crate::{
    object::{
        NewObject,
        ObjectRef,
        ObjectType, //
    },
    IommufdCtx, //
};

pub(crate) mod fault;
pub(crate) mod veventq;

/// What the file of an event queue object owns.
pub(crate) struct QueueFile<Q> {
    /// Keeps the context alive while the file is open.
    _ctx: Arc<IommufdCtx>,
    /// The user reference on the object.
    _obj: ObjectRef,
    /// The queue the file reads (and for FAULT, answers).
    pub(crate) queue: Arc<Q>,
}

/// Publishes `new`, an event queue object of type `ty` made ready with
/// [`NewObject::prepare`], and gives user space a file `name` for its `queue` with the
/// operations `F`: `respond(id, fd)` writes both back. The file descriptor is installed only
/// once everything succeeded; on failure the object is taken out again and `undo` runs.
pub(crate) fn publish_with_file<Q, F>(
    ictx: ArcBorrow<'_, IommufdCtx>,
    new: NewObject<'_>,
    ty: ObjectType,
    queue: Arc<Q>,
    name: &'static CStr,
    respond: impl FnOnce(u32, u32) -> Result,
    undo: impl Fn(),
) -> Result
where
    Q: Send + Sync + 'static,
    F: AnonFileOps<Data = KBox<QueueFile<Q>>>,
{
    let fdr = match FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC) {
        Ok(fdr) => fdr,
        Err(e) => {
            undo();
            return Err(e);
        }
    };
    let id = new.id();
    if let Err(e) = new.finalize() {
        undo();
        return Err(e);
    }
    // From here on the object is visible; failures take it out again.
    let out = |e: Error| {
        ictx.objects.remove(id, ty);
        undo();
        e
    };
    let obj = ictx.objects.get(id, ty).map_err(out)?;
    let data = KBox::new(
        QueueFile {
            _ctx: ictx.into(),
            _obj: obj.into_long_term(),
            queue,
        },
        GFP_KERNEL,
    )
    .map_err(|e| out(e.into()))?;
    let file = anon_file::create::<F>(name, data, bindings::O_RDWR).map_err(out)?;
    if let Err(e) = respond(id, fdr.reserved_fd()) {
        drop(file);
        return Err(out(e));
    }
    fdr.fd_install(file);
    Ok(())
}
