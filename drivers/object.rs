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
//! An object also counts its *short-term users* (upstream's `wait_cnt`): the
//! table holds one, every lookup another for as long as its [`ObjectRef`]
//! lives (an ioctl's use, an unmap notifying an access). A reference an object
//! keeps for its lifetime (a HWPT on its IOAS, an in-kernel user's hold on its
//! device or access) is made long-term with [`ObjectRef::into_long_term`] and
//! counts only as a user. The in-kernel destroy paths
//! ([`ObjectTable::destroy_user`]: `iommufd_device_unbind()`,
//! `iommufd_access_destroy()`, the selftest's access fds) first give back the
//! table's short-term count and wait until no short-term user is left; from
//! then on lookups fail with `ENOENT`, so when they return, no ioctl and no
//! callback into the object's owner is running or can start. `IOMMU_DESTROY`
//! does not wait: any user makes it `EBUSY`, as upstream.

pub(crate) mod xa;

use core::any::Any;

use kernel::{
    new_condvar,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc,
        ArcBorrow,
        CondVar,
        Refcount,
        SpinLock, //
    }, //
};

use crate::{
    object::xa::AllocXArray, //
    uapi::IommuDestroy,
    ucmd::{
        Ucmd,
        UserCmd, //
    },
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
    HwptNested,
    Device,
    Fault,
    Viommu,
    VDevice,
    VEventq,
    HwQueue,
    Selftest,
}

/// A type of object: what the table holds for each object of it (upstream's structures that
/// embed `struct iommufd_object`).
///
/// The table knows no type: each one implements this trait in its own module, with its tag and
/// what its destroy does beyond dropping it.
pub(crate) trait ObjectData: Send + Sync + 'static {
    /// The type's tag: what lookups by type compare.
    const TYPE: ObjectType;

    /// What must happen when the object is destroyed, after it left the table and no short-term
    /// user is left, before the table's reference is dropped.
    fn on_destroy(&self, _ictx: &IommufdCtx, _id: u32) {}

    /// An object this one holds that its destroyer should free after it, rather than this
    /// object's drop (asked after [`ObjectData::on_destroy`]).
    ///
    /// The freeing is the same either way; what changes is the stack it runs on. An object freed
    /// by the drop of another one is freed some frames deeper (the drops of two `Arc`s and their
    /// boxes), and on a kernel that records a stack trace for every allocation and free (KASAN,
    /// kmemleak) each of those frames costs at every allocation and free below it. A selftest
    /// device, whose DEVICE object removes a mock device, uses it.
    fn free_after(&self) -> Option<Held> {
        None
    }
}

/// A reference that keeps an object's memory alive (not a use: it counts for neither
/// `IOMMU_DESTROY` nor a destroyer), for [`ObjectData::free_after`].
pub(crate) struct Held {
    obj: Option<Arc<Object>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            drop(Object::data_last(obj));
        }
    }
}

/// The type-erased face of an object's data.
trait Kind: Send + Sync {
    fn object_type(&self) -> ObjectType;
    fn on_destroy(&self, ictx: &IommufdCtx, id: u32);
    fn free_after(&self) -> Option<Held>;
    /// The data, to be downcast.
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

impl<T: ObjectData> Kind for T {
    fn object_type(&self) -> ObjectType {
        T::TYPE
    }

    fn on_destroy(&self, ictx: &IommufdCtx, id: u32) {
        ObjectData::on_destroy(self, ictx, id)
    }

    fn free_after(&self) -> Option<Held> {
        ObjectData::free_after(self)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
}

/// The data of a new object, whatever its type: its `Arc`, type-erased in place (no allocation
/// of its own).
pub(crate) struct ObjectKind(Arc<dyn Kind>);

impl ObjectKind {
    /// The data of an object of type `T`.
    pub(crate) fn new<T: ObjectData>(data: Arc<T>) -> ObjectKind {
        ObjectKind(data)
    }

