// SPDX-License-Identifier: GPL-2.0

//! The ioctl table of `/dev/iommu` and its dispatch.
//!
//! The iommufd commands are `_IO(';', nr)` with `nr` from 0x80 to 0x95, and
//! `IOMMU_TEST_CMD` (0xa0) with `CONFIG_IOMMUFD_TEST`. A command is handled
//! like upstream's `iommufd_fops_ioctl()`:
//!
//! 1. An `nr` outside the table (0x80 up to its last entry, `IOMMU_TEST_CMD`
//!    with `CONFIG_IOMMUFD_TEST`) goes to the VFIO compatibility ioctls.
//! 2. The structure's size field is read (`EFAULT` if that fails).
//! 3. A command whose number matches the table's `nr` but not the whole
//!    ioctl number (another type, or size or direction bits), or a hole of
//!    the table, fails with `ENOTTY` (upstream's `ENOIOCTLCMD`).
//! 4. The structure is copied in by the rules of [`crate::ucmd`] (`EINVAL`
//!    when too short, `E2BIG` for non-zero unknown bytes) and the command
//!    runs.
//!
//! Commands this module does not implement yet fail with `ENOTTY` before
//! anything is read, so no command appears to work that does not.

use kernel::{
    ioctl::{
        _IO,
        _IOC_NR, //
    },
    prelude::*,
    sync::ArcBorrow, //
};
use zerocopy_derive::Immutable;

use crate::{
    device::hw_info,
    eventq::{
        fault,
        veventq, //
    },
    hwpt,
    hwpt::dirty,
    hwpt::invalidate,
    ioas,
    object,
    uapi::{
        IOMMUFD_CMD_BASE,
        IOMMUFD_CMD_LAST,
        IOMMUFD_TYPE, //
    },
    ucmd::{
        read_user_size,
        Ucmd,
        UserCmd, //
    },
    vfio::compat,
    viommu::{
        self,
        hw_queue,
        vdevice, //
    },
    IommufdCtx, //
};

/// The iommufd commands, by `nr` (`enum` in the uAPI header).
mod nr {
    /// `IOMMUFD_CMD_DESTROY`.
    pub(super) const DESTROY: u32 = 0x80;
    /// `IOMMUFD_CMD_IOAS_ALLOC`.
    pub(super) const IOAS_ALLOC: u32 = 0x81;
    /// `IOMMUFD_CMD_IOAS_ALLOW_IOVAS`.
    pub(super) const IOAS_ALLOW_IOVAS: u32 = 0x82;
    /// `IOMMUFD_CMD_IOAS_COPY`.
    pub(super) const IOAS_COPY: u32 = 0x83;
    /// `IOMMUFD_CMD_IOAS_IOVA_RANGES`.
    pub(super) const IOAS_IOVA_RANGES: u32 = 0x84;
    /// `IOMMUFD_CMD_IOAS_MAP`.
    pub(super) const IOAS_MAP: u32 = 0x85;
    /// `IOMMUFD_CMD_IOAS_UNMAP`.
    pub(super) const IOAS_UNMAP: u32 = 0x86;
    /// `IOMMUFD_CMD_OPTION`.
    pub(super) const OPTION: u32 = 0x87;
    /// `IOMMUFD_CMD_VFIO_IOAS`.
    pub(super) const VFIO_IOAS: u32 = 0x88;
    /// `IOMMUFD_CMD_HWPT_ALLOC`.
    pub(super) const HWPT_ALLOC: u32 = 0x89;
    /// `IOMMUFD_CMD_GET_HW_INFO`.
    pub(super) const GET_HW_INFO: u32 = 0x8a;
    /// `IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING`.
    pub(super) const HWPT_SET_DIRTY_TRACKING: u32 = 0x8b;
    /// `IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP`.
    pub(super) const HWPT_GET_DIRTY_BITMAP: u32 = 0x8c;
    /// `IOMMUFD_CMD_HWPT_INVALIDATE`.
    pub(super) const HWPT_INVALIDATE: u32 = 0x8d;
    /// `IOMMUFD_CMD_FAULT_QUEUE_ALLOC`.
    pub(super) const FAULT_QUEUE_ALLOC: u32 = 0x8e;
    /// `IOMMUFD_CMD_IOAS_MAP_FILE`.
    pub(super) const IOAS_MAP_FILE: u32 = 0x8f;
    /// `IOMMUFD_CMD_VIOMMU_ALLOC`.
    pub(super) const VIOMMU_ALLOC: u32 = 0x90;
    /// `IOMMUFD_CMD_VDEVICE_ALLOC`.
    pub(super) const VDEVICE_ALLOC: u32 = 0x91;
    /// `IOMMUFD_CMD_IOAS_CHANGE_PROCESS`.
    pub(super) const IOAS_CHANGE_PROCESS: u32 = 0x92;
    /// `IOMMUFD_CMD_VEVENTQ_ALLOC`.
    pub(super) const VEVENTQ_ALLOC: u32 = 0x93;
    /// `IOMMUFD_CMD_HW_QUEUE_ALLOC`.
    pub(super) const HW_QUEUE_ALLOC: u32 = 0x94;
    /// `IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA`.
    pub(super) const IOAS_NOIOMMU_GET_PA: u32 = 0x95;
}

