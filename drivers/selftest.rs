// SPDX-License-Identifier: GPL-2.0

//! `IOMMU_TEST_CMD`: the test-only ioctl the upstream iommufd selftests drive.
//!
//! The command layout and the operation numbers are the ABI of upstream's
//! `drivers/iommu/iommufd/iommufd_test.h`; the implementation is this module's.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    bindings,
    device::Device,
    fs::{
        anon_file::{
            self,
            AnonFileOps,
            FileOps, //
        },
        file::FileDescriptorReservation,
        LocalFile, //
    },
    mm::pin::user_page_info,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};
use zerocopy::Immutable;
use zerocopy_derive::Immutable;

use crate::{
    device::IDevice,
    hw::mock::{
        MockDevData,
        MockDevice, //
    },
    hwpt::{
        nested::{
            HwptNested,
            NestedHw, //
        },
        HwptPaging, //
    },
    ioas::access::Access,
    ioas::Ioas,
    object::ObjectData,
    object::{
        Held,
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};

/// The ioctl number of `IOMMU_TEST_CMD` (`IOMMUFD_CMD_BASE + 32`).
pub(crate) const IOMMU_TEST_CMD_NR: u32 = 0x80 + 32;

/// Test operations (`IOMMU_TEST_OP_*`).
mod op {
    pub(super) const ADD_RESERVED: u32 = 1;
    pub(super) const MOCK_DOMAIN: u32 = 2;
    pub(super) const MD_CHECK_MAP: u32 = 3;
    pub(super) const MD_CHECK_REFS: u32 = 4;
    pub(super) const CREATE_ACCESS: u32 = 5;
    pub(super) const DESTROY_ACCESS_PAGES: u32 = 6;
    pub(super) const ACCESS_PAGES: u32 = 7;
    pub(super) const ACCESS_RW: u32 = 8;
    pub(super) const SET_TEMP_MEMORY_LIMIT: u32 = 9;
    pub(super) const MOCK_DOMAIN_REPLACE: u32 = 10;
    pub(super) const ACCESS_REPLACE_IOAS: u32 = 11;
    pub(super) const MOCK_DOMAIN_FLAGS: u32 = 12;
    pub(super) const DIRTY: u32 = 13;
    pub(super) const MD_CHECK_IOTLB: u32 = 14;
    pub(super) const TRIGGER_IOPF: u32 = 15;
    pub(super) const DEV_CHECK_CACHE: u32 = 16;
    pub(super) const TRIGGER_VEVENT: u32 = 17;
    pub(super) const PASID_ATTACH: u32 = 18;
    pub(super) const PASID_REPLACE: u32 = 19;
    pub(super) const PASID_DETACH: u32 = 20;
    pub(super) const PASID_CHECK_HWPT: u32 = 21;
    pub(super) const DMABUF_GET: u32 = 22;
    pub(super) const DMABUF_REVOKE: u32 = 23;
    /// This module's own (no upstream number comes near): the translation of one IOVA by a
    /// shadow nested HWPT ([`crate::hwpt::shadow`]).
    pub(super) const SHADOW_XLATE: u32 = 1000;
}

mod pasid_dirty;

/// `MOCK_FLAGS_ACCESS_WRITE`.
const MOCK_FLAGS_ACCESS_WRITE: u32 = 1 << 0;
/// `MOCK_FLAGS_ACCESS_SYZ`.
const MOCK_FLAGS_ACCESS_SYZ: u32 = 1 << 16;
/// `MOCK_ACCESS_RW_WRITE`.
const MOCK_ACCESS_RW_WRITE: u32 = 1 << 0;
/// `MOCK_ACCESS_RW_SLOW_PATH`.
const MOCK_ACCESS_RW_SLOW_PATH: u32 = 1 << 2;
/// `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`.
const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES: u32 = 1 << 0;
/// Largest range one access operation handles.
const ACCESS_MAX_LENGTH: u64 = 16 * 1024 * 1024;

/// Size of the union of per-operation arguments.
const ARGS_SIZE: usize = 48;

/// `struct iommu_test_cmd`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuTestCmd {
    pub(crate) size: u32,
    pub(crate) op: u32,
    pub(crate) id: u32,
    pub(crate) reserved: u32,
    /// The per-operation union, decoded by each operation.
    pub(crate) args: [u8; ARGS_SIZE],
    pub(crate) last: u32,
    pub(crate) pad: u32,
}

