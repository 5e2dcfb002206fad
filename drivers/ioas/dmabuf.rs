// SPDX-License-Identifier: GPL-2.0

//! dma-bufs in IOAS mappings, and the selftest's dma-buf exporter.
//!
//! `IOMMU_IOAS_MAP_FILE` on a dma-buf attaches to the buffer dynamically, pins it and asks the
//! exporter for the buffer's physical range; the area then maps that range (no struct pages, no
//! pinning, no accounting). The [`Tracker`] of the import remembers every (area, domain) pair
//! the buffer is mapped into: when the exporter revokes the buffer, every pair is unmapped and
//! the import stays revoked for good. Later fills skip a revoked import; unmapping its areas
//! still works; access objects cannot use dma-buf areas at all.
//!
//! The only exporter whose physical ranges this module knows is its own selftest exporter
//! (`TestDmaBuf`, `IOMMU_TEST_OP_DMABUF_GET` and `IOMMU_TEST_OP_DMABUF_REVOKE`, built only with
//! `CONFIG_IOMMUFD_TEST`); any other dma-buf is `EOPNOTSUPP`.

use kernel::{
    device::Device,
    dma_buf::{
        DmaBuf,
        DynamicAttachment,
        Importer, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        ArcBorrow,
        Mutex, //
    }, //
};

use crate::ioas::io_pagetable::IoptDomain;

/// The selftest exporter (`IOMMU_TEST_OP_DMABUF_GET` / `_REVOKE`), only with `CONFIG_IOMMUFD_TEST`.
#[cfg(CONFIG_IOMMUFD_TEST)]
mod test_exporter {
    use kernel::{
        dma_buf::{
            DmaBuf,
            ExportOps,
            Exporter,
            PhysVec,
            ResvGuard, //
        },
        page::PAGE_SIZE,
        prelude::*,
        sync::atomic::{
            Atomic,
            Relaxed, //
        }, //
    };

    /// Largest buffer the selftest exporter makes, in pages.
    const TEST_MAX_PAGES: usize = 512;

    /// A buffer of the selftest exporter: zeroed kernel memory.
    #[pin_data]
    pub(crate) struct TestDmaBuf {
        memory: KVec<u8>,
        /// Set by `IOMMU_TEST_OP_DMABUF_REVOKE`; changed and read under the reservation lock.
        revoked: Atomic<bool>,
    }

    #[vtable]
    impl Exporter for TestDmaBuf {
        const OPS: &'static ExportOps<Self> = kernel::dma_buf_export_ops!(TestDmaBuf);
    }

    impl TestDmaBuf {
        /// The physical range of the buffer; `ENODEV` while it is revoked.
        fn phys(&self, _resv: &ResvGuard<'_>) -> Result<PhysVec> {
            if self.revoked.load(Relaxed) {
                return Err(ENODEV);
            }
            Ok(PhysVec::of_kvec(&self.memory))
        }
    }

    /// `IOMMU_TEST_OP_DMABUF_GET`: exports a zeroed buffer of `length` bytes (rounded up to pages,
    /// at most 512 pages, else `EINVAL`) and returns a new file descriptor for it, opened with
    /// `open_flags`.
    pub(crate) fn test_get(length: u32, open_flags: u32) -> Result<isize> {
        let len = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_next_multiple_of(PAGE_SIZE))
            .ok_or(EINVAL)?;
        if len == 0 || len > PAGE_SIZE * TEST_MAX_PAGES {
            return Err(EINVAL);
        }
        let memory = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        let buf = DmaBuf::export(
            try_pin_init!(TestDmaBuf {
                memory,
                revoked: Atomic::new(false),
            }),
            len,
            open_flags,
        )?;
        let fd = DmaBuf::install_fd(buf, open_flags)?;
        isize::try_from(fd).map_err(|_| EINVAL)
    }

    /// `IOMMU_TEST_OP_DMABUF_REVOKE`: revokes (or un-revokes) a buffer of the selftest exporter
    /// and tells its importers. `EOPNOTSUPP` for other dma-bufs.
    pub(crate) fn test_revoke(fd: i32, revoked: bool) -> Result {
        let buf = DmaBuf::get(fd)?;
        let test = buf.exporter_data::<TestDmaBuf>().ok_or(EOPNOTSUPP)?;
        let resv = buf.lock_resv();
        test.revoked.store(revoked, Relaxed);
        resv.invalidate_mappings();
        Ok(())
    }

    /// Asks the exporter of `buf` for its physical range.
    pub(super) fn phys_lookup(buf: &DmaBuf, resv: &ResvGuard<'_>) -> Result<PhysVec> {
        match buf.exporter_data::<TestDmaBuf>() {
            Some(test) => test.phys(resv),
            None => Err(EOPNOTSUPP),
        }
    }
}

#[cfg(CONFIG_IOMMUFD_TEST)]
use test_exporter::phys_lookup;
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) use test_exporter::{
    test_get,
    test_revoke, //
};

/// A dma-buf, as `IOMMU_IOAS_MAP_FILE` holds it before importing it.
pub(crate) type DmaBufRef = ARef<DmaBuf>;

