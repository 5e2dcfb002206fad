// SPDX-License-Identifier: GPL-2.0

//! Files without a path (`anon_inode_getfile`), owning a Rust value.
//!
//! Subsystems hand such files to user space as file descriptors (an event queue, a test
//! object). The value lives as long as the file: it is dropped when the last reference to the
//! file goes away.
//!
//! C header: [`include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h)

use crate::{
    bindings,
    error::{
        from_err_ptr,
        Result,
        VTABLE_DEFAULT_ERROR, //
    },
    fs::{
        File,
        LocalFile, //
    },
    module::this_module,
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        poll::PollTable, //
    },
    types::ForeignOwnable,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    }, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// The behaviour of an anonymous file whose private data is a `T`.
#[vtable]
pub trait AnonFileOps: Sized + 'static {
    /// The value the file owns.
    type Data: ForeignOwnable + Send + Sync;

    /// The file operations of the type's files: a `static` of the type's own, made with
    /// [`anon_file_ops!`](crate::anon_file_ops).
    ///
    /// [`data`] recognises the type's files by the address of this table (`file->f_op`). Rust
    /// guarantees that a `static` has one address and that two statics do not share one; it
    /// guarantees neither for functions nor for constants, so the table must be a `static`.
    const FOPS: &'static FileOps<Self>;

    /// Reads into `buf` (`read`); `offset` is the file position, which the file may use or
    /// refuse. Returns the number of bytes read.
    fn read(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _buf: &mut UserSliceWriter,
        _offset: i64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes from `buf` (`write`); returns the number of bytes written.
    fn write(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _buf: &mut UserSliceReader,
        _offset: i64,
    ) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Tells which of `POLLIN`, `POLLOUT`... the file is ready for (`poll`), after registering
    /// its wait queues in `table`.
    fn poll(
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _table: PollTable<'_>,
    ) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `file_operations` of the files of an [`AnonFileOps`] implementation `T`.
#[repr(transparent)]
pub struct FileOps<T: AnonFileOps>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is never changed after it is built; it holds function pointers and the
// owner module's pointer, which any thread may read.
unsafe impl<T: AnonFileOps> Sync for FileOps<T> {}

impl<T: AnonFileOps> FileOps<T> {
    /// The table for `T`; only for the `static` of [`anon_file_ops!`](crate::anon_file_ops).
    #[doc(hidden)]
    pub const fn build() -> Self {
        Self(Vtable::<T>::VTABLE, PhantomData)
    }

    fn as_raw(&'static self) -> *const bindings::file_operations {
        &self.0
    }
}

/// The value of [`AnonFileOps::FOPS`] for the type `$t`: a reference to a `static` of its own.
///
/// ```ignore
/// impl AnonFileOps for MyFile {
///     type Data = KBox<MyData>;
///     const FOPS: &'static FileOps<Self> = kernel::anon_file_ops!(MyFile);
/// }
/// ```
#[macro_export]
macro_rules! anon_file_ops {
    ($t:ty) => {{
        static FOPS: $crate::fs::anon_file::FileOps<$t> = $crate::fs::anon_file::FileOps::build();
        &FOPS
    }};
}

/// Builds the `file_operations` of an [`AnonFileOps`] implementation.
struct Vtable<T: AnonFileOps>(PhantomData<T>);

impl<T: AnonFileOps> Vtable<T> {
    const VTABLE: bindings::file_operations = bindings::file_operations {
        release: Some(Self::release),
        read: if T::HAS_READ { Some(Self::read) } else { None },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        poll: if T::HAS_POLL { Some(Self::poll) } else { None },
        owner: this_module::<T::OwnerModule>().as_ptr(),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// Called by the VFS with a file made by [`create`] (not released yet), a user buffer of
    /// `count` bytes and a valid position.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: `private_data` came from `T::Data::into_foreign` in `create` and stays valid
        // until `release`, which cannot run during this call.
        let data = unsafe { <T::Data as ForeignOwnable>::borrow((*file).private_data.cast()) };
        let mut writer = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
        // SAFETY: `ppos` is valid for the call.
        let pos = unsafe { *ppos };
        match T::read(data, &mut writer, pos) {
            // CAST: The VFS caps a read at `MAX_RW_COUNT`, far below `isize::MAX`.
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// As for `read`.
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: As in `read`.
        let data = unsafe { <T::Data as ForeignOwnable>::borrow((*file).private_data.cast()) };
        let mut reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        // SAFETY: `ppos` is valid for the call.
        let pos = unsafe { *ppos };
        match T::write(data, &mut reader, pos) {
            // CAST: As in `read`.
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS with a file made by [`create`] and a valid (or NULL) poll table.
    unsafe extern "C" fn poll(
        file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> bindings::__poll_t {
        // SAFETY: As in `read`.
        let data = unsafe { <T::Data as ForeignOwnable>::borrow((*file).private_data.cast()) };
        // SAFETY: `file` is valid for the call.
        let f = unsafe { File::from_raw_file(file) };
        // SAFETY: The table is valid (or NULL) for the call.
        let table = unsafe { PollTable::from_raw(table) };
        T::poll(data, f, table)
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to a file made by [`create`] is
    /// dropped; `file->private_data` is the pointer [`create`] stored.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
        // SAFETY: `file` is valid for the duration of this call.
        let data = unsafe { (*file).private_data };
        // SAFETY: `data` came from `T::Data::into_foreign` in `create`, and this is the only
        // place that takes it back, once.
        drop(unsafe { <T::Data as ForeignOwnable>::from_foreign(data.cast()) });
        0
    }
}

/// Creates an anonymous file named `name` (shown as `anon_inode:name`) that owns `data`.
///
/// `flags` are the open flags (`O_RDWR`, `O_CLOEXEC`...). The file is not in any descriptor
/// table yet; see [`crate::fs::file::FileDescriptorReservation`].
pub fn create<T: AnonFileOps>(
    name: &'static CStr,
    data: T::Data,
    flags: u32,
) -> Result<ARef<File>> {
    let ptr = data.into_foreign();
    // SAFETY: `name` is a NUL-terminated static string; the vtable is a static; `ptr` is handed
    // to the file and given back to `release`.
    let file = unsafe {
        bindings::anon_inode_getfile(name.as_char_ptr(), T::FOPS.as_raw(), ptr.cast(), flags as _)
    };
    let file = match from_err_ptr(file) {
        Ok(f) => f,
        Err(e) => {
            // SAFETY: The file was not created, so `ptr` is still ours.
            drop(unsafe { <T::Data as ForeignOwnable>::from_foreign(ptr) });
            return Err(e);
        }
    };
    // SAFETY: `anon_inode_getfile` returned a file with one reference, which `ARef` takes.
    Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) })
}

/// Returns the data of `file` if it is an anonymous file of `T` made by [`create`].
pub fn data<T: AnonFileOps>(file: &LocalFile) -> Option<<T::Data as ForeignOwnable>::Borrowed<'_>> {
    let raw = file.as_ptr();
    // SAFETY: `raw` is a valid file; `f_op` is set when the file is made and does not change.
    let f_op = unsafe { (*raw).f_op };
    // Only files made by `create::<T>` use `T`'s static table.
    if !core::ptr::eq(f_op, T::FOPS.as_raw()) {
        return None;
    }
    // SAFETY: The file is one of ours, so `private_data` came from `T::Data::into_foreign`
    // and stays valid until the file is released, which cannot happen while `file` is borrowed.
    Some(unsafe { <T::Data as ForeignOwnable>::borrow((*raw).private_data.cast()) })
}