const _: () = assert!(size_of::<IommuTestCmd>() == 72);

impl UserCmd for IommuTestCmd {
    const MIN_SIZE: usize = offset_of!(IommuTestCmd, last) + size_of::<u32>();
}

/// `add_reserved`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct AddReserved {
    start: u64,
    length: u64,
}

/// `check_refs`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct CheckRefs {
    length: u64,
    uptr: u64,
    refs: u32,
    pad: u32,
}

/// `memory_limit`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct MemoryLimit {
    limit: u32,
}

/// Decodes the union as `T`.
fn args<T: FromBytes + Immutable>(cmd: &IommuTestCmd) -> Result<T> {
    let bytes = cmd.args.get(..size_of::<T>()).ok_or(EINVAL)?;
    T::read_from_bytes(bytes).map_err(|_| EINVAL)
}

/// Calls `f` with the DEVICE object `dev_id` and its mock device (`ENOENT` if there is no such
/// object, `EINVAL` if it is not a mock device).
fn with_mock_device(
    ictx: &IommufdCtx,
    dev_id: u32,
    f: impl FnOnce(&IDevice, &MockDevData) -> Result,
) -> Result {
    let obj = ictx.objects.get(dev_id, ObjectType::Device)?;
    let idev = obj.data::<IDevice>().ok_or(ENOENT)?;
    let data = MockDevice::from_device(idev.device()).ok_or(EINVAL)?;
    f(&idev, data)
}

/// `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`: the size of the temporary buffers used while pinning.
/// This implementation pins in fixed chunks and only records the value.
static MEMORY_LIMIT: Atomic<u32> = Atomic::new(65536);

pub(crate) fn test_ioctl(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    match ucmd.cmd.op {
        op::ADD_RESERVED => add_reserved(ucmd),
        op::MD_CHECK_REFS => check_refs(&args::<CheckRefs>(&ucmd.cmd)?),
        op::MOCK_DOMAIN | op::MOCK_DOMAIN_FLAGS => {
            let with_flags = ucmd.cmd.op == op::MOCK_DOMAIN_FLAGS;
            mock_domain(ucmd, with_flags)
        }
        op::MOCK_DOMAIN_REPLACE => mock_domain_replace(ucmd),
        op::MD_CHECK_MAP => check_map(ucmd),
        op::SHADOW_XLATE => shadow_xlate(ucmd),
        op::DIRTY => pasid_dirty::dirty(ucmd),
        op::PASID_ATTACH => pasid_dirty::pasid_attach(ucmd),
        op::PASID_REPLACE => pasid_dirty::pasid_replace(ucmd),
        op::PASID_DETACH => pasid_dirty::pasid_detach(ucmd),
        op::PASID_CHECK_HWPT => pasid_dirty::pasid_check_hwpt(ucmd),
        op::MD_CHECK_IOTLB => {
            let a: CheckEntry = args(&ucmd.cmd)?;
            let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::HwptNested)?;
            let hwpt = obj.data::<HwptNested>().ok_or(ENOENT)?;
            crate::mock()?.check_iotlb(hwpt.native()?, a.id, a.value)
        }
        op::TRIGGER_IOPF => {
            let a: TriggerIopf = args(&ucmd.cmd)?;
            with_mock_device(&ucmd.ictx, a.dev_id, |idev, data| {
                data.trigger_iopf(idev.device(), a.pasid, a.grpid, a.perm, a.addr);
                Ok(())
            })
        }
        op::TRIGGER_VEVENT => {
            let a: TriggerVevent = args(&ucmd.cmd)?;
            with_mock_device(&ucmd.ictx, a.dev_id, |_, data| data.trigger_vevent())
        }
        op::DEV_CHECK_CACHE => {
            let a: CheckEntry = args(&ucmd.cmd)?;
            with_mock_device(&ucmd.ictx, ucmd.cmd.id, |_, data| {
                data.check_cache(a.id, a.value)
            })
        }
        op::CREATE_ACCESS => create_access(ucmd),
        op::ACCESS_PAGES => access_pages(ucmd),
        op::DESTROY_ACCESS_PAGES => {
            let a: DestroyAccessPages = args(&ucmd.cmd)?;
            with_staccess(ucmd.cmd.id, |st| st.access.unpin(a.access_pages_id))
        }
        op::ACCESS_RW => access_rw(ucmd),
        op::ACCESS_REPLACE_IOAS => {
            let a: AccessReplaceIoas = args(&ucmd.cmd)?;
            with_staccess(ucmd.cmd.id, |st| st.access.attach(&st.ctx, a.ioas_id))
        }
        op::SET_TEMP_MEMORY_LIMIT => {
            let a: MemoryLimit = args(&ucmd.cmd)?;
            if (a.limit as usize) < size_of::<usize>() + size_of::<u32>() {
                return Err(EINVAL);
            }
            MEMORY_LIMIT.store(a.limit, Relaxed);
            Ok(())
        }
        op::DMABUF_GET => {
            let a: DmabufGet = args(&ucmd.cmd)?;
            let fd = crate::ioas::dmabuf::test_get(a.length, a.open_flags)?;
            ucmd.set_result(fd);
            Ok(())
        }
        op::DMABUF_REVOKE => {
            let a: DmabufRevoke = args(&ucmd.cmd)?;
            crate::ioas::dmabuf::test_revoke(a.dmabuf_fd, a.revoked != 0)
        }
        _ => Err(EOPNOTSUPP),
    }
}