/// The dma-buf open as `fd` in the current process, if the file is one.
pub(crate) fn get(fd: i32) -> Option<DmaBufRef> {
    DmaBuf::get(fd).ok()
}

/// Asks the exporter of `buf` for its physical range: no exporter is known without the selftest.
#[cfg(not(CONFIG_IOMMUFD_TEST))]
fn phys_lookup(
    _buf: &DmaBuf,
    _resv: &kernel::dma_buf::ResvGuard<'_>,
) -> Result<kernel::dma_buf::PhysVec> {
    Err(EOPNOTSUPP)
}

/// One mapping of an area of an imported buffer in one domain.
struct Track {
    /// Identity of the I/O page table of the area.
    iopt: usize,
    /// First IOVA of the area.
    iova: u64,
    /// Length of the area.
    len: u64,
    /// The key of the domain in the I/O page table.
    key: usize,
    domain: Arc<dyn IoptDomain>,
}

struct TrackerInner {
    /// The exporter revoked the buffer: nothing is mapped, nothing will be.
    revoked: bool,
    tracks: KVec<Track>,
}

/// The importer state of one dma-buf import: the domains its areas are mapped into.
#[pin_data]
pub(crate) struct Tracker {
    #[pin]
    inner: Mutex<TrackerInner>,
}

impl Importer for Tracker {
    const ALLOW_PEER2PEER: bool = true;

    fn invalidate_mappings(this: ArcBorrow<'_, Self>) {
        let mut inner = this.inner.lock();
        if inner.revoked {
            return;
        }
        for t in inner.tracks.iter() {
            t.domain.unmap(t.iova, t.len);
        }
        inner.revoked = true;
    }
}

/// An imported dma-buf: pinned, with the exporter's physical range.
pub(crate) struct DmaBufImport {
    /// Unpins, detaches and drops the buffer when dropped.
    _attach: DynamicAttachment<Tracker>,
    tracker: Arc<Tracker>,
    /// Physical address of the first byte of the buffer.
    paddr: u64,
}

impl DmaBufImport {
    /// Attaches `dev` to `buf`, pins it and reads its physical range.
    pub(crate) fn new(buf: DmaBufRef, dev: &Device) -> Result<Self> {
        let tracker = Arc::pin_init(
            pin_init!(Tracker {
                inner <- new_mutex!(TrackerInner {
                    revoked: false,
                    tracks: KVec::new(),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let mut attach = DynamicAttachment::new(buf.clone(), dev, tracker.clone())?;
        let phys = {
            let resv = buf.lock_resv();
            attach.pin(&resv)?;
            let phys = phys_lookup(&buf, &resv)?;
            // A revoke between attaching and the lookup found nothing mapped; the lookup
            // succeeded, so the memory is usable again.
            tracker.inner.lock().revoked = false;
            phys
        };
        Ok(Self {
            _attach: attach,
            tracker,
            paddr: phys.paddr,
        })
    }

    /// Calls `f(index, phys)` for pages `first..=last` of the buffer starting at byte `base`,
    /// unless the buffer is revoked. A revoke waits until `f` is done, so what `f` maps is
    /// unmapped by the revoke if it is tracked.
    pub(crate) fn for_each_phys(
        &self,
        base: usize,
        first: usize,
        last: usize,
        mut f: impl FnMut(usize, u64) -> Result,
    ) -> Result {
        let inner = self.tracker.inner.lock();
        if inner.revoked {
            return Ok(());
        }
        for i in first..=last {
            let off = base
                .checked_add(i.checked_mul(PAGE_SIZE).ok_or(EOVERFLOW)?)
                .ok_or(EOVERFLOW)?;
            let phys = u64::try_from(off)
                .ok()
                .and_then(|off| self.paddr.checked_add(off))
                .ok_or(EOVERFLOW)?;
            f(i, phys)?;
        }
        Ok(())
    }

    /// Records that the area at `iova` (`len` bytes) of I/O page table `iopt` is mapped into
    /// `domain`, the domain with `key` there.
    pub(crate) fn track(
        &self,
        iopt: usize,
        iova: u64,
        len: u64,
        key: usize,
        domain: &Arc<dyn IoptDomain>,
    ) -> Result {
        let mut inner = self.tracker.inner.lock();
        inner.tracks.push(
            Track {
                iopt,
                iova,
                len,
                key,
                domain: domain.clone(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(())
    }

    /// Forgets the mappings of the area at `iova` of `iopt` in the domain with `key` (every
    /// domain for `None`) and, unless the buffer is revoked, unmaps the area from them.
    pub(crate) fn untrack(&self, iopt: usize, iova: u64, key: Option<usize>) {
        let mut inner = self.tracker.inner.lock();
        let revoked = inner.revoked;
        inner.tracks.retain(|t| {
            let hit = t.iopt == iopt && t.iova == iova && key.is_none_or(|k| k == t.key);
            if hit && !revoked {
                t.domain.unmap(t.iova, t.len);
            }
            !hit
        });
    }
}