/// Copies in the command structure of type `T` and runs `execute` on it.
fn run<T: UserCmd>(
    ictx: ArcBorrow<'_, IommufdCtx>,
    cmd: u32,
    arg: usize,
    execute: fn(&mut Ucmd<'_, T>) -> Result,
) -> Result<isize> {
    let user_size = read_user_size(arg)?;
    if cmd != _IO(IOMMUFD_TYPE, _IOC_NR(cmd)) {
        return Err(ENOTTY);
    }
    let mut ucmd = Ucmd::<T>::copy_in(ictx, arg, user_size)?;
    execute(&mut ucmd)?;
    Ok(ucmd.result())
}

/// The VFIO compatibility ioctls (`/dev/vfio/vfio` on top of iommufd).
///
/// Not implemented yet; upstream also answers `ENOTTY` for any number it
/// does not know.
/// A command whose structure is `SIZE` bytes, of which user space must pass at least `MIN`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct PendingCmd<const SIZE: usize, const MIN: usize> {
    bytes: [u8; SIZE],
}

impl<const SIZE: usize, const MIN: usize> UserCmd for PendingCmd<SIZE, MIN> {
    const MIN_SIZE: usize = MIN;
}

/// An ioctl of the uAPI this implementation does not serve yet.
fn pending<const SIZE: usize, const MIN: usize>(
    _ucmd: &mut Ucmd<'_, PendingCmd<SIZE, MIN>>,
) -> Result {
    Err(EOPNOTSUPP)
}

fn vfio_ioctl(ictx: &IommufdCtx, cmd: u32, arg: usize) -> Result<isize> {
    compat::vfio_ioctl(ictx, cmd, arg)
}

/// Handles the ioctl `cmd` with argument `arg` on the file of `ictx`, counted by command in
/// debugfs `iommufd_rs/ioctls`.
pub(crate) fn dispatch(ictx: ArcBorrow<'_, IommufdCtx>, cmd: u32, arg: usize) -> Result<isize> {
    let ret = dispatch_one(ictx, cmd, arg);
    #[cfg(CONFIG_IOMMUFD_TEST)]
    let test_nr = crate::selftest::IOMMU_TEST_CMD_NR;
    #[cfg(not(CONFIG_IOMMUFD_TEST))]
    let test_nr = u32::MAX;
    crate::stats::ioctl_count(_IOC_NR(cmd), test_nr, ret.is_err());
    ret
}