/// `dmabuf_get`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct DmabufGet {
    length: u32,
    open_flags: u32,
}

/// `dmabuf_revoke`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct DmabufRevoke {
    dmabuf_fd: i32,
    revoked: u32,
}

fn add_reserved(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: AddReserved = args(&ucmd.cmd)?;
    if a.length == 0 {
        return Err(EINVAL);
    }
    let last = a.start.checked_add(a.length - 1).ok_or(EOVERFLOW)?;
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::Ioas)?;
    let ioas = obj.data::<Ioas>().ok_or(ENOENT)?;
    ioas.iopt.reserve(a.start, last, 0)
}

fn check_refs(a: &CheckRefs) -> Result {
    let len = usize::try_from(a.length).map_err(|_| EINVAL)?;
    let uptr = usize::try_from(a.uptr).map_err(|_| EINVAL)?;
    if len % PAGE_SIZE != 0 || uptr % PAGE_SIZE != 0 || uptr.checked_add(len).is_none() {
        return Err(EINVAL);
    }
    for off in (0..len).step_by(PAGE_SIZE) {
        if let Some(pins) = user_page_info(uptr + off)?.pins {
            if pins != a.refs {
                return Err(EIO);
            }
        }
    }
    Ok(())
}

/// `create_access`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct CreateAccess {
    out_access_fd: u32,
    flags: u32,
}

/// `destroy_access_pages`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct DestroyAccessPages {
    access_pages_id: u32,
}

/// `access_pages`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct AccessPages {
    flags: u32,
    out_access_pages_id: u32,
    iova: u64,
    length: u64,
    uptr: u64,
}

/// `access_rw`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct AccessRw {
    iova: u64,
    length: u64,
    uptr: u64,
    flags: u32,
    pad: u32,
}

/// `access_replace_ioas`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct AccessReplaceIoas {
    ioas_id: u32,
}

/// Writes `v` back into the union.
fn set_args<T: IntoBytes + Immutable>(cmd: &mut IommuTestCmd, v: &T) -> Result {
    let src = v.as_bytes();
    cmd.args
        .get_mut(..src.len())
        .ok_or(EINVAL)?
        .copy_from_slice(src);
    Ok(())
}

