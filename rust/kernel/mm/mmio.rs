// SPDX-License-Identifier: GPL-2.0

//! Mapping physical memory of a driver into user space from an `mmap()` handler.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)
//!
//! [`map_io`] maps a physically contiguous range (device registers, or pages the driver
//! allocated and shares) into a new VMA, uncached, as `io_remap_pfn_range()` does. The mapping
//! holds a reference to an owner for as long as any VMA of it exists (also those `fork()` and
//! `mremap()` make), so the driver can refuse to free what user space still maps.
//!
//! [`ContigPages`] is a physically contiguous, zeroed allocation of `2^order` pages that such a
//! mapping can share (`alloc_pages()`).

use crate::{
    alloc::Flags,
    bindings,
    io::PhysAddr,
    mm::virt::VmaNew,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// The `vm_operations_struct` of mappings owned by an `Arc<T>`: every VMA holds one count.
struct OwnerOps<T>(PhantomData<T>);

impl<T: Send + Sync + 'static> OwnerOps<T> {
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(Self::open),
        close: Some(Self::close),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `vma` is a copy of a VMA [`map_io`] set up for an `Arc<T>`.
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid for the call.
        let data = unsafe { bindings::mmio_vma_private(vma) };
        // SAFETY: The private data of such a VMA came from `Arc::<T>::into_raw` and the VMA that
        // was copied still holds its count.
        let owner = unsafe { ArcBorrow::<T>::from_raw(data.cast()) };
        // The new VMA's count, given back by `close`.
        let _ = Arc::from(owner).into_raw();
    }

    /// # Safety
    ///
    /// `vma` is a VMA [`map_io`] (or [`OwnerOps::open`]) set up for an `Arc<T>`, going away.
    unsafe extern "C" fn close(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid for the call.
        let data = unsafe { bindings::mmio_vma_private(vma) };
        // SAFETY: The VMA's count, taken by `map_io` or `open`, is given back exactly once.
        drop(unsafe { Arc::<T>::from_raw(data.cast()) });
    }
}

/// The page offset user space passed to `mmap()` (`vma->vm_pgoff`), before [`map_io`] resets it.
pub fn vma_pgoff(vma: &VmaNew) -> usize {
    // SAFETY: `vma` is a valid VMA being set up.
    unsafe { bindings::mmio_vma_pgoff(vma.as_ptr()) }
}

/// Maps the whole of `vma` to the physical range starting at `phys` (page aligned), uncached,
/// and makes the mapping hold `owner` until its last VMA is gone.
///
/// On error nothing is mapped and `owner` is dropped.
pub fn map_io<T: Send + Sync + 'static>(vma: &VmaNew, phys: PhysAddr, owner: Arc<T>) -> Result {
    let pfn = usize::try_from(phys >> PAGE_SHIFT).map_err(|_| EINVAL)?;
    let data = owner.into_raw();
    // SAFETY: `vma` is a VMA being set up in an `mmap()` handler; the ops are static and their
    // callbacks expect an `Arc<T>` as private data, which `data` is.
    let ret = unsafe {
        bindings::mmio_vma_map(
            vma.as_ptr(),
            &OwnerOps::<T>::VM_OPS,
            data.cast_mut().cast(),
            pfn,
        )
    };
    if ret != 0 {
        // SAFETY: The helper installs the ops and data only on success, so the count is still
        // ours.
        drop(unsafe { Arc::from_raw(data) });
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// `2^order` physically contiguous pages, zeroed, freed on drop.
///
/// # Invariants
///
/// `page` is the first of `2^order` pages from `alloc_pages()` owned by this value.
pub struct ContigPages {
    page: NonNull<bindings::page>,
    order: u32,
}

// SAFETY: The pages can be used and freed from any thread.
unsafe impl Send for ContigPages {}
// SAFETY: Shared references only read the addresses.
unsafe impl Sync for ContigPages {}

impl ContigPages {
    /// Allocates `2^order` zeroed pages.
    pub fn alloc(order: u32, flags: Flags) -> Result<Self> {
        if order > 10 {
            return Err(EINVAL);
        }
        let gfp = flags | crate::alloc::flags::__GFP_ZERO;
        // SAFETY: Any flags and a small order may be passed.
        let page = unsafe { bindings::alloc_pages(gfp.as_raw(), order) };
        let page = NonNull::new(page).ok_or(ENOMEM)?;
        // INVARIANT: The pages were just allocated.
        Ok(Self { page, order })
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        crate::page::PAGE_SIZE << self.order
    }

    /// Always false: an allocation has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The physical address of the first page.
    pub fn phys(&self) -> PhysAddr {
        // SAFETY: `page` is a valid page (type invariant).
        let pfn = unsafe { bindings::page_to_pfn(self.page.as_ptr()) };
        // CAST: A PFN shifted back is a physical address.
        (pfn as PhysAddr) << PAGE_SHIFT
    }

    /// Writes `value` at byte `offset` (in bounds and aligned; `EINVAL` otherwise).
    pub fn write_u32(&self, offset: usize, value: u32) -> Result {
        match offset.checked_add(4) {
            Some(end) if offset % 4 == 0 && end <= self.len() => {}
            _ => return Err(EINVAL),
        }
        // SAFETY: The pages are low memory from `alloc_pages()` without `__GFP_HIGHMEM`, so they
        // have a kernel address.
        let base = unsafe { bindings::mmio_page_address(self.page.as_ptr()) };
        // SAFETY: `offset` is in bounds and aligned; the pages are ours. User space may map
        // them too, hence the volatile write.
        unsafe {
            base.cast::<u8>()
                .add(offset)
                .cast::<u32>()
                .write_volatile(value)
        };
        Ok(())
    }
}

impl Drop for ContigPages {
    fn drop(&mut self) {
        // SAFETY: The pages came from `alloc_pages()` with this order (type invariant).
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}