fn dispatch_one(ictx: ArcBorrow<'_, IommufdCtx>, cmd: u32, arg: usize) -> Result<isize> {
    let cmd_nr = _IOC_NR(cmd);
    // Only with `CONFIG_IOMMUFD_TEST`, as upstream: otherwise its number is outside the table and
    // goes to the VFIO compat ioctls, which do not know it either (`ENOTTY`).
    #[cfg(CONFIG_IOMMUFD_TEST)]
    if cmd_nr == crate::selftest::IOMMU_TEST_CMD_NR {
        return run(ictx, cmd, arg, crate::selftest::test_ioctl);
    }
    // Upstream's table ends at its last entry: `IOMMU_TEST_CMD` with `CONFIG_IOMMUFD_TEST`, so
    // the unused numbers before it are inside the table (size read, then `ENOTTY`).
    #[cfg(CONFIG_IOMMUFD_TEST)]
    let table_last = crate::selftest::IOMMU_TEST_CMD_NR.max(IOMMUFD_CMD_LAST);
    #[cfg(not(CONFIG_IOMMUFD_TEST))]
    let table_last = IOMMUFD_CMD_LAST;
    if !(IOMMUFD_CMD_BASE..=table_last).contains(&cmd_nr) {
        return vfio_ioctl(&ictx, cmd, arg);
    }

    match cmd_nr {
        nr::DESTROY => run(ictx, cmd, arg, object::destroy_ioctl),
        nr::IOAS_ALLOC => run(ictx, cmd, arg, ioas::alloc_ioctl),
        nr::IOAS_IOVA_RANGES => run(ictx, cmd, arg, ioas::iova_ranges_ioctl),
        nr::IOAS_ALLOW_IOVAS => run(ictx, cmd, arg, ioas::allow_iovas_ioctl),
        nr::IOAS_COPY => run(ictx, cmd, arg, ioas::copy_ioctl),
        nr::IOAS_MAP => run(ictx, cmd, arg, ioas::map_ioctl),
        nr::IOAS_UNMAP => run(ictx, cmd, arg, ioas::unmap_ioctl),
        nr::OPTION => run(ictx, cmd, arg, ioas::option_ioctl),
        nr::VFIO_IOAS => run(ictx, cmd, arg, compat::vfio_ioas_ioctl),
        // Not implemented yet: the size rules apply, then EOPNOTSUPP.
        nr::HWPT_ALLOC => run(ictx, cmd, arg, hwpt::alloc_ioctl),
        nr::GET_HW_INFO => run(ictx, cmd, arg, hw_info::get_hw_info_ioctl),
        nr::HWPT_SET_DIRTY_TRACKING => run(ictx, cmd, arg, dirty::set_dirty_tracking_ioctl),
        nr::HWPT_GET_DIRTY_BITMAP => run(ictx, cmd, arg, dirty::get_dirty_bitmap_ioctl),
        nr::HWPT_INVALIDATE => run(ictx, cmd, arg, invalidate::invalidate_ioctl),
        nr::FAULT_QUEUE_ALLOC => run(ictx, cmd, arg, fault::alloc_ioctl),
        nr::IOAS_MAP_FILE => run(ictx, cmd, arg, ioas::map_file_ioctl),
        nr::VIOMMU_ALLOC => run(ictx, cmd, arg, viommu::alloc_ioctl),
        nr::VDEVICE_ALLOC => run(ictx, cmd, arg, vdevice::alloc_ioctl),
        nr::IOAS_CHANGE_PROCESS => run(ictx, cmd, arg, ioas::change_process_ioctl),
        nr::VEVENTQ_ALLOC => run(ictx, cmd, arg, veventq::alloc_ioctl),
        nr::HW_QUEUE_ALLOC => run(ictx, cmd, arg, hw_queue::alloc_ioctl),
        // Without `CONFIG_IOMMUFD_NOIOMMU` upstream's answer after the size rules.
        nr::IOAS_NOIOMMU_GET_PA => run(ictx, cmd, arg, pending::<40, 40>),
        // A hole of the table: its size is read first, as for any entry (`EFAULT`).
        _ => {
            read_user_size(arg)?;
            Err(ENOTTY)
        }
    }
}
