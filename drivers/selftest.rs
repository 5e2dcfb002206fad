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
    mm::pin::user_page_pin_count,
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    }, //
};
use zerocopy::Immutable;
use zerocopy_derive::Immutable;

use crate::{
    object::ObjectType,
    ucmd::{
        Ucmd,
        UserCmd, //
    }, //
};

/// The ioctl number of `IOMMU_TEST_CMD` (`IOMMUFD_CMD_BASE + 32`).
pub(crate) const IOMMU_TEST_CMD_NR: u32 = 0x80 + 32;

/// Test operations (`IOMMU_TEST_OP_*`).
mod op {
    pub(super) const ADD_RESERVED: u32 = 1;
    pub(super) const MD_CHECK_REFS: u32 = 4;
    pub(super) const SET_TEMP_MEMORY_LIMIT: u32 = 9;
}

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

/// `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`: the size of the temporary buffers used while pinning.
/// This implementation pins in fixed chunks and only records the value.
static MEMORY_LIMIT: Atomic<u32> = Atomic::new(65536);

pub(crate) fn test_ioctl(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    match ucmd.cmd.op {
        op::ADD_RESERVED => add_reserved(ucmd),
        op::MD_CHECK_REFS => check_refs(&args::<CheckRefs>(&ucmd.cmd)?),
        op::SET_TEMP_MEMORY_LIMIT => {
            let a: MemoryLimit = args(&ucmd.cmd)?;
            if (a.limit as usize) < size_of::<usize>() + size_of::<u32>() {
                return Err(EINVAL);
            }
            MEMORY_LIMIT.store(a.limit, Relaxed);
            Ok(())
        }
        _ => Err(EOPNOTSUPP),
    }
}

fn add_reserved(ucmd: &mut Ucmd<'_, IommuTestCmd>) -> Result {
    let a: AddReserved = args(&ucmd.cmd)?;
    if a.length == 0 {
        return Err(EINVAL);
    }
    let last = a.start.checked_add(a.length - 1).ok_or(EOVERFLOW)?;
    let obj = ucmd.ictx.objects.get(ucmd.cmd.id, ObjectType::Ioas)?;
    let ioas = obj.as_ioas().ok_or(ENOENT)?;
    ioas.iopt.reserve(a.start, last, 0)
}

fn check_refs(a: &CheckRefs) -> Result {
    let len = usize::try_from(a.length).map_err(|_| EINVAL)?;
    let uptr = usize::try_from(a.uptr).map_err(|_| EINVAL)?;
    if len % PAGE_SIZE != 0 || uptr % PAGE_SIZE != 0 || uptr.checked_add(len).is_none() {
        return Err(EINVAL);
    }
    for off in (0..len).step_by(PAGE_SIZE) {
        if let Some(pins) = user_page_pin_count(uptr + off)? {
            if pins != a.refs {
                return Err(EIO);
            }
        }
    }
    Ok(())
}
