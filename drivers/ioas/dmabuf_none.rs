// SPDX-License-Identifier: GPL-2.0

//! dma-bufs in IOAS mappings, without `CONFIG_DMA_SHARED_BUFFER`: no file is a dma-buf, so
//! `IOMMU_IOAS_MAP_FILE` only takes memfds, and the selftest's dma-buf operations are
//! `EOPNOTSUPP`. The types exist so that the rest of the module builds the same way; none of
//! them can have a value.

use kernel::{
    device::Device,
    prelude::*,
    sync::Arc, //
};

use crate::ioas::io_pagetable::IoptDomain;

/// `IOMMU_TEST_OP_DMABUF_GET`: there is no dma-buf support.
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) fn test_get(_length: u32, _open_flags: u32) -> Result<isize> {
    Err(EOPNOTSUPP)
}

/// `IOMMU_TEST_OP_DMABUF_REVOKE`: there is no dma-buf support.
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) fn test_revoke(_fd: i32, _revoked: bool) -> Result {
    Err(EOPNOTSUPP)
}

/// A dma-buf; never exists.
pub(crate) enum DmaBufRef {}

impl DmaBufRef {
    /// Size of the buffer in bytes.
    pub(crate) fn size(&self) -> usize {
        match *self {}
    }
}

/// No file is a dma-buf.
pub(crate) fn get(_fd: i32) -> Option<DmaBufRef> {
    None
}

/// An imported dma-buf; never exists.
pub(crate) enum DmaBufImport {}

impl DmaBufImport {
    /// Cannot be called: there is no [`DmaBufRef`].
    pub(crate) fn new(buf: DmaBufRef, _dev: &Device) -> Result<Self> {
        match buf {}
    }

    /// See the dma-buf implementation.
    pub(crate) fn for_each_phys(
        &self,
        _base: usize,
        _first: usize,
        _last: usize,
        _f: impl FnMut(usize, u64) -> Result,
    ) -> Result {
        match *self {}
    }

    /// See the dma-buf implementation.
    pub(crate) fn track(
        &self,
        _iopt: usize,
        _iova: u64,
        _len: u64,
        _key: usize,
        _domain: &Arc<dyn IoptDomain>,
    ) -> Result {
        match *self {}
    }

    /// See the dma-buf implementation.
    pub(crate) fn untrack(&self, _iopt: usize, _iova: u64, _key: Option<usize>) {
        match *self {}
    }
}