/// The selftest's access file: what `IOMMU_TEST_OP_CREATE_ACCESS` returns as an fd.
pub(crate) struct StAccess {
    /// The iommufd context, kept alive while the access file is open.
    ctx: Arc<IommufdCtx>,
    /// The access object (its user reference makes `IOMMU_DESTROY` of it `EBUSY`, as the
    /// access belongs to the file).
    obj: Option<ObjectRef>,
    access: Arc<Access>,
}

impl Drop for StAccess {
    fn drop(&mut self) {
        // The file is released: the owner unpins what it pinned first (a destroyed access is
        // not notified any more, so an unmap would wait for those pins in vain), then, as
        // `iommufd_access_destroy()`, once no unmap notifies the access any more, it leaves its
        // IOAS and the object goes.
        if let Some(obj) = self.obj.take() {
            let access = &self.access;
            access.unpin_all();
            self.ctx
                .objects
                .destroy_user(&self.ctx, obj, || access.detach());
            self.access.retire();
        }
    }
}

struct StAccessFile;

#[vtable]
impl AnonFileOps for StAccessFile {
    type Data = KBox<StAccess>;
    const FOPS: &'static FileOps<Self> = kernel::anon_file_ops!(StAccessFile);
}

/// Calls `f` with the access behind the access fd `fd`; `EBADFD` for any other file.
fn with_staccess<R>(fd: u32, f: impl FnOnce(&StAccess) -> Result<R>) -> Result<R> {
    let file = LocalFile::fget(fd).map_err(|_| EBADFD)?;
    let st = anon_file::data::<StAccessFile>(&file).ok_or(EBADFD)?;
    f(st)
}

fn create_access(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: CreateAccess = args(&ucmd.cmd)?;
    if a.flags & !MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES != 0 {
        return Err(EOPNOTSUPP);
    }
    let fdr =
        FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC).map_err(|_| ENOMEM)?;
    let access = Access::new(a.flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES != 0)?;
    let new = ucmd.ictx.objects.alloc(ObjectKind::new(access.clone()))?;
    let id = new.id();
    new.finalize()?;
    let obj = match ucmd.ictx.objects.get(id, ObjectType::Access) {
        Ok(obj) => obj,
        Err(e) => {
            ucmd.ictx.objects.remove(id, ObjectType::Access);
            return Err(e);
        }
    };
    let ctx: Arc<IommufdCtx> = ucmd.ictx.into();
    // From here on, dropping `st` removes the object again.
    let st = KBox::new(
        StAccess {
            ctx,
            obj: Some(obj.into_long_term()),
            access: access.clone(),
        },
        GFP_KERNEL,
    )?;
    access.attach(&ucmd.ictx, ucmd.cmd.id)?;
    let file = anon_file::create::<StAccessFile>(
        c"[iommufd_test_staccess]",
        st,
        bindings::O_RDWR | bindings::O_CLOEXEC,
    )?;
    a.out_access_fd = fdr.reserved_fd();
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()?;
    fdr.fd_install(file);
    Ok(())
}

/// An IOVA in the syzkaller mode (`MOCK_FLAGS_ACCESS_SYZ`): the bytes of the `u64` are
/// `{ u32 nth_area; u32 offset; }`, which name the `offset`th byte of the `nth_area`th area of
/// `ioas`, a space small enough for a fuzzer to hit. Without that area the IOVA is 0.
fn syz_iova(ioas: &Ioas, iova: u64) -> u64 {
    let [n0, n1, n2, n3, o0, o1, o2, o3] = iova.to_ne_bytes();
    let nth = u32::from_ne_bytes([n0, n1, n2, n3]);
    let offset = u32::from_ne_bytes([o0, o1, o2, o3]);
    ioas.iopt
        .nth_area_iova(nth)
        .map_or(0, |first| first.wrapping_add(u64::from(offset)))
}

