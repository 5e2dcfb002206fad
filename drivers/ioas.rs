// SPDX-License-Identifier: GPL-2.0

//! The I/O address space (IOAS): `IOMMU_IOAS_ALLOC` and
//! `IOMMU_IOAS_IOVA_RANGES`.
//!
//! An IOAS is the set of IOVA to memory mappings that page tables attached to
//! it will follow. So far an IOAS has no mappings, no attached devices and no
//! reserved or disallowed ranges, so the whole IOVA space is allowed and no
//! alignment is required (1), as for a new upstream IOAS (`iopt_init_table()`:
//! an IOAS starts as a software table without alignment restrictions; only
//! attached domains raise it, to their page size).

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

use crate::{
    object::{
        ObjectKind,
        ObjectType, //
    },
    uapi::{
        IommuIoasAlloc,
        IommuIoasIovaRanges,
        IommuIovaRange, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    }, //
};

/// An I/O address space.
pub(crate) struct Ioas {
    /// The alignment every mapping's IOVA and length must have.
    iova_alignment: u64,
}

impl Ioas {
    /// Creates an empty IOAS.
    fn new() -> Self {
        Self { iova_alignment: 1 }
    }

    /// Returns the alignment every mapping's IOVA and length must have.
    pub(crate) fn iova_alignment(&self) -> u64 {
        self.iova_alignment
    }

    /// Returns the ranges of IOVA that may be mapped, in ascending order.
    ///
    /// These are the holes between reserved ranges within `0..=ULONG_MAX`.
    /// Nothing is reserved yet, so it is the whole range.
    pub(crate) fn allowed_iovas(&self) -> impl Iterator<Item = IommuIovaRange> {
        core::iter::once(IommuIovaRange {
            start: 0,
            // CAST: `usize` is at most 64 bits wide, so this is lossless.
            last: usize::MAX as u64,
        })
    }
}

impl UserCmd for IommuIoasAlloc {
    const MIN_SIZE: usize = offset_of!(IommuIoasAlloc, out_ioas_id) + size_of::<u32>();
}

/// `IOMMU_IOAS_ALLOC`: creates an IOAS and returns its id.
///
/// The IOAS only becomes visible once its id has been written back to user
/// space; if that fails, the IOAS is freed and its id with it.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuIoasAlloc>) -> Result {
    if ucmd.cmd.flags != 0 {
        return Err(EOPNOTSUPP);
    }

    let new = ucmd.ictx.objects.alloc(ObjectKind::Ioas(Ioas::new()))?;
    ucmd.cmd.out_ioas_id = new.id();
    // On failure `new` is dropped unpublished, which removes it again.
    ucmd.respond()?;
    new.finalize()
}

impl UserCmd for IommuIoasIovaRanges {
    const MIN_SIZE: usize = offset_of!(IommuIoasIovaRanges, out_iova_alignment) + size_of::<u64>();
}

/// `IOMMU_IOAS_IOVA_RANGES`: reports the IOVA ranges an IOAS allows.
///
/// Writes up to `num_iovas` ranges to `allowed_iovas` and sets `num_iovas` to
/// the number of ranges there are; if that is more than there was room for,
/// the command still writes back the structure and then fails with
/// `EMSGSIZE`, so user space can retry with a larger array.
pub(crate) fn iova_ranges_ioctl(ucmd: &mut Ucmd<'_, IommuIoasIovaRanges>) -> Result {
    if ucmd.cmd.reserved != 0 {
        return Err(EOPNOTSUPP);
    }

    let obj = ucmd.ictx.objects.get(ucmd.cmd.ioas_id, ObjectType::Ioas)?;
    let ioas = obj.as_ioas().ok_or(ENOENT)?;

    let max_iovas = ucmd.cmd.num_iovas;
    // CAST: A user pointer fits in `usize` on 64-bit kernels; on 32-bit ones
    // the upper bits are ignored, as `u64_to_user_ptr()` does.
    let ranges = UserPtr::from_addr(ucmd.cmd.allowed_iovas as usize);
    // CAST: `u32` to `usize` is lossless on every architecture Linux supports.
    let room = (max_iovas as usize)
        .checked_mul(size_of::<IommuIovaRange>())
        .ok_or(EOVERFLOW)?;
    let mut writer = UserSlice::new(ranges, room).writer();
    let mut num_iovas = 0u32;
    for range in ioas.allowed_iovas() {
        if num_iovas < max_iovas {
            writer.write_slice(range.as_bytes())?;
        }
        num_iovas = num_iovas.checked_add(1).ok_or(EOVERFLOW)?;
    }
    ucmd.cmd.num_iovas = num_iovas;
    ucmd.cmd.out_iova_alignment = ioas.iova_alignment();

    ucmd.respond()?;
    if num_iovas > max_iovas {
        return Err(EMSGSIZE);
    }
    Ok(())
}
