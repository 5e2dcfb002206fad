// SPDX-License-Identifier: GPL-2.0

//! An XArray that allocates its own indices.
//!
//! C header: [`include/linux/xarray.h`](srctree/include/linux/xarray.h)
//!
//! The kernel crate's [`kernel::xarray::XArray`] (Linux 7.3) stores values at
//! indices chosen by the caller; it has no wrapper for `xa_alloc()`. iommufd
//! needs the index to be chosen by the array (the object ids handed to user
//! space), and it needs to reserve an index before the value is published, as
//! upstream does with `xa_alloc(..., XA_ZERO_ENTRY, ...)` followed by a store.
//! This file is that thin wrapper, and the only place in the module that calls
//! the XArray C functions.
//!
//! Every C function used here is an exported symbol with a generated binding
//! (`__xa_alloc`, `__xa_store`, `__xa_erase`, `xa_load`, `xa_find`,
//! `xa_find_after`, `xa_destroy`) or a kernel-crate helper (`xa_init_flags`,
//! `xa_lock`, `xa_unlock`, `xa_err`). `xa_alloc()` itself is a static inline
//! around `__xa_alloc()` that only takes and drops the lock, which [`Guard`]
//! does instead.
//!
//! If the kernel crate gains index allocation, this file should go and the
//! object table should use [`kernel::xarray::XArray`] directly.

use core::{
    marker::PhantomData,
    ops::RangeInclusive,
    pin::Pin,
    ptr::{
        self,
        NonNull, //
    }, //
};
use kernel::{
    bindings,
    ffi::c_void,
    prelude::*,
    types::{
        ForeignOwnable,
        NotThreadSafe,
        Opaque, //
    }, //
};

/// An XArray whose indices are allocated by the array, starting at 1.
///
/// Index 0 is never handed out (`XA_FLAGS_ALLOC1`), like the object ids of
/// upstream iommufd. An index is either free, reserved (allocated but holding
/// no value yet, stored by C as `XA_ZERO_ENTRY`) or holds a value.
///
/// Memory for the array's nodes is allocated with `GFP_KERNEL_ACCOUNT`, so the
/// memory cgroup of the caller pays for it, as with C's `XA_FLAGS_ACCOUNT`.
/// (The kernel crate keeps the raw value of its [`kernel::alloc::Flags`]
/// private, so the flags are fixed here rather than passed in.)
///
/// # Invariants
///
/// `self.xa` is always an initialized and valid [`bindings::xarray`] created
/// with `XA_FLAGS_ALLOC1`, whose entries are either `XA_ZERO_ENTRY` or came
/// from `T::into_foreign`.
#[pin_data(PinnedDrop)]
pub(crate) struct AllocXArray<T: ForeignOwnable> {
    /// The C XArray.
    #[pin]
    xa: Opaque<bindings::xarray>,
    /// The array owns values of type `T`.
    _p: PhantomData<T>,
}

impl<T: ForeignOwnable> AllocXArray<T> {
    /// Creates an initializer for an empty array.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `xa` is valid for writes while the closure is called.
            //
            // INVARIANT: `xa` is initialized here to an empty, valid XArray
            // with `XA_FLAGS_ALLOC1`.
            xa <- Opaque::ffi_init(|xa| unsafe {
                bindings::xa_init_flags(xa, bindings::XA_FLAGS_ALLOC1)
            }),
            _p: PhantomData,
        })
    }

    /// Locks the array (the XArray's spinlock) for exclusive access.
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        // SAFETY: `self.xa` is always valid by the type invariant.
        unsafe { bindings::xa_lock(self.xa.get()) };

        Guard {
            xa: self,
            _not_send: NotThreadSafe,
        }
    }

    /// Returns the first value at an index at or after `*index`, and moves
    /// `*index` to it. Reserved indices are skipped.
    ///
    /// With `after` set, the search starts after `*index` instead.
    fn find(&self, index: &mut usize, after: bool) -> Option<NonNull<c_void>> {
        let ptr = if after {
            // SAFETY: `self.xa` is always valid by the type invariant, and
            // `xa_find_after` takes the RCU read lock it needs itself.
            unsafe {
                bindings::xa_find_after(self.xa.get(), index, usize::MAX, bindings::XA_PRESENT)
            }
        } else {
            // SAFETY: As above, for `xa_find`.
            unsafe { bindings::xa_find(self.xa.get(), index, usize::MAX, bindings::XA_PRESENT) }
        };
        NonNull::new(ptr)
    }
}