/// The syzkaller mode of an ioctl that names an IOVA of the IOAS `ioas_id` (`IOMMU_IOAS_COPY`'s
/// source): with `MOCK_FLAGS_ACCESS_SYZ` in `flags`, the bit is taken out and `iova` converted.
/// An `ioas_id` that is not an IOAS leaves `iova` as it is, for the ioctl to refuse.
pub(crate) fn syz_conv_iova_id(ictx: &IommufdCtx, ioas_id: u32, iova: &mut u64, flags: &mut u32) {
    if *flags & MOCK_FLAGS_ACCESS_SYZ == 0 {
        return;
    }
    *flags &= !MOCK_FLAGS_ACCESS_SYZ;
    let Ok(obj) = ictx.objects.get(ioas_id, ObjectType::Ioas) else {
        return;
    };
    if let Some(ioas) = obj.data::<Ioas>() {
        *iova = syz_iova(&ioas, *iova);
    }
}

/// The IOVA an access op names: with `MOCK_FLAGS_ACCESS_SYZ` in `flags`, the syzkaller IOVA
/// converted in the IOAS the access is attached to (0 if it is attached to none).
fn access_op_iova(access: &Access, iova: u64, flags: u32) -> u64 {
    if flags & MOCK_FLAGS_ACCESS_SYZ == 0 {
        return iova;
    }
    access.ioas().map_or(0, |ioas| syz_iova(&ioas, iova))
}

fn access_pages(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: AccessPages = args(&ucmd.cmd)?;
    if a.length > ACCESS_MAX_LENGTH {
        return Err(ENOMEM);
    }
    if a.flags & !(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ) != 0 {
        return Err(EOPNOTSUPP);
    }
    let id = with_staccess(ucmd.cmd.id, |st| {
        if !st.access.pins_pages() {
            return Err(EOPNOTSUPP);
        }
        let iova = access_op_iova(&st.access, a.iova, a.flags);
        let (id, phys) = st
            .access
            .pin(iova, a.length, a.flags & MOCK_FLAGS_ACCESS_WRITE != 0)?;
        if a.uptr != 0 {
            // Every pinned page must be the page user space has at the matching address.
            let base = (a.uptr as usize).wrapping_sub((iova % PAGE_SIZE as u64) as usize);
            // A user address GUP refuses gives GUP's errno, as upstream.
            let same = phys.iter().enumerate().try_for_each(|(k, &p)| {
                let info = user_page_info(base.wrapping_add(k * PAGE_SIZE))?;
                if (info.pfn as u64) << PAGE_SHIFT != p {
                    return Err(EBADE);
                }
                Ok(())
            });
            if let Err(e) = same {
                let _ = st.access.unpin(id);
                return Err(e);
            }
        }
        Ok(id)
    })?;
    a.out_access_pages_id = id;
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()
}

fn access_rw(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: AccessRw = args(&ucmd.cmd)?;
    if a.length > ACCESS_MAX_LENGTH {
        return Err(ENOMEM);
    }
    if a.flags & !(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ) != 0 {
        return Err(EOPNOTSUPP);
    }
    with_staccess(ucmd.cmd.id, |st| {
        let len = a.length as usize;
        let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        let user = || UserSlice::new(UserPtr::from_addr(a.uptr as usize), len);
        let slow = a.flags & MOCK_ACCESS_RW_SLOW_PATH != 0;
        let write = a.flags & MOCK_ACCESS_RW_WRITE != 0;
        if write {
            user().reader().read_slice(&mut buf)?;
        }
        let iova = access_op_iova(&st.access, a.iova, a.flags);
        st.access.rw(iova, &mut buf, write, slow)?;
        if !write {
            user().writer().write_slice(&buf)?;
        }
        Ok(())
    })
}

/// `mock_domain` / `mock_domain_flags`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct MockDomain {
    out_stdev_id: u32,
    out_hwpt_id: u32,
    out_idev_id: u32,
    dev_flags: u32,
}

/// `mock_domain_replace`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct MockDomainReplace {
    pt_id: u32,
}

/// `check_map`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct CheckMap {
    iova: u64,
    length: u64,
    uptr: u64,
}

/// `shadow_xlate` (this module's own): in `iova` and `uptr`, out the state
/// ([`XLATE_NONE`] ...) and the permissions (`IOMMU_READ`, `IOMMU_WRITE`).
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct ShadowXlate {
    iova: u64,
    uptr: u64,
    out_state: u32,
    out_prot: u32,
}

