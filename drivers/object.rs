// SPDX-License-Identifier: GPL-2.0

//! The per-file object table: ids, typed objects, users counts, and DESTROY.
//!
//! Every object a user creates on an iommufd file (IOAS, HWPT, device, ...)
//! gets an id from the file's table; ids start at 1 and the lowest free one
//! is used, as upstream's `xa_alloc()` with `XA_FLAGS_ALLOC1` and
//! `xa_limit_31b`.
//!
//! An object counts its *users*. The table holds one for as long as the
//! object is in it; every lookup ([`ObjectTable::get`]) holds another until
//! its [`ObjectRef`] is dropped, and later objects that depend on another one
//! (a HWPT on its IOAS, ...) will hold one for their lifetime. `IOMMU_DESTROY`
//! removes an object only while the table's is the only use and fails with
//! `EBUSY` otherwise, as upstream's `refcount_dec_if_one()` in
//! `iommufd_object_remove()`.
//!
//! A new object is created in two steps: [`ObjectTable::alloc`] reserves its
//! id (which looks up as nonexistent meanwhile), the command finishes
//! everything that can fail, including writing the id back to user space, and
//! [`NewObject::finalize`] then publishes the object. Dropping a
//! [`NewObject`] instead frees the id and the object again, so a failed
//! command leaves nothing behind (upstream's `iommufd_object_abort()`).
//!
//! All table operations run under the XArray's spinlock, so concurrent
//! ioctls on one file are serialised where they touch the table. Objects are
//! freed outside of it. When the file is released, the table and every object
//! in it are dropped.
//!
//! Upstream's second count, `wait_cnt`, lets in-kernel users (VFIO) wait for
//! short-lived references to go away before destroying an object; it comes
//! with those users.

use kernel::{
    prelude::*,
    sync::{
        atomic::Release,
        Arc,
        Refcount, //
    }, //
};

use crate::{
    access::Access,
    device::IDevice,
    hwpt::HwptPaging,
    ioas::Ioas,
    selftest::StDev,
    uapi::IommuDestroy,
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    xa::AllocXArray, //
    IommufdCtx,
};

/// The ids objects can get: `xa_limit_31b` with index 0 never used.
const ID_RANGE: core::ops::RangeInclusive<u32> = 1..=(i32::MAX as u32);

/// The type of an object (upstream's `enum iommufd_object_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ObjectType {
    /// An I/O address space (`IOMMUFD_OBJ_IOAS`).
    Ioas,
    Access,
    HwptPaging,
    Device,
    Selftest,
}

/// The type-specific part of an object.
pub(crate) enum ObjectKind {
    /// An I/O address space.
    Ioas(Arc<Ioas>),
    /// An in-kernel access.
    Access(Arc<Access>),
    /// A paging HWPT.
    HwptPaging(Arc<HwptPaging>),
    /// A bound device.
    Device(Arc<IDevice>),
    /// A selftest mock device (`IOMMU_TEST_OP_MOCK_DOMAIN`).
    Selftest(Arc<StDev>),
}

impl ObjectKind {
    /// Returns the type of this object.
    fn object_type(&self) -> ObjectType {
        match self {
            ObjectKind::Ioas(_) => ObjectType::Ioas,
            ObjectKind::Access(_) => ObjectType::Access,
            ObjectKind::HwptPaging(_) => ObjectType::HwptPaging,
            ObjectKind::Device(_) => ObjectType::Device,
            ObjectKind::Selftest(_) => ObjectType::Selftest,
        }
    }
}

/// An object in a file's table (upstream's `struct iommufd_object` together
/// with the structure that embeds it).
///
/// Its id is the index it is stored at; nothing needs it from the object yet.
pub(crate) struct Object {
    /// The users count: 1 for the table, plus one per [`ObjectRef`] and per
    /// dependent object. Never 0 while the object is in the table.
    users: Refcount,
    /// The type-specific state.
    kind: ObjectKind,
}

impl Drop for Object {
    fn drop(&mut self) {
        crate::stats::objects_add(-1);
    }
}

impl Object {
    /// A new object of `kind` with one user (the table's).
    fn new(kind: ObjectKind) -> Result<Arc<Object>> {
        // Counted before the allocation: if it fails, dropping the object uncounts it.
        crate::stats::objects_add(1);
        Arc::new(
            Object {
                users: Refcount::new(1),
                kind,
            },
            GFP_KERNEL_ACCOUNT,
        )
        .map_err(Into::into)
    }

    /// Returns the IOAS if this object is one.
    pub(crate) fn as_ioas(&self) -> Option<&Arc<Ioas>> {
        match &self.kind {
            ObjectKind::Ioas(ioas) => Some(ioas),
            _ => None,
        }
    }

    /// The paging HWPT, if this is one.
    pub(crate) fn as_hwpt_paging(&self) -> Option<&Arc<HwptPaging>> {
        match &self.kind {
            ObjectKind::HwptPaging(h) => Some(h),
            _ => None,
        }
    }

    /// The device, if this is one.
    pub(crate) fn as_device(&self) -> Option<&Arc<IDevice>> {
        match &self.kind {
            ObjectKind::Device(d) => Some(d),
            _ => None,
        }
    }