#[pinned_drop]
impl<T: ForeignOwnable> PinnedDrop for AllocXArray<T> {
    fn drop(self: Pin<&mut Self>) {
        let mut index = 0;
        let mut next = self.find(&mut index, false);
        while let Some(ptr) = next {
            // Look up the next entry before the current one is dropped.
            next = self.find(&mut index, true);
            // SAFETY: `ptr` came from `T::into_foreign` (reserved entries are
            // skipped by `xa_find`), and nothing else can reach the array any
            // more, so this is the only owner of the value.
            //
            // INVARIANT: The array is being dropped, so the stale entry left
            // behind until `xa_destroy` is not observable.
            drop(unsafe { T::from_foreign(ptr.as_ptr()) });
        }

        // SAFETY: `self.xa` is always valid by the type invariant, and no
        // value in it is used any more.
        unsafe { bindings::xa_destroy(self.xa.get()) };
    }
}

// SAFETY: `AllocXArray<T>` owns its values and has no thread-bound state, so
// it can be sent to another thread if `T` can.
unsafe impl<T: ForeignOwnable + Send> Send for AllocXArray<T> {}

// SAFETY: All access to the values goes through [`Guard`], which holds the
// XArray's spinlock, so shared access from several threads is serialised.
unsafe impl<T: ForeignOwnable + Send> Sync for AllocXArray<T> {}

/// Converts an index to the type the C functions take.
fn to_index(id: u32) -> usize {
    // CAST: `usize` is at least 32 bits wide on every architecture Linux
    // supports, so the conversion is lossless.
    id as usize
}

/// The locked state of an [`AllocXArray`]; the lock is released on drop.
#[must_use = "the lock unlocks immediately when the guard is unused"]
pub(crate) struct Guard<'a, T: ForeignOwnable> {
    /// The locked array.
    xa: &'a AllocXArray<T>,
    /// The spinlock must be released on the thread that took it.
    _not_send: NotThreadSafe,
}

impl<T: ForeignOwnable> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock, so it may release it.
        unsafe { bindings::xa_unlock(self.xa.xa.get()) };
    }
}

/// The error returned by [`Guard::store`], with the value that was not stored.
pub(crate) struct StoreError<T> {
    /// Why the store failed.
    pub(crate) error: Error,
    /// The value that was not stored.
    pub(crate) value: T,
}

