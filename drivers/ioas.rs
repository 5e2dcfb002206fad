// SPDX-License-Identifier: GPL-2.0

//! IOAS objects (`IOMMU_IOAS_*`): an I/O address space user space fills with mappings.

#[cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]
pub(crate) mod access;
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
pub(crate) mod dmabuf;
#[cfg(not(CONFIG_DMA_SHARED_BUFFER))]
#[path = "ioas/dmabuf_none.rs"]
pub(crate) mod dmabuf;
pub(crate) mod io_pagetable;
pub(crate) mod pages;

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    prelude::*,
    rbtree::RBTree,
    sync::Arc,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

use crate::{
    ioas::io_pagetable::{
        range_tree_overlaps,
        IoPagetable,
        IovaRanges,
        PagesSlice,
        PROT_CACHE,
        PROT_READ,
        PROT_WRITE, //
    },
    ioas::pages::{
        Pages,
        Source, //
    },
    object::ObjectData,
    object::{
        ObjectKind,
        ObjectType, //
    },
    uapi::{
        IommuIoasAlloc,
        IommuIoasAllowIovas,
        IommuIoasChangeProcess,
        IommuIoasCopy,
        IommuIoasIovaRanges,
        IommuIoasMap,
        IommuIoasMapFile,
        IommuIoasUnmap,
        IommuIovaRange,
        IommuOption,
        IOMMU_IOAS_MAP_FIXED_IOVA,
        IOMMU_IOAS_MAP_READABLE,
        IOMMU_IOAS_MAP_WRITEABLE,
        IOMMU_OPTION_HUGE_PAGES,
        IOMMU_OPTION_OP_GET,
        IOMMU_OPTION_OP_SET,
        IOMMU_OPTION_RLIMIT_MODE, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};

/// An I/O address space.
#[pin_data]
pub(crate) struct Ioas {
    #[pin]
    pub(crate) iopt: IoPagetable,
}

impl ObjectData for Ioas {
    const TYPE: ObjectType = ObjectType::Ioas;

    fn on_destroy(&self, ictx: &IommufdCtx, id: u32) {
        // A destroyed IOAS stops being the VFIO compat IOAS.
        ictx.forget_vfio_ioas(id);
    }
}

impl Ioas {
    /// Allocates an empty IOAS.
    pub(crate) fn new() -> Result<Arc<Ioas>> {
        Arc::pin_init(
            pin_init!(Ioas {
                iopt <- IoPagetable::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Maps all of `pages` (`length` bytes) at `iova`, or at a kernel-chosen IOVA for `None`;
    /// returns the IOVA.
    pub(crate) fn map_all(
        &self,
        pages: Arc<Pages>,
        length: u64,
        iova: Option<u64>,
        prot: u32,
    ) -> Result<u64> {
        let start_byte = pages.start_byte();
        let slices = [PagesSlice {
            pages,
            start_byte,
            length,
        }];
        self.iopt.map_pages(&slices, iova, prot)
    }

    /// Unmaps everything; accesses pinning pages are told to unpin.
    pub(crate) fn unmap_all(&self, ictx: &IommufdCtx) -> (u64, Result) {
        self.unmap(ictx, 0, u64::MAX)
    }

    /// Unmaps the areas inside `[first, last]`.
    pub(crate) fn unmap(&self, ictx: &IommufdCtx, first: u64, last: u64) -> (u64, Result) {
        let notify =
            |iova: u64, length: u64| crate::ioas::access::notify_unmap(ictx, self, iova, length);
        self.iopt.unmap_range(first, last, &notify)
    }
}

/// The flags `IOMMU_IOAS_MAP`, `_MAP_FILE` and `_COPY` know.
const MAP_FLAGS: u32 =
    IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/// The checks `IOMMU_IOAS_MAP`, `_MAP_FILE` and `_COPY` share, in upstream's order: unknown
/// flags (`EOPNOTSUPP`), an IOVA or length of `ULONG_MAX` or more (`EOVERFLOW`; `ULONG_MAX` is
/// `u64::MAX` on the 64-bit kernels served), neither read nor write (`EINVAL`).
fn check_map_args(flags: u32, iovas_and_length: &[u64]) -> Result {
    if flags & !MAP_FLAGS != 0 {
        return Err(EOPNOTSUPP);
    }
    if iovas_and_length.contains(&u64::MAX) {
        return Err(EOVERFLOW);
    }
    if flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE) == 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Upstream's `conv_iommu_prot`: IOMMU_CACHE always, plus read/write as asked.
fn map_prot(flags: u32) -> u32 {
    let mut prot = PROT_CACHE;
    if flags & IOMMU_IOAS_MAP_WRITEABLE != 0 {
        prot |= PROT_WRITE;
    }
    if flags & IOMMU_IOAS_MAP_READABLE != 0 {
        prot |= PROT_READ;
    }
    prot
}

impl UserCmd for IommuIoasAlloc {
    const MIN_SIZE: usize = offset_of!(IommuIoasAlloc, out_ioas_id) + size_of::<u32>();
}

pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuIoasAlloc>) -> Result {
    if ucmd.cmd.flags != 0 {
        return Err(EOPNOTSUPP);
    }

    let new = ucmd.ictx.objects.alloc(ObjectKind::new(Ioas::new()?))?;
    ucmd.cmd.out_ioas_id = new.id();
    ucmd.respond()?;
    new.finalize()
}

impl UserCmd for IommuIoasIovaRanges {
    const MIN_SIZE: usize = offset_of!(IommuIoasIovaRanges, out_iova_alignment) + size_of::<u64>();
}

pub(crate) fn iova_ranges_ioctl(ucmd: &mut Ucmd<'_, IommuIoasIovaRanges>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }

    let obj = ucmd.ictx.objects.get(ucmd.cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;

    let max_iovas = ucmd.cmd.num_iovas;
    let ranges = UserPtr::from_addr(ucmd.cmd.allowed_iovas as usize);
    let room = (max_iovas as usize)
        .checked_mul(size_of::<IommuIovaRange>())
        .ok_or(EOVERFLOW)?;
    let mut writer = UserSlice::new(ranges, room).writer();
    let mut num_iovas = 0u32;
    let mut ranges = IovaRanges::new();
    ioas.iopt.iova_ranges(&mut ranges)?;
    for &(start, last) in ranges.iter() {
        if num_iovas < max_iovas {
            writer.write_slice(IommuIovaRange { start, last }.as_bytes())?;
        }
        num_iovas = num_iovas.checked_add(1).ok_or(EOVERFLOW)?;
    }
    ucmd.cmd.num_iovas = num_iovas;
    ucmd.cmd.out_iova_alignment = ranges.alignment;

    ucmd.respond()?;
    if num_iovas > max_iovas {
        return Err(EMSGSIZE);
    }
    Ok(())
}

impl UserCmd for IommuIoasAllowIovas {
    const MIN_SIZE: usize = offset_of!(IommuIoasAllowIovas, allowed_iovas) + size_of::<u64>();
}

pub(crate) fn allow_iovas_ioctl(ucmd: &mut Ucmd<'_, IommuIoasAllowIovas>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let obj = ucmd.ictx.objects.get(ucmd.cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;

    // The ranges are read one by one into the tree, as upstream does: nothing is allocated for
    // the count up front, and a count beyond the user's buffer ends with `EFAULT`.
    let n = ucmd.cmd.num_iovas as usize;
    let bytes = n
        .checked_mul(size_of::<IommuIovaRange>())
        .ok_or(EOVERFLOW)?;
    let mut reader =
        UserSlice::new(UserPtr::from_addr(ucmd.cmd.allowed_iovas as usize), bytes).reader();
    let mut ranges: RBTree<u64, u64> = RBTree::new();
    for _ in 0..n {
        let mut raw = [0u8; size_of::<IommuIovaRange>()];
        reader.read_slice(&mut raw)?;
        let r = IommuIovaRange::read_from_bytes(&raw).map_err(|_| EINVAL)?;
        // A range of a single byte is refused too, as upstream does.
        if r.start >= r.last {
            return Err(EINVAL);
        }
        // Overlapping ranges are refused.
        if range_tree_overlaps(&ranges, r.start, r.last) {
            return Err(EINVAL);
        }
        ranges.try_create_and_insert(r.start, r.last, GFP_KERNEL_ACCOUNT)?;
    }
    ioas.iopt.set_allowed(ranges)
}

impl UserCmd for IommuIoasMap {
    const MIN_SIZE: usize = offset_of!(IommuIoasMap, iova) + size_of::<u64>();
}

pub(crate) fn map_ioctl(ucmd: &mut Ucmd<'_, IommuIoasMap>) -> Result {
    let cmd = &ucmd.cmd;
    if cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    check_map_args(cmd.flags, &[cmd.iova, cmd.length])?;
    let obj = ucmd.ictx.objects.get(cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;

    let length = usize::try_from(cmd.length).map_err(|_| EOVERFLOW)?;
    let uptr = usize::try_from(cmd.user_va).map_err(|_| EOVERFLOW)?;
    let pages = Pages::new_user(
        uptr,
        length,
        cmd.flags & IOMMU_IOAS_MAP_WRITEABLE != 0,
        ucmd.ictx.account_mm(),
    )?;
    let fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA != 0).then_some(cmd.iova);
    let iova = ioas.map_all(pages, cmd.length, fixed, map_prot(cmd.flags))?;
    ucmd.cmd.iova = iova;
    ucmd.respond()
}

impl UserCmd for IommuIoasCopy {
    const MIN_SIZE: usize = offset_of!(IommuIoasCopy, src_iova) + size_of::<u64>();
}

pub(crate) fn copy_ioctl(ucmd: &mut Ucmd<'_, IommuIoasCopy>) -> Result {
    #[cfg(CONFIG_IOMMUFD_TEST)]
    {
        let cmd = &mut ucmd.cmd;
        crate::selftest::syz_conv_iova_id(
            &ucmd.ictx,
            cmd.src_ioas_id,
            &mut cmd.src_iova,
            &mut cmd.flags,
        );
    }
    let cmd = &ucmd.cmd;
    check_map_args(cmd.flags, &[cmd.length, cmd.src_iova, cmd.dst_iova])?;
    let src_obj = ucmd.ictx.objects.get(cmd.src_ioas_id, ObjectType::Ioas)?;
    let src = src_obj.data::<Ioas>().ok_or(ENOENT)?;
    let slices = src.iopt.get_pages(cmd.src_iova, cmd.length)?;
    drop(src_obj);

    let dst_obj = ucmd.ictx.objects.get(cmd.dst_ioas_id, ObjectType::Ioas)?;
    let dst = dst_obj.data::<Ioas>().ok_or(ENOENT)?;
    let fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA != 0).then_some(cmd.dst_iova);
    let iova = dst.iopt.map_pages(&slices, fixed, map_prot(cmd.flags))?;
    ucmd.cmd.dst_iova = iova;
    ucmd.respond()
}

impl UserCmd for IommuIoasUnmap {
    const MIN_SIZE: usize = offset_of!(IommuIoasUnmap, length) + size_of::<u64>();
}

pub(crate) fn unmap_ioctl(ucmd: &mut Ucmd<'_, IommuIoasUnmap>) -> Result {
    let obj = ucmd.ictx.objects.get(ucmd.cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;
    let (iova, length) = (ucmd.cmd.iova, ucmd.cmd.length);

    let unmapped = if iova == 0 && length == u64::MAX {
        let (unmapped, res) = ioas.unmap_all(&ucmd.ictx);
        res?;
        unmapped
    } else {
        // C: `>= ULONG_MAX`, which is u64::MAX here.
        if iova == u64::MAX || length == u64::MAX {
            return Err(EOVERFLOW);
        }
        if length == 0 {
            return Err(EINVAL);
        }
        let last = iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
        let (unmapped, res) = ioas.unmap(&ucmd.ictx, iova, last);
        res?;
        if unmapped == 0 {
            return Err(ENOENT);
        }
        unmapped
    };
    ucmd.cmd.length = unmapped;
    ucmd.respond()
}

/// `IOMMU_OPTION_HUGE_PAGES` on the IOAS `object_id`.
pub(crate) fn option_huge_pages(ictx: &IommufdCtx, cmd: &mut IommuOption) -> Result {
    let obj = ictx.objects.get(cmd.object_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;
    match cmd.op {
        IOMMU_OPTION_OP_GET => {
            cmd.val64 = u64::from(ioas.iopt.large_pages());
            Ok(())
        }
        IOMMU_OPTION_OP_SET => match cmd.val64 {
            0 => ioas.iopt.set_large_pages(false),
            1 => ioas.iopt.set_large_pages(true),
            _ => Err(EINVAL),
        },
        _ => Err(EOPNOTSUPP),
    }
}

impl UserCmd for IommuOption {
    const MIN_SIZE: usize = offset_of!(IommuOption, val64) + size_of::<u64>();
}

/// `IOMMU_OPTION`: the global `RLIMIT_MODE` and the per-IOAS `HUGE_PAGES`.
pub(crate) fn option_ioctl(ucmd: &mut Ucmd<'_, IommuOption>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    match ucmd.cmd.option_id {
        IOMMU_OPTION_RLIMIT_MODE => option_rlimit_mode(&ucmd.ictx, &mut ucmd.cmd)?,
        IOMMU_OPTION_HUGE_PAGES => option_huge_pages(&ucmd.ictx, &mut ucmd.cmd)?,
        _ => return Err(EOPNOTSUPP),
    }
    ucmd.respond()
}

fn option_rlimit_mode(ictx: &IommufdCtx, cmd: &mut IommuOption) -> Result {
    if cmd.object_id != 0 {
        return Err(EOPNOTSUPP);
    }
    match cmd.op {
        IOMMU_OPTION_OP_GET => {
            cmd.val64 = u64::from(ictx.account_mm());
            Ok(())
        }
        IOMMU_OPTION_OP_SET => {
            if !kernel::mm::pin::capable(kernel::bindings::CAP_SYS_RESOURCE) {
                return Err(EPERM);
            }
            match cmd.val64 {
                0 => ictx.set_account_mm(false),
                1 => ictx.set_account_mm(true),
                _ if !ictx.objects.is_empty() => Err(EBUSY),
                _ => Err(EINVAL),
            }
        }
        _ => Err(EOPNOTSUPP),
    }
}

impl UserCmd for IommuIoasMapFile {
    const MIN_SIZE: usize = offset_of!(IommuIoasMapFile, iova) + size_of::<u64>();
}

/// `IOMMU_IOAS_MAP_FILE`: maps part of a memfd.
pub(crate) fn map_file_ioctl(ucmd: &mut Ucmd<'_, IommuIoasMapFile>) -> Result {
    let cmd = &ucmd.cmd;
    check_map_args(cmd.flags, &[cmd.iova, cmd.length])?;
    let obj = ucmd.ictx.objects.get(cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;
    if cmd.length == 0 {
        return Err(EINVAL);
    }
    cmd.start.checked_add(cmd.length - 1).ok_or(EOVERFLOW)?;
    let start = usize::try_from(cmd.start).map_err(|_| EOVERFLOW)?;
    let length = usize::try_from(cmd.length).map_err(|_| EOVERFLOW)?;
    let writable = cmd.flags & IOMMU_IOAS_MAP_WRITEABLE != 0;
    // A dma-buf is imported; any other file must be a shmem or hugetlbfs file (`EINVAL`).
    let pages = match crate::ioas::dmabuf::get(cmd.fd) {
        Some(buf) => Pages::new_dmabuf(buf, &ucmd.ictx.misc_dev, start, length, writable)?,
        None => {
            let file = kernel::mm::pin::fget_for_pinning(cmd.fd)?;
            Pages::new_file(file, start, length, writable, ucmd.ictx.account_mm())?
        }
    };
    let fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA != 0).then_some(cmd.iova);
    let iova = ioas.map_all(pages, cmd.length, fixed, map_prot(cmd.flags))?;
    ucmd.cmd.iova = iova;
    ucmd.respond()
}

impl UserCmd for IommuIoasChangeProcess {
    const MIN_SIZE: usize = size_of::<IommuIoasChangeProcess>();
}

/// `IOMMU_IOAS_CHANGE_PROCESS`: charges the pinned pages of every IOAS to the calling
/// process. Only memfd mappings can move; any other mapping makes it fail with `EINVAL`.
pub(crate) fn change_process_ioctl(ucmd: &mut Ucmd<'_, IommuIoasChangeProcess>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ictx: &IommufdCtx = &ucmd.ictx;
    // Every distinct pages of every IOAS (IOASes are held while collected).
    let mut all: KVec<Arc<Pages>> = KVec::new();
    let mut res = Ok(());
    ictx.objects.for_each(ObjectType::Ioas, |obj| {
        if res.is_err() {
            return;
        }
        if let Some(ioas) = obj.data::<Ioas>() {
            res = ioas.iopt.for_each_pages(|p| {
                if !p.is_file() {
                    return Err(EINVAL);
                }
                if !all.iter().any(|q| Arc::ptr_eq(q, p)) {
                    all.push(p.clone(), GFP_KERNEL)?;
                }
                Ok(())
            });
        }
    });
    res?;

    // Move every range to the current process, each under its own lock (so the count of pinned
    // pages cannot change between charging the new process and uncharging the old one); if one
    // cannot be charged, those already moved go back.
    let mut moved: KVec<(Arc<Pages>, Source)> = KVec::with_capacity(all.len(), GFP_KERNEL)?;
    for p in all.into_iter() {
        match p.move_to_current() {
            Ok(old) => {
                // Cannot fail: the capacity is reserved.
                let _ = moved.push((p, old), GFP_KERNEL);
            }
            Err(e) => {
                while let Some((q, old)) = moved.pop() {
                    q.restore_source(old);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}