    /// The selftest device, if this is one.
    pub(crate) fn as_selftest(&self) -> Option<&Arc<StDev>> {
        match &self.kind {
            ObjectKind::Selftest(d) => Some(d),
            _ => None,
        }
    }

    /// What must happen when the object is destroyed, beyond dropping it: detaching a device,
    /// destroying the objects a selftest device owns.
    fn on_destroy(&self, ictx: &IommufdCtx, id: u32) {
        match &self.kind {
            ObjectKind::Selftest(st) => st.teardown(ictx),
            // A destroyed IOAS stops being the VFIO compat IOAS.
            ObjectKind::Ioas(_) => ictx.forget_vfio_ioas(id),
            _ => {}
        }
    }

    /// The access, if this is one.
    pub(crate) fn as_access(&self) -> Option<&Arc<Access>> {
        match &self.kind {
            ObjectKind::Access(access) => Some(access),
            _ => None,
        }
    }
}

/// A counted use of an object, taken by [`ObjectTable::get`] (upstream's
/// `iommufd_get_object()`/`iommufd_put_object()` pair).
///
/// While it exists, `IOMMU_DESTROY` of the object fails with `EBUSY`.
///
/// # Invariants
///
/// `self.obj.users` includes one count that belongs to this value.
pub(crate) struct ObjectRef {
    obj: Arc<Object>,
    id: u32,
    /// Whether this reference still holds its `users` count.
    counted: bool,
}

impl ObjectRef {
    /// The id of the object.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

impl core::ops::Deref for ObjectRef {
    type Target = Object;

    fn deref(&self) -> &Object {
        &self.obj
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        // The count taken in `ObjectTable::get` (type invariant), unless given back.
        if self.counted {
            self.obj.users.dec();
        }
    }
}

/// An object whose id is reserved but which is not visible yet.
///
/// [`NewObject::finalize`] publishes it; dropping it unpublished frees the id
/// and the object.
pub(crate) struct NewObject<'a> {
    /// The table the id is reserved in.
    table: &'a ObjectTable,
    /// The object (`None` while only the id is reserved).
    obj: Option<Arc<Object>>,
    /// The reserved id.
    id: u32,
    /// Whether the object has been stored at its id.
    published: bool,
}

impl NewObject<'_> {
    /// Returns the id the object will have.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Publishes an object of `kind` at the reserved id.
    pub(crate) fn publish(mut self, kind: ObjectKind) -> Result {
        self.obj = Some(Object::new(kind)?);
        self.finalize()
    }

    /// Publishes the object: from now on it can be looked up and destroyed.
    pub(crate) fn finalize(mut self) -> Result {
        let obj = self.obj.clone().ok_or(EINVAL)?;
        let res = self.table.xa.lock().store(self.id, obj);
        match res {
            Ok(None) => {
                self.published = true;
                Ok(())
            }
            Ok(Some(_other)) => {
                // Only this object may be stored at its reserved id, so this
                // is a bug (upstream WARNs here too). The displaced object is
                // freed once its last reference goes.
                pr_warn!("object id {} was not reserved\n", self.id);
                self.published = true;
                Ok(())
            }
            Err(e) => {
                // Only a second reference to the object, dropped outside the
                // lock; dropping `self` then frees the reserved id and the
                // object.
                drop(e.value);
                Err(e.error)
            }
        }
    }
}

impl Drop for NewObject<'_> {
    fn drop(&mut self) {
        if !self.published {
            // Frees the reservation; no value is stored at the id.
            let stale = self.table.xa.lock().remove(self.id);
            drop(stale);
        }
    }
}

/// The objects of one open iommufd file.
#[pin_data]
pub(crate) struct ObjectTable {
    /// The objects by id.
    #[pin]
    xa: AllocXArray<Arc<Object>>,
}

