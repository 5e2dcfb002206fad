// SPDX-License-Identifier: GPL-2.0

//! In-kernel access objects: emulated devices reading and writing an IOAS.

use crate::{
    ioas::Ioas,
    IommufdCtx, //
};

/// Tells every access of `ioas` that `[iova, iova + length)` is being unmapped, so that it
/// unpins what it pinned there.
pub(crate) fn notify_unmap(_ictx: &IommufdCtx, _ioas: &Ioas, _iova: u64, _length: u64) {}