/// Nothing translates the IOVA.
const XLATE_NONE: u32 = 0;
/// The IOVA translates to the page of `uptr` (at its offset).
const XLATE_UPTR: u32 = 1;
/// The IOVA translates to another page.
const XLATE_OTHER: u32 = 2;
/// The shadow's records and its domain disagree.
const XLATE_INCONSISTENT: u32 = 3;

/// `trigger_iopf`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct TriggerIopf {
    dev_id: u32,
    pasid: u32,
    grpid: u32,
    perm: u32,
    addr: u64,
}

/// `trigger_vevent`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct TriggerVevent {
    dev_id: u32,
}

/// `check_iotlb` and `check_dev_cache`: entry `id` should hold `value`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
struct CheckEntry {
    id: u32,
    value: u32,
}

/// A selftest device: a mock device bound to the context (the selftest object of upstream).
pub(crate) struct StDev {
    /// The DEVICE object (its user reference keeps user space from destroying it); it owns
    /// the mock device.
    idev: ObjectRef,
}

impl ObjectData for StDev {
    const TYPE: ObjectType = ObjectType::Selftest;

    fn on_destroy(&self, ictx: &IommufdCtx, _id: u32) {
        self.teardown(ictx);
    }

    /// The DEVICE object, out of the table since [`StDev::teardown`], goes after this one: its
    /// drop removes the mock device, whose many allocations and frees then run a few frames
    /// higher on the stack (see [`ObjectData::free_after`]).
    fn free_after(&self) -> Option<Held> {
        Some(self.idev.hold())
    }
}

impl StDev {
    fn idev(&self) -> Result<ArcBorrow<'_, IDevice>> {
        self.idev.data::<IDevice>().ok_or(EINVAL)
    }

    /// Runs `f`, which changes the device's attachments, with fault reports for the device held
    /// off (a report reads the attachment's handle).
    pub(crate) fn with_reports_held<R>(&self, f: impl FnOnce() -> R) -> R {
        let idev = self.idev().ok();
        match idev
            .as_ref()
            .and_then(|d| MockDevice::from_device(d.device()))
        {
            Some(data) => data.with_reports_held(f),
            None => f(),
        }
    }

    /// Detaches and unbinds the device (the object is being destroyed).
    pub(crate) fn teardown(&self, ictx: &IommufdCtx) {
        if let Ok(idev) = self.idev() {
            self.with_reports_held(|| {
                idev.detach(ictx);
                idev.pasid_detach_all(ictx);
            });
            idev.remove_vdev(ictx);
        }
        ictx.objects.remove_same(&self.idev);
    }
}

/// `MOCK_DOMAIN` and `MOCK_DOMAIN_FLAGS`: a mock device bound and attached to `cmd.id`.
///
/// Inlined into the one caller, for the stacks of the device's creation (see
/// [`MockDevice::create`]).
#[inline(always)]
fn mock_domain(ucmd: &mut Ucmd<'_, IommuTestCmd>, with_flags: bool) -> Result {
    let ictx: &IommufdCtx = &ucmd.ictx;
    let mut a: MockDomain = args(&ucmd.cmd)?;
    let flags = if with_flags { a.dev_flags } else { 0 };
    let st_new = ictx.objects.reserve()?;
    let mock = crate::mock()?;
    let dev = MockDevice::create(&mock, flags)?;
    let idev_new = ictx.objects.reserve()?;
    let device: ARef<Device> = dev.device().into();
    // The device object owns the mock device from here on.
    let (idev, idev_id) = IDevice::bind(ictx, idev_new, &device, Some(dev))?;
    let idev_ref = ictx.objects.get(idev_id, ObjectType::Device)?;
    let hwpt_id = match idev.attach(ictx, ucmd.cmd.id) {
        Ok(id) => id,
        Err(e) => {
            ictx.objects.remove_same(&idev_ref);
            return Err(e);
        }
    };
    let st_id = st_new.id();
    let stdev = Arc::new(
        StDev {
            idev: idev_ref.into_long_term(),
        },
        GFP_KERNEL,
    );
    let stdev = match stdev {
        Ok(s) => s,
        Err(e) => {
            // `idev_ref` went with the failed allocation.
            idev.detach(ictx);
            ictx.objects.remove(idev_id, ObjectType::Device);
            return Err(e.into());
        }
    };
    if let Err(e) = st_new.publish(ObjectKind::new(stdev.clone())) {
        stdev.teardown(ictx);
        return Err(e);
    }
    a.out_stdev_id = st_id;
    a.out_hwpt_id = hwpt_id;
    a.out_idev_id = idev_id;
    set_args(&mut ucmd.cmd, &a)?;
    if let Err(e) = ucmd.respond() {
        // User space never learns the ids: undo everything.
        let _ = ictx.destroy_object(st_id);
        return Err(e);
    }
    Ok(())
}