impl<T: ForeignOwnable> Guard<'_, T> {
    /// Returns a reference to the value at `id`, or `None` if `id` is free or
    /// only reserved.
    pub(crate) fn get(&self, id: u32) -> Option<T::Borrowed<'_>> {
        // SAFETY: `self.xa.xa` is always valid by the type invariant.
        let ptr = unsafe { bindings::xa_load(self.xa.xa.get(), to_index(id)) };
        // `xa_load` turns a reserved entry into NULL.
        let ptr = NonNull::new(ptr)?;
        // SAFETY: `ptr` came from `T::into_foreign`, and the borrow cannot
        // outlive the guard, during which no one can remove the value.
        Some(unsafe { T::borrow(ptr.as_ptr()) })
    }

    /// Allocates the lowest free index in `range` and reserves it.
    ///
    /// The reserved index reads as empty ([`Guard::get`] returns `None`) until
    /// a value is stored there with [`Guard::store`]; [`Guard::remove`] frees
    /// it again. Fails with `EBUSY` when the range is full and `ENOMEM` when
    /// memory for the array runs out.
    ///
    /// May drop the lock to allocate memory and take it again, which is why
    /// it needs `&mut self`: no borrowed value survives the call.
    pub(crate) fn reserve(&mut self, range: RangeInclusive<u32>) -> Result<u32> {
        let limit = bindings::xa_limit {
            min: *range.start(),
            max: *range.end(),
        };
        let mut id = 0u32;
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock, as `__xa_alloc` requires.
        // - `id` is valid for writes.
        //
        // INVARIANT: A NULL entry makes `__xa_alloc` store `XA_ZERO_ENTRY` in
        // an array with `XA_FLAGS_ALLOC1`.
        let ret = unsafe {
            bindings::__xa_alloc(
                self.xa.xa.get(),
                &mut id,
                ptr::null_mut(),
                limit,
                bindings::GFP_KERNEL_ACCOUNT,
            )
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(id)
    }

    /// Stores `value` at `id`, normally an index reserved with
    /// [`Guard::reserve`].
    ///
    /// Returns the value previously stored at `id`, if any (a reserved index
    /// holds none). Storing into a reserved index needs no memory; otherwise
    /// the lock may be dropped to allocate, as for [`Guard::reserve`].
    pub(crate) fn store(&mut self, id: u32, value: T) -> Result<Option<T>, StoreError<T>> {
        build_assert!(
            T::FOREIGN_ALIGN >= 4,
            "pointers stored in an XArray must be 4-byte aligned"
        );
        let new = value.into_foreign();
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock, as `__xa_store` requires.
        //
        // INVARIANT: `new` came from `T::into_foreign`.
        let old = unsafe {
            bindings::__xa_store(
                self.xa.xa.get(),
                to_index(id),
                new,
                bindings::GFP_KERNEL_ACCOUNT,
            )
        };

        // SAFETY: `__xa_store` returns either the old entry or an error entry,
        // which `xa_err` tells apart.
        let errno = unsafe { bindings::xa_err(old) };
        if errno != 0 {
            // SAFETY: `new` came from `T::into_foreign`, and `__xa_store`
            // does not keep the entry when it fails.
            let value = unsafe { T::from_foreign(new) };
            return Err(StoreError {
                error: Error::from_errno(errno),
                value,
            });
        }
        // SAFETY: `old` is NULL (also for a reserved index, which `__xa_store`
        // reports as NULL) or came from `T::into_foreign`; it is no longer in
        // the array, and `&mut self` ends every borrow taken through `get`.
        Ok(unsafe { T::try_from_foreign(old) })
    }

    /// Frees the index `id`, returning the value stored there, if any.
    ///
    /// Also releases an index that is only reserved (and then returns `None`).
    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock, as `__xa_erase` requires.
        let ptr = unsafe { bindings::__xa_erase(self.xa.xa.get(), to_index(id)) };
        // SAFETY: `ptr` is NULL (also for a reserved index, which
        // `__xa_erase` reports as NULL) or came from `T::into_foreign`; it is
        // no longer in the array, and `&mut self` ends every borrow taken
        // through `get`.
        unsafe { T::try_from_foreign(ptr) }
    }

    /// Takes the value out of `id` and leaves the index reserved (upstream's tombstone,
    /// `XA_ZERO_ENTRY`): it reads as empty and is not handed out again until
    /// [`Guard::remove`] frees it or the array goes. Needs no memory.
    pub(crate) fn tombstone(&mut self, id: u32) -> Option<T> {
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock, as `__xa_store` requires.
        //
        // INVARIANT: A NULL entry stored into an array with `XA_FLAGS_ALLOC1` becomes
        // `XA_ZERO_ENTRY`; replacing an entry that exists allocates nothing.
        let old = unsafe {
            bindings::__xa_store(
                self.xa.xa.get(),
                to_index(id),
                ptr::null_mut(),
                bindings::GFP_KERNEL_ACCOUNT,
            )
        };
        // SAFETY: `__xa_store` returns either the old entry or an error entry.
        if unsafe { bindings::xa_err(old) } != 0 {
            return None;
        }
        // SAFETY: `old` is NULL or came from `T::into_foreign`; it is no longer in the array, and
        // `&mut self` ends every borrow taken through `get`.
        unsafe { T::try_from_foreign(old) }
    }

    /// Whether the array holds no entry at all, reserved indexes included.
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: `self.xa.xa` is always valid by the type invariant; the lock is held, so the
        // head pointer (NULL exactly when the array is empty, as `xa_empty` tests) is stable.
        unsafe { (*self.xa.xa.get()).xa_head.is_null() }
    }

    /// Returns the lowest index at or above `from` that holds a value, with the value.
    pub(crate) fn find_from(&self, from: u32) -> Option<(u32, T::Borrowed<'_>)> {
        let mut index = to_index(from);
        // SAFETY:
        // - `self.xa.xa` is always valid by the type invariant.
        // - This guard holds the lock; `xa_find` takes the RCU read lock itself.
        // - `index` is valid for reads and writes.
        let ptr = unsafe {
            bindings::xa_find(
                self.xa.xa.get(),
                &mut index,
                u32::MAX as usize,
                bindings::XA_PRESENT,
            )
        };
        let ptr = NonNull::new(ptr)?;
        let id = u32::try_from(index).ok()?;
        // SAFETY: `ptr` came from `T::into_foreign` (`xa_find` with `XA_PRESENT` skips
        // reserved entries); the borrow cannot outlive the guard.
        Some((id, unsafe { T::borrow(ptr.as_ptr()) }))
    }
}
