// SPDX-License-Identifier: GPL-2.0

//! DMA-buf: buffers shared between drivers through file descriptors.
//!
//! Two sides are covered:
//!
//! - Exporters whose memory is described by physical address ranges and that do not build
//!   scatter-gather tables: [`DmaBuf::export`] wraps a value implementing [`Exporter`] in a new
//!   dma-buf, which owns the value until its last reference is gone; [`DmaBuf::exporter_data`]
//!   recognises such buffers again.
//! - Dynamic importers ([`DynamicAttachment`]): an attachment that pins the buffer and is told
//!   through [`Importer::invalidate_mappings`] when the exporter takes the memory away (moves or
//!   revokes it), so the importer can stop using it.
//!
//! Both sides coordinate under the buffer's reservation lock ([`DmaBuf::lock_resv`]).
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    io::PhysAddr,
    module::this_module,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc,
        ArcBorrow, //
    },
    types::{
        ForeignOwnable,
        NotThreadSafe,
        Opaque, //
    },
    ModuleMetadata, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// A physically contiguous range of memory (`struct phys_vec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysVec {
    /// Physical address of the first byte.
    pub paddr: PhysAddr,
    /// Length in bytes.
    pub len: usize,
}

impl PhysVec {
    /// The physical range of the memory of `v`.
    ///
    /// A [`KVec`] is allocated with `kmalloc`, so its memory is physically contiguous and in
    /// the kernel's linear map. An empty vector has no memory: its range is empty.
    pub fn of_kvec<T>(v: &KVec<T>) -> Self {
        let len = core::mem::size_of_val(v.as_slice());
        if len == 0 {
            return Self { paddr: 0, len: 0 };
        }
        // SAFETY: `v` has `len != 0` bytes allocated by `kmalloc`, a linear-map address, for
        // which `virt_to_phys` only computes the physical address.
        let paddr = unsafe { bindings::virt_to_phys(v.as_ptr().cast_mut().cast()) };
        Self { paddr, len }
    }
}

/// A dma-buf (`struct dma_buf`).
///
/// # Invariants
///
/// The object is a valid `struct dma_buf` for as long as a reference to its file is held; every
/// [`ARef<DmaBuf>`] holds one.
#[repr(transparent)]
pub struct DmaBuf(Opaque<bindings::dma_buf>);

// SAFETY: A dma-buf is reference counted through its file and may be used and released from
// any thread.
unsafe impl Send for DmaBuf {}
// SAFETY: The methods taking `&self` either read fields fixed at export time or take the
// reservation lock.
unsafe impl Sync for DmaBuf {}