    fn object_type(&self) -> ObjectType {
        self.0.object_type()
    }
}

/// An object in a file's table (upstream's `struct iommufd_object` together
/// with the structure that embeds it).
///
/// Its id is the index it is stored at; nothing needs it from the object yet.
#[pin_data(PinnedDrop)]
pub(crate) struct Object {
    /// The users count: 1 for the table, plus one per [`ObjectRef`] and per
    /// dependent object. Never 0 while the object is in the table.
    users: Refcount,
    /// The short-term users count (upstream's `wait_cnt`): 1 for the table, plus one per
    /// short-term [`ObjectRef`]. Once it is 0 it never rises again: lookups fail.
    wait_cnt: Refcount,
    /// Set (under the table's lock) when an in-kernel owner starts destroying the object: from
    /// then on no new short-term use is taken, so the destroyer only waits for those in flight.
    dying: Atomic<bool>,
    /// Where a destroyer waits for `wait_cnt` to reach 0 (upstream has one wait queue per
    /// context; one per object needs no allocation of its own and wakes only its destroyer).
    #[pin]
    drain: Drain,
    /// The type-specific state.
    kind: ObjectKind,
}

/// The wait queue of an object's destroyer (upstream's `ictx->destroy_wait`).
#[pin_data]
struct Drain {
    /// Orders a waiter's check of `wait_cnt` against the last user's wake-up.
    #[pin]
    lock: SpinLock<()>,
    #[pin]
    cv: CondVar,
}

impl Drain {
    fn new() -> impl PinInit<Drain> {
        pin_init!(Drain {
            lock <- new_spinlock!(()),
            cv <- new_condvar!(),
        })
    }

