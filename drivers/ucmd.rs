// SPDX-License-Identifier: GPL-2.0

//! User commands: copying an ioctl's extensible structure in and out.
//!
//! Every iommufd ioctl is `_IO(';', nr)`: the number carries no size, so the
//! size travels in the structure's first `u32`. A command is accepted when
//! that size covers at least the command's mandatory fields
//! ([`UserCmd::MIN_SIZE`], `offsetofend()` of the last one, as upstream's
//! ioctl table); a shorter one fails with `EINVAL`. Bytes the kernel does not
//! know (user size larger than the kernel structure) must be zero, else the
//! command fails with `E2BIG`; fields user space does not know (user size
//! smaller) read as zero. These are the rules of `copy_struct_from_user()`.
//!
//! Each byte of the user structure is read once, so user space cannot change
//! a field between a check and its use.

use core::{
    cmp::min,
    mem::size_of, //
};
use kernel::sync::ArcBorrow;
use kernel::{
    iommu::domain::check_zeroed_user,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};
use zerocopy::Immutable;

use crate::IommufdCtx;

/// An iommufd command structure, as passed to one ioctl.
pub(crate) trait UserCmd: FromBytes + IntoBytes + Immutable + Sized {
    /// The smallest size user space may pass: the end of the last field
    /// every version of the structure has.
    const MIN_SIZE: usize;
}

/// Bytes of the size field every command structure starts with.
const SIZE_FIELD: usize = size_of::<u32>();

/// Reads the size field of the command structure at `arg`.
///
/// Fails with `EFAULT` if it cannot be read.
pub(crate) fn read_user_size(arg: usize) -> Result<u32> {
    UserSlice::new(UserPtr::from_addr(arg), SIZE_FIELD)
        .reader()
        .read::<u32>()
}

/// One ioctl in progress: the file's context, the command copied in, and
/// where to copy the answer to.
pub(crate) struct Ucmd<'a, T: UserCmd> {
    /// The context of the file the ioctl was issued on.
    pub(crate) ictx: ArcBorrow<'a, IommufdCtx>,
    /// The kernel's copy of the command structure.
    pub(crate) cmd: T,
    /// The user's command structure.
    ubuffer: UserPtr,
    /// The size of the user's structure (its first field).
    user_size: usize,
    /// The value the ioctl returns on success (0 unless the command sets it).
    result: isize,
}

impl<'a, T: UserCmd> Ucmd<'a, T> {
    /// Copies in the command structure at `arg`, whose size field was read as
    /// `user_size`.
    ///
    /// Fails with `EINVAL` if `user_size` is below [`UserCmd::MIN_SIZE`],
    /// `E2BIG` if the user structure is larger than the kernel's and the
    /// extra bytes are not all zero, and `EFAULT` if user memory cannot be
    /// read.
    pub(crate) fn copy_in(
        ictx: ArcBorrow<'a, IommufdCtx>,
        arg: usize,
        user_size: u32,
    ) -> Result<Self> {
        const {
            assert!(T::MIN_SIZE >= SIZE_FIELD && T::MIN_SIZE <= size_of::<T>());
        }

        // CAST: `usize` is at least 32 bits wide on every architecture Linux
        // supports, so the conversion is lossless.
        let usize_ = user_size as usize;
        if usize_ < T::MIN_SIZE {
            return Err(EINVAL);
        }
        let ksize = size_of::<T>();
        let ubuffer = UserPtr::from_addr(arg);
        let mut reader = UserSlice::new(ubuffer, usize_).reader();

        // Unknown trailing bytes first, as `copy_struct_from_user()` does.
        if usize_ > ksize {
            check_zeroed_user(ubuffer.wrapping_byte_add(ksize), usize_ - ksize)?;
        }

        let mut cmd = T::new_zeroed();
        let bytes = cmd.as_mut_bytes();
        // The size field was already read; keep that value rather than
        // reading it again.
        bytes
            .get_mut(..SIZE_FIELD)
            .ok_or(EINVAL)?
            .copy_from_slice(&user_size.to_ne_bytes());
        reader.skip(SIZE_FIELD)?;
        reader.read_slice(
            bytes
                .get_mut(SIZE_FIELD..min(usize_, ksize))
                .ok_or(EINVAL)?,
        )?;

        Ok(Self {
            ictx,
            cmd,
            ubuffer,
            user_size: usize_,
            result: 0,
        })
    }

    /// Makes the ioctl return `value` on success (a new file descriptor, say).
    pub(crate) fn set_result(&mut self, value: isize) {
        self.result = value;
    }

    /// The value the ioctl returns on success.
    pub(crate) fn result(&self) -> isize {
        self.result
    }

    /// Copies the command structure back to user space, as much of it as the
    /// user's structure has room for (`iommufd_ucmd_respond()`).
    ///
    /// Fails with `EFAULT` if user memory cannot be written.
    pub(crate) fn respond(&self) -> Result {
        let len = min(self.user_size, size_of::<T>());
        let bytes = self.cmd.as_bytes().get(..len).ok_or(EINVAL)?;
        UserSlice::new(self.ubuffer, len)
            .writer()
            .write_slice(bytes)
    }
}