// SAFETY: `get_dma_buf` and `dma_buf_put` take and drop a reference to the buffer's file, which
// keeps the buffer alive.
unsafe impl AlwaysRefCounted for DmaBuf {
    fn inc_ref(&self) {
        // SAFETY: The buffer is valid (type invariant), so one more reference may be taken.
        unsafe { bindings::get_dma_buf(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns one reference, which is given back here.
        unsafe { bindings::dma_buf_put(obj.as_ptr().cast()) };
    }
}

impl DmaBuf {
    /// Returns the raw `struct dma_buf` pointer.
    pub fn as_raw(&self) -> *mut bindings::dma_buf {
        self.0.get()
    }

    /// Takes a reference to the dma-buf open as `fd` in the current process (`dma_buf_get`).
    ///
    /// Fails with `EBADF` if `fd` is not open and with `EINVAL` if its file is not a dma-buf.
    pub fn get(fd: i32) -> Result<ARef<Self>> {
        // SAFETY: `dma_buf_get` accepts any descriptor number.
        let ptr = from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
        // SAFETY: On success `dma_buf_get` returns a valid buffer with a reference the caller
        // owns, which `ARef` takes over.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast::<Self>())) })
    }

    /// Size of the buffer in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: The buffer is valid (type invariant).
        unsafe { bindings::dma_buf_size_of(self.as_raw()) }
    }

    /// Exports `data` as a new dma-buf of `size` bytes whose file is opened with `flags`
    /// (`O_CLOEXEC`, access mode...).
    ///
    /// The buffer owns `data`; it is dropped when the last reference to the buffer is gone.
    pub fn export<T: Exporter>(
        data: impl PinInit<T, Error>,
        size: usize,
        flags: u32,
    ) -> Result<ARef<Self>> {
        let data = KBox::pin_init(data, GFP_KERNEL)?;
        let ptr = data.into_foreign();
        // SAFETY: The ops table is a constant with the callbacks `dma_buf_export` requires; the
        // module name is a static string; `ptr` is handed to the buffer and given back to
        // `ExportVtable::release`, or below if the export fails.
        let buf = unsafe {
            bindings::dma_buf_export_simple(
                T::OPS.as_raw(),
                size,
                flags as i32,
                ptr,
                this_module::<T::OwnerModule>().as_ptr(),
                <T::OwnerModule as ModuleMetadata>::NAME.as_char_ptr(),
            )
        };
        match from_err_ptr(buf) {
            // SAFETY: A new buffer comes with one reference, which `ARef` takes over.
            Ok(buf) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(buf.cast::<Self>())) }),
            Err(e) => {
                // SAFETY: The export failed, so `ptr` was not taken and is still ours.
                drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(ptr) });
                Err(e)
            }
        }
    }

    /// Installs a new file descriptor for the buffer in the current process, opened with
    /// `flags` (`dma_buf_fd`), and returns it.
    ///
    /// The descriptor takes over the reference `this` holds; on failure the reference is
    /// dropped.
    pub fn install_fd(this: ARef<Self>, flags: u32) -> Result<u32> {
        // SAFETY: The buffer is valid and has a file.
        let fd = unsafe { bindings::dma_buf_fd(this.as_raw(), flags as i32) };
        to_result(fd)?;
        // The file reference now belongs to the descriptor table.
        let _ = ARef::into_raw(this);
        // CAST: `to_result` accepted `fd`, so it is not negative.
        Ok(fd as u32)
    }

    /// The data of the buffer if an [`Exporter`] of type `T` exported it with
    /// [`DmaBuf::export`].
    pub fn exporter_data<T: Exporter>(&self) -> Option<&T> {
        // SAFETY: The buffer is valid; its ops pointer is set at export and never changes.
        let ops = unsafe { bindings::dma_buf_ops_of(self.as_raw()) };
        // Only buffers exported by `export::<T>` use `T`'s static table.
        if !core::ptr::eq(ops, T::OPS.as_raw()) {
            return None;
        }
        // SAFETY: The buffer was exported by `export::<T>`, so its private data came from
        // `Pin<KBox<T>>::into_foreign` and is released only when the buffer is, which cannot
        // happen while `self` is borrowed.
        let data = unsafe {
            <Pin<KBox<T>> as ForeignOwnable>::borrow(bindings::dma_buf_priv_of(self.as_raw()))
        };
        Some(data.get_ref())
    }

    /// Takes the buffer's reservation lock (`dma_resv_lock`).
    pub fn lock_resv(&self) -> ResvGuard<'_> {
        // SAFETY: The buffer is valid and so is its reservation object.
        let resv = unsafe { bindings::dma_buf_resv_of(self.as_raw()) };
        // SAFETY: `resv` is valid; without an acquire context the lock cannot fail.
        unsafe { bindings::dma_resv_lock(resv, core::ptr::null_mut()) };
        // INVARIANT: The lock was just taken.
        ResvGuard {
            buf: self,
            resv,
            _not_send: PhantomData,
        }
    }
}

/// The reservation lock of a [`DmaBuf`], held; released on drop.
///
/// # Invariants
///
/// The reservation lock `resv` of `buf` is held by this thread.
pub struct ResvGuard<'a> {
    buf: &'a DmaBuf,
    resv: *mut bindings::dma_resv,
    _not_send: NotThreadSafe,
}

impl ResvGuard<'_> {
    /// The buffer whose lock this is.
    pub fn dma_buf(&self) -> &DmaBuf {
        self.buf
    }

    /// Tells every dynamic importer that the buffer's current memory must no longer be used
    /// (`dma_buf_invalidate_mappings`). For exporters only.
    pub fn invalidate_mappings(&self) {
        // SAFETY: The buffer is valid and its reservation lock is held (type invariant).
        unsafe { bindings::dma_buf_invalidate_mappings(self.buf.as_raw()) };
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: The lock is held (type invariant) and is released once, here.
        unsafe { bindings::dma_resv_unlock(self.resv) };
    }
}

