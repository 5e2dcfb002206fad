// SPDX-License-Identifier: GPL-2.0

//! VFIO type1 compatibility: the legacy container ioctls answered on `/dev/iommu`, served by
//! one IOAS of the context (the compat IOAS, chosen with `IOMMU_VFIO_IOAS`).

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::Relaxed,
        ArcBorrow, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};
use zerocopy_derive::Immutable;

use crate::{
    hwpt::HwptPaging,
    ioas::io_pagetable::{
        PROT_CACHE,
        PROT_READ,
        PROT_WRITE, //
    },
    ioas::pages::Pages,
    ioas::Ioas,
    object::{
        ObjectRef,
        ObjectType, //
    },
    uapi::{
        IommuVfioIoas,
        IOMMU_VFIO_IOAS_CLEAR,
        IOMMU_VFIO_IOAS_GET,
        IOMMU_VFIO_IOAS_SET, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};

/// `VFIO_TYPE`/`VFIO_BASE`: the VFIO container ioctls are `_IO(';', 100 + n)`.
const VFIO_BASE: u32 = 100;
const VFIO_GET_API_VERSION: u32 = VFIO_BASE;
const VFIO_CHECK_EXTENSION: u32 = VFIO_BASE + 1;
const VFIO_SET_IOMMU: u32 = VFIO_BASE + 2;
const VFIO_IOMMU_GET_INFO: u32 = VFIO_BASE + 12;
const VFIO_IOMMU_MAP_DMA: u32 = VFIO_BASE + 13;
const VFIO_IOMMU_UNMAP_DMA: u32 = VFIO_BASE + 14;

const VFIO_API_VERSION: isize = 0;
const VFIO_TYPE1_IOMMU: usize = 1;
const VFIO_TYPE1V2_IOMMU: usize = 3;
const VFIO_DMA_CC_IOMMU: usize = 4;
const VFIO_UNMAP_ALL: usize = 9;

const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;
const VFIO_DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;

const VFIO_IOMMU_INFO_PGSIZES: u32 = 1 << 0;
const VFIO_IOMMU_INFO_CAPS: u32 = 1 << 1;
const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;
const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: u16 = 3;

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` without the flexible `data`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

/// `struct vfio_iommu_type1_info`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct Type1Info {
    argsz: u32,
    flags: u32,
    iova_pgsizes: u64,
    cap_offset: u32,
    pad: u32,
}

/// `struct vfio_info_cap_header` followed by the `u32` of the DMA-avail or IOVA-range caps.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct CapHeaderU32 {
    id: u16,
    version: u16,
    next: u32,
    value: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<Type1Info>() == 24);

fn copy_in<T: FromBytes + zerocopy::Immutable + IntoBytes>(arg: usize, len: usize) -> Result<T> {
    let mut v = T::new_zeroed();
    let bytes = v.as_mut_bytes().get_mut(..len).ok_or(EINVAL)?;
    UserSlice::new(UserPtr::from_addr(arg), len)
        .reader()
        .read_slice(bytes)?;
    Ok(v)
}

fn copy_out(arg: usize, bytes: &[u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), bytes.len())
        .writer()
        .write_slice(bytes)
}

/// Copies `bytes` to the user address `arg + offset` (`EFAULT` if that is past the top).
fn copy_out_at(arg: usize, offset: usize, bytes: &[u8]) -> Result {
    copy_out(arg.checked_add(offset).ok_or(EFAULT)?, bytes)
}

/// The compat IOAS, or `ENODEV` if none is set (or it was destroyed).
pub(crate) fn compat_ioas(ictx: &IommufdCtx) -> Result<ObjectRef> {
    let id = ictx.vfio_ioas.load(Relaxed);
    if id == 0 {
        return Err(ENODEV);
    }
    ictx.objects.get(id, ObjectType::Ioas).map_err(|_| ENODEV)
}

fn ioas_of(obj: &ObjectRef) -> Result<ArcBorrow<'_, Ioas>> {
    obj.data::<Ioas>().ok_or(ENODEV)
}

/// Handles a VFIO container ioctl; `ENOTTY` for anything else.
pub(crate) fn vfio_ioctl(ictx: &IommufdCtx, cmd: u32, arg: usize) -> Result<isize> {
    use kernel::ioctl::{
        _IO,
        _IOC_NR, //
    };
    let nr = _IOC_NR(cmd);
    if cmd != _IO(crate::uapi::IOMMUFD_TYPE, nr) {
        return Err(ENOTTY);
    }
    match nr {
        VFIO_GET_API_VERSION => Ok(VFIO_API_VERSION),
        VFIO_SET_IOMMU => set_iommu(ictx, arg).map(|()| 0),
        VFIO_CHECK_EXTENSION => check_extension(ictx, arg),
        VFIO_IOMMU_GET_INFO => get_info(ictx, arg).map(|()| 0),
        VFIO_IOMMU_MAP_DMA => map_dma(ictx, arg).map(|()| 0),
        VFIO_IOMMU_UNMAP_DMA => unmap_dma(ictx, arg).map(|()| 0),
        _ => Err(ENOTTY),
    }
}

fn check_extension(ictx: &IommufdCtx, ext: usize) -> Result<isize> {
    match ext {
        VFIO_TYPE1_IOMMU | VFIO_TYPE1V2_IOMMU => Ok(isize::from(!ictx.no_iommu.load(Relaxed))),
        VFIO_UNMAP_ALL => Ok(1),
        VFIO_DMA_CC_IOMMU => {
            // 1 unless a HWPT of the compat IOAS does not enforce cache coherency.
            let obj = compat_ioas(ictx)?;
            let ioas = ioas_of(&obj)?;
            let mut all = true;
            ictx.objects.for_each(ObjectType::HwptPaging, |h| {
                if let Some(h) = h.data::<HwptPaging>() {
                    if h.translates(&ioas) && !h.enforces_cache_coherency() {
                        all = false;
                    }
                }
            });
            Ok(isize::from(all))
        }
        _ => Ok(0),
    }
}

fn set_iommu(ictx: &IommufdCtx, ty: usize) -> Result {
    if (ty != VFIO_TYPE1_IOMMU && ty != VFIO_TYPE1V2_IOMMU) || ictx.no_iommu.load(Relaxed) {
        return Err(EINVAL);
    }
    let obj = compat_ioas(ictx)?;
    let ioas = ioas_of(&obj)?;
    if ty == VFIO_TYPE1_IOMMU {
        ioas.iopt.set_large_pages(false)?;
    }
    Ok(())
}

fn map_dma(ictx: &IommufdCtx, arg: usize) -> Result {
    let minsz = offset_of!(DmaMap, size) + size_of::<u64>();
    let map: DmaMap = copy_in(arg, minsz)?;
    let supported = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    if (map.argsz as usize) < minsz || map.flags & !supported != 0 {
        return Err(EINVAL);
    }
    let mut prot = PROT_CACHE;
    if map.flags & VFIO_DMA_MAP_FLAG_READ != 0 {
        prot |= PROT_READ;
    }
    if map.flags & VFIO_DMA_MAP_FLAG_WRITE != 0 {
        prot |= PROT_WRITE;
    }
    let obj = compat_ioas(ictx)?;
    let ioas = ioas_of(&obj)?;
    let length = usize::try_from(map.size).map_err(|_| EOVERFLOW)?;
    let uptr = usize::try_from(map.vaddr).map_err(|_| EOVERFLOW)?;
    // Upstream's order: `vaddr + size` wrapping is `EOVERFLOW`, then a size within a page of the
    // top of the address space (too large for the page count) is `EINVAL`.
    uptr.checked_add(length).ok_or(EOVERFLOW)?;
    if length > usize::MAX - PAGE_SIZE {
        return Err(EINVAL);
    }
    let pages = Pages::new_user(uptr, length, prot & PROT_WRITE != 0, ictx.account_mm())?;
    ioas.map_all(pages, map.size, Some(map.iova), prot)?;
    Ok(())
}

fn unmap_dma(ictx: &IommufdCtx, arg: usize) -> Result {
    let minsz = offset_of!(DmaUnmap, size) + size_of::<u64>();
    let mut unmap: DmaUnmap = copy_in(arg, minsz)?;
    if (unmap.argsz as usize) < minsz || unmap.flags & !VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        return Err(EINVAL);
    }
    let obj = compat_ioas(ictx)?;
    let ioas = ioas_of(&obj)?;
    let (unmapped, res) = if unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        if unmap.iova != 0 || unmap.size != 0 {
            return Err(EINVAL);
        }
        ioas.unmap_all(ictx)
    } else {
        if !ioas.iopt.large_pages() {
            // Type1 (v1) may unmap part of a mapping: cut the areas at the ends first.
            let end = unmap.iova.wrapping_add(unmap.size).wrapping_sub(1);
            ioas.iopt.cut(end)?;
            if unmap.iova != 0 {
                ioas.iopt.cut(unmap.iova - 1)?;
            }
        }
        if unmap.size == 0 {
            (0, Err(EINVAL))
        } else {
            match unmap.iova.checked_add(unmap.size - 1) {
                None => (0, Err(EOVERFLOW)),
                Some(last) => ioas.unmap(ictx, unmap.iova, last),
            }
        }
    };
    unmap.size = unmapped;
    let out = unmap.as_bytes().get(..minsz).ok_or(EINVAL)?;
    copy_out(arg, out)?;
    res
}

/// The page sizes reported by `VFIO_IOMMU_GET_INFO`.
fn pagesizes(ioas: &Ioas) -> u64 {
    let mut bitmap = ioas.iopt.domains_pgsize_bitmap();
    let page_mask = !(PAGE_SIZE as u64 - 1);
    if bitmap & !page_mask != 0 {
        bitmap &= page_mask;
        bitmap |= PAGE_SIZE as u64;
    }
    bitmap.max(ioas.iopt.iova_alignment())
}

fn get_info(ictx: &IommufdCtx, arg: usize) -> Result {
    let minsz = offset_of!(Type1Info, iova_pgsizes) + size_of::<u64>();
    let mut info: Type1Info = copy_in(arg, minsz)?;
    let argsz = info.argsz as usize;
    if argsz < minsz {
        return Err(EINVAL);
    }
    let outsz = argsz.min(size_of::<Type1Info>());
    let obj = compat_ioas(ictx)?;
    let ioas = ioas_of(&obj)?;

    info.flags = VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = pagesizes(&ioas);
    info.cap_offset = 0;

    // Capability 1: DMA avail (header + u32, padded to 16 bytes).
    let mut total = size_of::<Type1Info>();
    let dma_at = total;
    let dma_size = 16;
    if argsz >= dma_at + 12 {
        let cap = CapHeaderU32 {
            id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
            version: 1,
            next: 0,
            value: u32::MAX,
            reserved: 0,
        };
        copy_out_at(arg, dma_at, cap.as_bytes().get(..12).ok_or(EINVAL)?)?;
    }
    total += dma_size;

    // Capability 2: the IOVA ranges outside reserved regions.
    let iova_at = total;
    let holes = ioas.iopt.unreserved_ranges()?;
    // The capability header and one 16-byte range per hole; `n` is bounded by the number of
    // holes in the IOAS, so none of the sizes below can overflow.
    let mut n = 0usize;
    for &(start, end) in holes.iter() {
        let room = argsz.saturating_sub(iova_at);
        if room >= 16 + 16 * (n + 1) {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&start.to_ne_bytes());
            b[8..].copy_from_slice(&end.to_ne_bytes());
            copy_out_at(arg, iova_at + 16 + 16 * n, &b)?;
        }
        n += 1;
    }
    let iova_size = 16 + 16 * n;
    if argsz.saturating_sub(iova_at) >= iova_size {
        let cap = CapHeaderU32 {
            id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
            version: 1,
            next: 0,
            value: u32::try_from(n).map_err(|_| EOVERFLOW)?,
            reserved: 0,
        };
        copy_out_at(arg, iova_at, cap.as_bytes())?;
    }
    // Chain: the first capability points at the second.
    if argsz >= iova_at {
        let next = u32::try_from(iova_at).map_err(|_| EOVERFLOW)?;
        copy_out_at(arg, dma_at + 4, &next.to_ne_bytes())?;
    }
    total += iova_size;

    if argsz >= total {
        info.cap_offset = size_of::<Type1Info>() as u32;
    }
    info.argsz = u32::try_from(total).map_err(|_| EOVERFLOW)?;
    info.flags |= VFIO_IOMMU_INFO_CAPS;
    copy_out(arg, info.as_bytes().get(..outsz).ok_or(EINVAL)?)
}

impl UserCmd for IommuVfioIoas {
    const MIN_SIZE: usize = offset_of!(IommuVfioIoas, reserved) + size_of::<u16>();
}

/// `IOMMU_VFIO_IOAS`: gets, sets or clears the compat IOAS.
pub(crate) fn vfio_ioas_ioctl(ucmd: &mut Ucmd<'_, IommuVfioIoas>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ictx: &IommufdCtx = &ucmd.ictx;
    match ucmd.cmd.op {
        IOMMU_VFIO_IOAS_GET => {
            let obj = compat_ioas(ictx)?;
            drop(obj);
            ucmd.cmd.ioas_id = ictx.vfio_ioas.load(Relaxed);
            ucmd.respond()
        }
        IOMMU_VFIO_IOAS_SET => {
            let obj = ictx.objects.get(ucmd.cmd.ioas_id, ObjectType::Ioas)?;
            ictx.vfio_ioas.store(ucmd.cmd.ioas_id, Relaxed);
            drop(obj);
            Ok(())
        }
        IOMMU_VFIO_IOAS_CLEAR => {
            ictx.vfio_ioas.store(0, Relaxed);
            Ok(())
        }
        _ => Err(EOPNOTSUPP),
    }
}
