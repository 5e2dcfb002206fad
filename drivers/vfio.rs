// SPDX-License-Identifier: GPL-2.0

//! What VFIO uses of iommufd.
//!
//! [`api`] (with `api.c`, the C side that exports the symbols) is the in-kernel API VFIO's
//! device cdev and group paths call: contexts, device bind/attach/replace/detach/unbind; [`access`]
//! the accesses of emulated devices. [`compat`] is the VFIO type1 container on an IOAS
//! (`/dev/vfio/vfio` with `CONFIG_IOMMUFD_VFIO_CONTAINER`).

pub(crate) mod access;
pub(crate) mod api;
pub(crate) mod compat;