    /// Wakes the destroyers after some `wait_cnt` reached 0.
    fn wake(&self) {
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }
}

#[pinned_drop]
impl PinnedDrop for Object {
    fn drop(self: Pin<&mut Self>) {
        crate::stats::objects_add(-1);
    }
}

impl Object {
    /// A new object of `kind` with one user (the table's).
    fn new(kind: ObjectKind) -> Result<Arc<Object>> {
        let obj = Arc::pin_init(
            pin_init!(Object {
                users: Refcount::new(1),
                wait_cnt: Refcount::new(1),
                dying: Atomic::new(false),
                drain <- Drain::new(),
                kind,
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // Counted once it exists: its drop uncounts it.
        crate::stats::objects_add(1);
        Ok(obj)
    }

    /// Takes a short-term use unless the object is being destroyed (`wait_cnt` already 0).
    ///
    /// The caller holds the table's lock with the object in the table (so `users` is not 0), or
    /// holds a use of its own.
    fn try_get_short(&self) -> bool {
        if self.dying.load(Relaxed) {
            return false;
        }
        let wait = self.wait_cnt.as_atomic();
        let mut cur = wait.load(Relaxed);
        loop {
            if cur == 0 {
                return false;
            }
            match wait.cmpxchg(cur, cur + 1, Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.users.inc();
        true
    }

    /// Gives back one short-term use; the last one wakes the destroyers.
    fn put_short(&self) {
        if self.wait_cnt.dec_and_test() {
            self.drain.wake();
        }
    }

    /// Gives back `n` short-term uses (the table's, and the caller's if it had one) and waits
    /// until every other short-term user has given back its own (upstream's
    /// `iommufd_object_dec_wait()`). Afterwards no new short-term use can be taken.
    fn drain_short(&self, n: i32) {
        let wait = self.wait_cnt.as_atomic();
        let mut cur = wait.load(Relaxed);
        loop {
            if cur < n {
                // A broken count: there is nothing sound left to wait for.
                kernel::warn_on!(true);
                return;
            }
            match wait.cmpxchg(cur, cur - n, Release) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur == n {
            return;
        }
        let mut guard = self.drain.lock.lock();
        while wait.load(Acquire) != 0 {
            self.drain.cv.wait(&mut guard);
        }
    }

    /// The object's data if it is a `T`, borrowed from the object (`Arc::from()` of it takes a
    /// reference of its own).
    pub(crate) fn data<T: ObjectData>(&self) -> Option<ArcBorrow<'_, T>> {
        if !self.kind.0.as_any().is::<T>() {
            return None;
        }
        let ptr = Arc::as_ptr(&self.kind.0).cast::<T>();
        // SAFETY: `self.kind.0` is an `Arc<T>` (its data was just found to be a `T`) coerced to
        // `Arc<dyn Kind>`, so `ptr` is what `Arc::as_ptr()` of that `Arc<T>` returns. The object
        // holds that `Arc` for as long as the borrow of `self`, so the count stays above zero, and
        // no `UniqueArc` to the data exists once it is shared.
        Some(unsafe { ArcBorrow::from_raw(ptr) })
    }

    /// Finishes the destruction of `obj`, out of the table and without short-term users: runs
    /// its type's [`ObjectData::on_destroy`], then drops it, then what it asked to be freed after
    /// it ([`ObjectData::free_after`]).
    fn finish(obj: Arc<Object>, ictx: &IommufdCtx, id: u32) {
        obj.kind.0.on_destroy(ictx, id);
        let after = obj.kind.0.free_after();
        drop(Self::data_last(obj));
        drop(after);
    }

    /// Drops `obj` and returns its data, so that the caller drops the data last: the data's
    /// drop (where the work of freeing an object is) then runs two frames higher than under the
    /// object's own drop (see [`ObjectData::free_after`]).
    fn data_last(obj: Arc<Object>) -> Arc<dyn Kind> {
        let data = obj.kind.0.clone();
        drop(obj);
        data
    }
}

/// A counted use of an object, taken by [`ObjectTable::get`] (upstream's
/// `iommufd_get_object()`/`iommufd_put_object()` pair).
///
/// While it exists, `IOMMU_DESTROY` of the object fails with `EBUSY`. It starts as a short-term
/// use, which an in-kernel destroyer waits for; [`ObjectRef::into_long_term`] makes it a use an
/// object keeps for its lifetime.
///
/// # Invariants
///
/// While `counted`, `self.obj.users` includes one count that belongs to this value, and while
/// also `short`, so does `self.obj.wait_cnt`.
pub(crate) struct ObjectRef {
    obj: Arc<Object>,
    id: u32,
    /// Whether this reference still holds its `users` count.
    counted: bool,
    /// Whether it also holds a short-term (`wait_cnt`) count.
    short: bool,
}

impl ObjectRef {
    /// The id of the object.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// A reference that keeps the object's memory alive, for [`ObjectData::free_after`].
    pub(crate) fn hold(&self) -> Held {
        Held {
            obj: Some(self.obj.clone()),
        }
    }

    /// Makes this a long-term use: it keeps counting as a user (`IOMMU_DESTROY` stays `EBUSY`),
    /// but an in-kernel destroyer no longer waits for it (upstream's `refcount_inc(&obj->users)`
    /// of a dependent object).
    pub(crate) fn into_long_term(mut self) -> ObjectRef {
        if self.counted && self.short {
            // INVARIANT: The short-term count is given back here and no longer owned.
            self.short = false;
            self.obj.put_short();
        }
        self
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
        // The counts taken in `ObjectTable::get` (type invariant), unless given back. Users
        // first, then the short-term count, so a waiting destroyer never sees a short-term count
        // of 0 with this user still counted.
        if self.counted {
            self.obj.users.dec();
            if self.short {
                self.obj.put_short();
            }
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
        self.prepare(kind)?;
        self.finalize()
    }

    /// Creates the object of `kind` for the reserved id without publishing it: afterwards
    /// [`NewObject::finalize`] cannot fail for want of memory, so a command can write the id
    /// back to user space in between.
    pub(crate) fn prepare(&mut self, kind: ObjectKind) -> Result {
        self.obj = Some(Object::new(kind)?);
        Ok(())
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
                kernel::warn_on!(true);
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
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            xa <- AllocXArray::new(),
        })
    }

    /// Makes a reference that holds the counts just taken with [`Object::try_get_short`].
    fn short_ref(obj: Arc<Object>, id: u32) -> ObjectRef {
        // INVARIANT: The caller took a user and a short-term count for the new reference.
        ObjectRef {
            obj,
            id,
            counted: true,
            short: true,
        }
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
        let obj: Arc<Object> = guard.get(id).ok_or(ENOENT)?.into();
        // An object whose destroyer is waiting looks up as gone.
        if !obj.try_get_short() {
            return Err(ENOENT);
        }
        Ok(Self::short_ref(obj, id))
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
            // Users was 1, so only a short-term user that already gave back its user count can
            // still hold a short-term one; it is about to give it back.
            obj.drain_short(1);
            Object::finish(obj, ictx, id);
        }
        Ok(())
    }

    /// Destroys the object `r` refers to, for an in-kernel owner that holds `r` as a long-term
    /// use (upstream's `iommufd_object_destroy_user()`): waits until no short-term user is left
    /// (no new one can start meanwhile), runs `before_remove`, then takes the object out of the
    /// table, runs its destroy hook and drops it. Nothing of the object runs afterwards, unless
    /// something other than short-term users still uses it, which is a bug (the object then
    /// stays in the table until the file is closed).
    pub(crate) fn destroy_user(
        &self,
        ictx: &IommufdCtx,
        r: ObjectRef,
        before_remove: impl FnOnce(),
    ) {
        self.destroy_user_as(ictx, r, before_remove, false)
    }

    /// Destroys the object `r` refers to as [`ObjectTable::destroy_user`] does, but leaves its
    /// id taken (upstream's `iommufd_object_tombstone_user()`): user space that still names it
    /// gets `ENOENT` rather than another object, until the file is closed.
    pub(crate) fn tombstone_user(&self, ictx: &IommufdCtx, r: ObjectRef) {
        self.destroy_user_as(ictx, r, || {}, true)
    }

    fn destroy_user_as(
        &self,
        ictx: &IommufdCtx,
        r: ObjectRef,
        before_remove: impl FnOnce(),
        tombstone: bool,
    ) {
        let r = r.into_long_term();
        let same = {
            let guard = self.xa.lock();
            let same = guard.get(r.id).is_some_and(|o| core::ptr::eq(&*o, &*r.obj));
            if same {
                // Lookups run under this lock: none takes a new short-term use from now on.
                r.obj.dying.store(true, Relaxed);
            }
            same
        };
        if !same {
            // The owner's use keeps user space from destroying the object, so it must still be
            // in the table.
            kernel::warn_on!(true);
            before_remove();
            return;
        }
        // The table's short-term count; afterwards lookups fail.
        r.obj.drain_short(1);
        before_remove();
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(r.id) {
                Some(obj)
                    if core::ptr::eq(&*obj, &*r.obj)
                        && obj.users.as_atomic().cmpxchg(2, 0, Release).is_ok() =>
                {
                    if tombstone {
                        guard.tombstone(r.id)
                    } else {
                        guard.remove(r.id)
                    }
                }
                _ => None,
            }
        };
        match removed {
            Some(obj) => {
                let id = r.id;
                let mut r = r;
                // INVARIANT: Our user count went with the table's above.
                r.counted = false;
                drop(r);
                Object::finish(obj, ictx, id);
            }
            None => {
                // Something still uses it: a bug. Restore the table's short-term count so the
                // object keeps working until close destroys it.
                kernel::warn_on!(true);
                r.obj.wait_cnt.set(1);
                r.obj.dying.store(false, Relaxed);
            }
        }
    }

    /// The lowest id at or above `from` holding an object.
    pub(crate) fn next_id(&self, from: u32) -> Option<u32> {
        self.xa.lock().find_from(from).map(|(id, _)| id)
    }

    pub(crate) fn get(&self, id: u32, ty: ObjectType) -> Result<ObjectRef> {
        let guard = self.xa.lock();
        let obj: Arc<Object> = guard.get(id).ok_or(ENOENT)?.into();
        if obj.kind.object_type() != ty {
            return Err(ENOENT);
        }
        // Objects in the table have a users count of at least 1, so this cannot revive a dying
        // object; one whose destroyer waits for short-term users looks up as gone.
        if !obj.try_get_short() {
            return Err(ENOENT);
        }
        Ok(Self::short_ref(obj, id))
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
                        let obj: Arc<Object> = obj.into();
                        // Objects being destroyed by an in-kernel owner are skipped.
                        if obj.kind.object_type() == ty && obj.try_get_short() {
                            Some((id, Some(Self::short_ref(obj, id))))
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
        if let Some(obj) = removed {
            // The table's short-term count goes with its entry.
            obj.put_short();
        }
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
        if let Some(obj) = removed {
            // The table's short-term count goes with its entry.
            obj.put_short();
        }
    }

    /// Drops the reference `r` and destroys its object if nothing else uses it and it is
    /// still in the table (upstream's `put_and_try_destroy`).
    pub(crate) fn put_and_try_destroy(&self, ictx: &IommufdCtx, r: ObjectRef) {
        // The short-term counts to give back if the object goes: the table's, and ours.
        let shorts = if r.counted && r.short { 2 } else { 1 };
        let id = r.id;
        // What to drop once the table's lock is released: the object if it goes, or else our
        // reference (dropping either may free the object, which takes sleeping locks).
        let (removed, kept) = {
            let mut guard = self.xa.lock();
            match guard.get(id) {
                Some(obj)
                    if r.counted
                        && core::ptr::eq(&*obj, &*r.obj)
                        && obj.users.as_atomic().cmpxchg(2, 0, Release).is_ok() =>
                {
                    // Our user count and the table's go together; our short-term count, if
                    // any, is given back below with the table's.
                    let mut r = r;
                    // INVARIANT: Neither count belongs to `r` any more.
                    r.counted = false;
                    (guard.remove(id), Some(r))
                }
                _ => (None, Some(r)),
            }
        };
        drop(kept);
        if let Some(obj) = removed {
            obj.drain_short(shorts);
            Object::finish(obj, ictx, id);
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