/// A value exported as a dma-buf by [`DmaBuf::export`].
///
/// The buffer has no scatter-gather tables: importers that map attachments get `EOPNOTSUPP`.
/// Importers that know the exporter reach its memory through its own interface, typically
/// physical ranges ([`PhysVec`]) handed out under the reservation lock.
#[vtable]
pub trait Exporter: Send + Sync + Sized + 'static {
    /// The buffer operations of the type's buffers: a `static` of the type's own, made with
    /// [`dma_buf_export_ops!`](crate::dma_buf_export_ops).
    ///
    /// [`DmaBuf::exporter_data`] recognises the type's buffers by the address of this table
    /// (`dma_buf->ops`). Rust guarantees that a `static` has one address and that two statics do
    /// not share one; it guarantees neither for functions nor for constants.
    const OPS: &'static ExportOps<Self>;
}

/// The `dma_buf_ops` of the buffers of an [`Exporter`] `T`.
#[repr(transparent)]
pub struct ExportOps<T: Exporter>(bindings::dma_buf_ops, PhantomData<T>);

// SAFETY: The table is never changed after it is built; it holds only function pointers.
unsafe impl<T: Exporter> Sync for ExportOps<T> {}

impl<T: Exporter> ExportOps<T> {
    /// The table for `T`; only for the `static` of
    /// [`dma_buf_export_ops!`](crate::dma_buf_export_ops).
    #[doc(hidden)]
    pub const fn build() -> Self {
        Self(ExportVtable::<T>::OPS, PhantomData)
    }

    fn as_raw(&'static self) -> *const bindings::dma_buf_ops {
        &self.0
    }
}

/// The value of [`Exporter::OPS`] for the type `$t`: a reference to a `static` of its own.
#[macro_export]
macro_rules! dma_buf_export_ops {
    ($t:ty) => {{
        static OPS: $crate::dma_buf::ExportOps<$t> = $crate::dma_buf::ExportOps::build();
        &OPS
    }};
}

/// The `dma_buf_ops` of an [`Exporter`].
struct ExportVtable<T: Exporter>(PhantomData<T>);

impl<T: Exporter> ExportVtable<T> {
    const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
        map_dma_buf: Some(Self::map_dma_buf),
        unmap_dma_buf: Some(Self::unmap_dma_buf),
        release: Some(Self::release),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// Called by the dma-buf core for an attachment of a buffer made by [`DmaBuf::export`].
    unsafe extern "C" fn map_dma_buf(
        _attach: *mut bindings::dma_buf_attachment,
        _dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        EOPNOTSUPP.to_ptr()
    }

    /// # Safety
    ///
    /// Called by the dma-buf core for a table [`Self::map_dma_buf`] returned, which never
    /// happens.
    unsafe extern "C" fn unmap_dma_buf(
        _attach: *mut bindings::dma_buf_attachment,
        _sgt: *mut bindings::sg_table,
        _dir: bindings::dma_data_direction,
    ) {
    }

    /// # Safety
    ///
    /// Called by the dma-buf core once, when the last reference to a buffer made by
    /// [`DmaBuf::export`] is gone.
    unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
        // SAFETY: `dmabuf` is valid for the duration of this call.
        let ptr = unsafe { bindings::dma_buf_priv_of(dmabuf) };
        // SAFETY: The private data came from `Pin<KBox<T>>::into_foreign` in `export`, and this
        // is the only place that takes it back, once.
        drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(ptr) });
    }
}

/// The importer of a [`DynamicAttachment`].
pub trait Importer: Send + Sync + 'static {
    /// Whether the importer can reach memory behind a PCI peer (`allow_peer2peer`).
    const ALLOW_PEER2PEER: bool = false;

    /// The exporter is taking the buffer's memory away: stop using it and forget its address.
    ///
    /// Called with the buffer's reservation lock held, so it must not take that lock.
    fn invalidate_mappings(this: ArcBorrow<'_, Self>);
}

/// The `dma_buf_attach_ops` of an [`Importer`].
struct ImportVtable<T: Importer>(PhantomData<T>);

impl<T: Importer> ImportVtable<T> {
    const OPS: bindings::dma_buf_attach_ops = bindings::dma_buf_attach_ops {
        allow_peer2peer: T::ALLOW_PEER2PEER,
        invalidate_mappings: Some(Self::invalidate_mappings),
    };