impl ObjectTable {
    /// Creates an initializer for an empty table.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            xa <- AllocXArray::new(),
        })
    }

    /// Creates an object of `kind` and reserves an id for it.
    ///
    /// The object stays invisible until [`NewObject::finalize`].
    pub(crate) fn alloc(&self, kind: ObjectKind) -> Result<NewObject<'_>> {
        let obj = Object::new(kind)?;
        let id = self.xa.lock().reserve(ID_RANGE)?;
        Ok(NewObject {
            table: self,
            obj: Some(obj),
            id,
            published: false,
        })
    }

    /// Reserves the next id for an object created later with [`NewObject::publish`]; ids are
    /// handed out in the order objects are started, as upstream does.
    pub(crate) fn reserve(&self) -> Result<NewObject<'_>> {
        let id = self.xa.lock().reserve(ID_RANGE)?;
        Ok(NewObject {
            table: self,
            obj: None,
            id,
            published: false,
        })
    }

    /// Looks up the object `id` of type `ty` and takes a use of it.
    ///
    /// Fails with `ENOENT` if there is no such object, if it is not published
    /// yet, or if it has another type (upstream's `iommufd_get_object()`).
    /// Looks up the object `id` whatever its type.
    pub(crate) fn get_any(&self, id: u32) -> Result<ObjectRef> {
        let guard = self.xa.lock();
        let obj = guard.get(id).ok_or(ENOENT)?;
        obj.users.inc();
        Ok(ObjectRef {
            obj: obj.into(),
            id,
            counted: true,
        })
    }

    /// Takes the object `id` out of the table if nobody else uses it (`EBUSY` otherwise),
    /// runs its destroy hook and drops it.
    pub(crate) fn destroy_with(&self, ictx: &IommufdCtx, id: u32) -> Result {
        let removed = {
            let mut guard = self.xa.lock();
            let obj = guard.get(id).ok_or(ENOENT)?;
            if obj.users.as_atomic().cmpxchg(1, 0, Release).is_err() {
                return Err(EBUSY);
            }
            guard.remove(id)
        };
        if let Some(obj) = removed {
            obj.on_destroy(ictx, id);
            drop(obj);
        }
        Ok(())
    }

    /// The lowest id at or above `from` holding an object.
    pub(crate) fn next_id(&self, from: u32) -> Option<u32> {
        self.xa.lock().find_from(from).map(|(id, _)| id)
    }

    pub(crate) fn get(&self, id: u32, ty: ObjectType) -> Result<ObjectRef> {
        let guard = self.xa.lock();
        let obj = guard.get(id).ok_or(ENOENT)?;
        if obj.kind.object_type() != ty {
            return Err(ENOENT);
        }
        // Objects in the table have a users count of at least 1, so this
        // cannot revive a dying object.
        obj.users.inc();
        // INVARIANT: The count just taken belongs to the new `ObjectRef`.
        Ok(ObjectRef {
            obj: obj.into(),
            id,
            counted: true,
        })
    }

    /// Removes the object `id` from the table and frees it.
    ///
    /// Fails with `ENOENT` if there is no such object (or it is not published
    /// yet) and `EBUSY` if anything else still uses it.
    /// Whether the table holds no object, counting ids reserved for objects being created.
    pub(crate) fn is_empty(&self) -> bool {
        self.xa.lock().is_empty()
    }

    /// Calls `f` on every object of type `ty`, holding a user reference to it during the call
    /// but not the table's lock.
    pub(crate) fn for_each(&self, ty: ObjectType, mut f: impl FnMut(&ObjectRef)) {
        let mut next = 0u32;
        loop {
            let found = {
                let guard = self.xa.lock();
                match guard.find_from(next) {
                    None => None,
                    Some((id, obj)) => {
                        if obj.kind.object_type() == ty {
                            obj.users.inc();
                            let obj: Arc<Object> = obj.into();
                            Some((
                                id,
                                Some(ObjectRef {
                                    obj,
                                    id,
                                    counted: true,
                                }),
                            ))
                        } else {
                            Some((id, None))
                        }
                    }
                }
            };
            match found {
                None => return,
                Some((id, obj)) => {
                    if let Some(obj) = obj {
                        f(&obj);
                    }
                    match id.checked_add(1) {
                        Some(n) => next = n,
                        None => return,
                    }
                }
            }
        }
    }

    /// Removes the object `id` of type `ty` whoever still uses it (the owner of an object that
    /// is not user-destroyable, such as an access, going away). Users keep the memory alive.
    pub(crate) fn remove(&self, id: u32, ty: ObjectType) {
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(id) {
                Some(obj) if obj.kind.object_type() == ty => guard.remove(id),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Removes the object `r` refers to from the table, if it is still there (its id may
    /// have been destroyed and reused meanwhile: then nothing happens). `r` keeps it alive.
    pub(crate) fn remove_same(&self, r: &ObjectRef) {
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(r.id) {
                Some(obj) if core::ptr::eq(&*obj, &*r.obj) => guard.remove(r.id),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Drops the reference `r` and destroys its object if nothing else uses it and it is
    /// still in the table (upstream's `put_and_try_destroy`).
    pub(crate) fn put_and_try_destroy(&self, ictx: &IommufdCtx, r: ObjectRef) {
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(r.id) {
                Some(obj)
                    if core::ptr::eq(&*obj, &*r.obj)
                        && obj.users.as_atomic().cmpxchg(2, 1, Release).is_ok() =>
                {
                    // Our count is given back above; the table's one goes with the entry.
                    let mut r = r;
                    r.counted = false;
                    match obj.users.as_atomic().cmpxchg(1, 0, Release) {
                        Ok(_) => guard.remove(r.id).map(|o| (r.id, o)),
                        Err(_) => None,
                    }
                }
                _ => {
                    drop(r);
                    None
                }
            }
        };
        if let Some((id, obj)) = removed {
            obj.on_destroy(ictx, id);
            drop(obj);
        }
    }
}

impl UserCmd for IommuDestroy {
    const MIN_SIZE: usize = core::mem::offset_of!(IommuDestroy, id) + size_of::<u32>();
}

/// `IOMMU_DESTROY`: destroys the object `cmd.id`.
pub(crate) fn destroy_ioctl(ucmd: &mut Ucmd<'_, IommuDestroy>) -> Result {
    ucmd.ictx.destroy_object(ucmd.cmd.id)
}