fn mock_domain_replace(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let ictx: &IommufdCtx = &ucmd.ictx;
    let mut a: MockDomainReplace = args(&ucmd.cmd)?;
    // Upstream looks the id up as a selftest object: any other object is `ENOENT`.
    let obj = ictx.objects.get(ucmd.cmd.id, ObjectType::Selftest)?;
    let st = obj.data::<StDev>().ok_or(EINVAL)?;
    a.pt_id = st.with_reports_held(|| st.idev()?.replace(ictx, a.pt_id))?;
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()
}

/// `SHADOW_XLATE`: how the shadow nested HWPT `id` translates `iova`, as its records say and
/// as its domain has it, compared with the page of `uptr` (not compared if 0). `EINVAL` for a
/// nested HWPT that is not a shadow.
fn shadow_xlate(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let mut a: ShadowXlate = args(&ucmd.cmd)?;
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::HwptNested)?;
    let hwpt = obj.data::<HwptNested>().ok_or(ENOENT)?;
    let NestedHw::Shadow(s) = &hwpt.hw else {
        return Err(EINVAL);
    };
    let x = s.shadow().xlate(a.iova);
    let expect = if a.uptr != 0 {
        let uptr = usize::try_from(a.uptr).map_err(|_| EINVAL)?;
        let info = user_page_info(uptr & !(PAGE_SIZE - 1))?;
        Some(((info.pfn as u64) << PAGE_SHIFT) + (uptr % PAGE_SIZE) as u64)
    } else {
        None
    };
    (a.out_state, a.out_prot) = match x.recorded {
        None if x.domain == 0 => (XLATE_NONE, 0),
        Some((phys, prot)) if phys == x.domain => match expect {
            Some(e) if e == phys => (XLATE_UPTR, prot),
            _ => (XLATE_OTHER, prot),
        },
        _ => (XLATE_INCONSISTENT, 0),
    };
    set_args(&mut ucmd.cmd, &a)?;
    ucmd.respond()
}

fn check_map(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: CheckMap = args(&ucmd.cmd)?;
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::HwptPaging)?;
    let hwpt = obj.data::<HwptPaging>().ok_or(ENOENT)?;
    let mock = crate::mock()?;
    let ps = mock.page_size(&hwpt.domain)? as u64;
    if a.iova % ps != 0
        || a.length % ps != 0
        || a.uptr % ps != 0
        || a.uptr.checked_add(a.length).is_none()
    {
        return Err(EINVAL);
    }
    let mut off = 0u64;
    while off < a.length {
        // `uptr + length` does not overflow (checked above) and `off < length`.
        let uptr = usize::try_from(a.uptr + off).map_err(|_| EINVAL)?;
        let info = user_page_info(uptr & !(PAGE_SIZE - 1))?;
        let expect = ((info.pfn as u64) << PAGE_SHIFT) + (uptr % PAGE_SIZE) as u64;
        // Nothing is mapped past the top of the IOVA space (C's sum wraps to an IOVA that is
        // not mapped either, since mock domains end far below).
        let iova = a.iova.checked_add(off).ok_or(EINVAL)?;
        if hwpt.domain.iova_to_phys(iova) != expect {
            return Err(EINVAL);
        }
        // `length` is a multiple of `ps`, so this stays at most `length`.
        off += ps;
    }
    Ok(())
}