    /// # Safety
    ///
    /// Called by the dma-buf core, with the reservation lock held, for an attachment made by
    /// [`DynamicAttachment::new`].
    unsafe extern "C" fn invalidate_mappings(attach: *mut bindings::dma_buf_attachment) {
        // SAFETY: `attach` is valid for the duration of this call.
        let ptr = unsafe { bindings::dma_buf_attachment_importer_priv(attach) };
        // SAFETY: The importer data came from `Arc<T>::into_foreign` in `DynamicAttachment::new`
        // and is taken back only after the attachment is detached, which cannot run in parallel
        // with this callback (both hold the reservation lock).
        let data = unsafe { <Arc<T> as ForeignOwnable>::borrow(ptr) };
        T::invalidate_mappings(data);
    }
}

/// A dynamic attachment of an importer to a dma-buf (`dma_buf_dynamic_attach`).
///
/// It holds a reference to the buffer and to the importer's data, which receives the
/// invalidation callbacks. Dropping it unpins the buffer (if [`DynamicAttachment::pin`]
/// succeeded), detaches and drops both references.
///
/// # Invariants
///
/// `attach` is a live attachment of `buf` made with the ops of [`ImportVtable<T>`] and the
/// importer data of an `Arc<T>` it owns; `pinned` says whether it holds a pin.
pub struct DynamicAttachment<T: Importer> {
    attach: NonNull<bindings::dma_buf_attachment>,
    buf: ARef<DmaBuf>,
    pinned: bool,
    _data: PhantomData<Arc<T>>,
}

// SAFETY: The attachment may be pinned, unpinned and detached from any thread; the importer
// data is `Send + Sync`.
unsafe impl<T: Importer> Send for DynamicAttachment<T> {}
// SAFETY: No method taking `&self` changes anything.
unsafe impl<T: Importer> Sync for DynamicAttachment<T> {}

impl<T: Importer> DynamicAttachment<T> {
    /// Attaches `dev` to `buf`, with `data` receiving the invalidation callbacks.
    pub fn new(buf: ARef<DmaBuf>, dev: &Device, data: Arc<T>) -> Result<Self> {
        let ptr = data.into_foreign();
        // SAFETY: `buf` and `dev` are valid; the ops are a constant; `ptr` stays valid until
        // the attachment is detached (in `drop`) or, on failure, is taken back below.
        let attach = unsafe {
            bindings::dma_buf_dynamic_attach(
                buf.as_raw(),
                dev.as_raw(),
                &ImportVtable::<T>::OPS,
                ptr,
            )
        };
        match from_err_ptr(attach) {
            Ok(attach) => Ok(Self {
                // SAFETY: `from_err_ptr` succeeded, so the pointer is not null.
                attach: unsafe { NonNull::new_unchecked(attach) },
                buf,
                pinned: false,
                _data: PhantomData,
            }),
            Err(e) => {
                // SAFETY: No attachment exists, so `ptr` was not kept and is still ours.
                drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(ptr) });
                Err(e)
            }
        }
    }

    /// The buffer attached to.
    pub fn dma_buf(&self) -> &DmaBuf {
        &self.buf
    }

    /// Pins the buffer (`dma_buf_pin`): the exporter keeps the memory in place until it is
    /// unpinned or invalidated. `resv` must be the buffer's reservation lock (`EINVAL`
    /// otherwise). Pinning twice is `EBUSY`.
    pub fn pin(&mut self, resv: &ResvGuard<'_>) -> Result {
        if resv.dma_buf().as_raw() != self.buf.as_raw() {
            return Err(EINVAL);
        }
        if self.pinned {
            return Err(EBUSY);
        }
        // SAFETY: The attachment is live and the buffer's reservation lock is held.
        to_result(unsafe { bindings::dma_buf_pin(self.attach.as_ptr()) })?;
        self.pinned = true;
        Ok(())
    }
}

impl<T: Importer> Drop for DynamicAttachment<T> {
    fn drop(&mut self) {
        if self.pinned {
            let guard = self.buf.lock_resv();
            // SAFETY: The attachment is live and pinned, and the reservation lock is held.
            unsafe { bindings::dma_buf_unpin(self.attach.as_ptr()) };
            drop(guard);
        }
        // SAFETY: The attachment is live; the importer data is read before it is freed.
        let ptr = unsafe { bindings::dma_buf_attachment_importer_priv(self.attach.as_ptr()) };
        // SAFETY: The attachment belongs to `buf`, is detached once, here, and not used after.
        unsafe { bindings::dma_buf_detach(self.buf.as_raw(), self.attach.as_ptr()) };
        // SAFETY: The attachment is gone, so no callback can borrow the data any more; it came
        // from `Arc<T>::into_foreign` in `new`.
        drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(ptr) });
    }
}
