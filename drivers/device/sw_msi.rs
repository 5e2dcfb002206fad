// SPDX-License-Identifier: GPL-2.0

//! MSI doorbells mapped by software, for platforms whose interrupt controller is reached through
//! the IOMMU (arm64: the GICv3 ITS behind an SMMUv3).
//!
//! Such a device has an `IOMMU_RESV_SW_MSI` reserved region: an IOVA window where the doorbell
//! pages its MSIs write to must be mapped. When the irq layer prepares an MSI of a device attached
//! to one of our domains, the IOMMU core calls [`SwMsiDomain::map_msi`] (the domain's
//! `IOMMU_COOKIE_SW_MSI` owner, `kernel/patches/0005`). As upstream's iommufd does:
//!
//! - a doorbell page gets one IOVA per context, the same in every domain: the `n`th doorbell page
//!   of a window is mapped at the window's start plus `n` pages;
//! - a domain maps a doorbell page once;
//! - before a device is attached to a domain, every doorbell page of its window is mapped there
//!   ([`SwMsiDomain::install_all`]), so the MSIs the device already has keep working after a replace.
//!
//! The window is reserved in the IOAS while the device is attached (its reserved regions are), so
//! user mappings never collide with doorbell pages.

use kernel::{
    device::Device,
    io::PhysAddr,
    iommu::domain::{
        Domain,
        ResvRegion,
        ResvRegions,
        SwMsiOwner,
        PROT_MMIO,
        PROT_READ,
        PROT_WRITE,
        RESV_SW_MSI, //
    },
    new_mutex,
    page::{
        PAGE_MASK,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    }, //
};

/// Upstream's limit: the doorbell pages of a context are tracked in a 64-bit bitmap.
const MAX_MAPS: usize = 64;

/// One doorbell page and the IOVA it has in this context.
#[derive(Clone, Copy)]
struct SwMsiMap {
    /// The start of the window the page is mapped in.
    window: u64,
    /// The physical address of the doorbell page.
    msi_page: u64,
    /// The page's index in its window.
    pgoff: u64,
    /// The page's bit in [`SwMsiDomain::present`].
    id: u32,
}

impl SwMsiMap {
    fn iova(&self) -> u64 {
        self.window + self.pgoff * PAGE_SIZE as u64
    }
}

/// The doorbell pages of a context as the context holds them: the set is made with the
/// context's first paging domain, so a context without one allocates nothing for it.
#[pin_data]
pub(crate) struct SwMsiCtx {
    /// `None` until the first domain.
    #[pin]
    maps: Mutex<Option<Arc<SwMsiMaps>>>,
}

impl SwMsiCtx {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            maps <- new_mutex!(None),
        })
    }

    /// The context's doorbell pages, made if this is its first domain.
    fn maps(&self) -> Result<Arc<SwMsiMaps>> {
        let mut maps = self.maps.lock();
        if let Some(m) = &*maps {
            return Ok(m.clone());
        }
        let m = Arc::pin_init(
            pin_init!(SwMsiMaps {
                maps <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )?;
        *maps = Some(m.clone());
        Ok(m)
    }
}

/// The doorbell pages of one iommufd context (upstream's `ictx->sw_msi_list`).
#[pin_data]
pub(crate) struct SwMsiMaps {
    #[pin]
    maps: Mutex<KVec<SwMsiMap>>,
}

impl SwMsiMaps {
    /// The map of the doorbell page `msi_page` in `window`, created if new.
    fn get(maps: &mut KVec<SwMsiMap>, msi_page: u64, window: u64) -> Result<SwMsiMap> {
        let mut next_pgoff = 0;
        for m in maps.iter().filter(|m| m.window == window) {
            if m.msi_page == msi_page {
                return Ok(*m);
            }
            next_pgoff = next_pgoff.max(m.pgoff + 1);
        }
        if maps.len() >= MAX_MAPS {
            return Err(EOVERFLOW);
        }
        let m = SwMsiMap {
            window,
            msi_page,
            pgoff: next_pgoff,
            id: maps.len() as u32,
        };
        maps.push(m, GFP_KERNEL)?;
        Ok(m)
    }
}

/// The start of the `IOMMU_RESV_SW_MSI` window of `dev`, if it has one.
pub(crate) fn window_of(dev: &Device) -> Result<Option<u64>> {
    Ok(window_in(ResvRegions::get(dev)?.iter()))
}

/// The start of the `IOMMU_RESV_SW_MSI` window among `regions`, if there is one.
pub(crate) fn window_in(mut regions: impl Iterator<Item = ResvRegion>) -> Option<u64> {
    regions.find(|r| r.kind == RESV_SW_MSI).map(|r| r.start)
}

/// The doorbell state of one domain: its context's doorbell pages and which of them it maps.
pub(crate) struct SwMsiDomain {
    maps: Arc<SwMsiMaps>,
    /// Bit `id` set: the doorbell page with that id is mapped in the domain. Changed only under
    /// the lock of `maps`.
    present: Atomic<u64>,
}

impl SwMsiDomain {
    /// The doorbell state of a new domain of the context whose pages are `ctx`.
    pub(crate) fn new(ctx: &SwMsiCtx) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                maps: ctx.maps()?,
                present: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// Maps every known doorbell page of `window` into `domain`, this state's domain (before a
    /// device with that window attaches to it).
    pub(crate) fn install_all(&self, domain: &Domain, window: u64) -> Result {
        let maps = self.maps.maps.lock();
        for m in maps.iter().filter(|m| m.window == window) {
            self.install(domain, m)?;
        }
        Ok(())
    }

    /// Maps the doorbell page of `m` into `domain` unless it is there. Called under the lock of
    /// the context's maps.
    fn install(&self, domain: &Domain, m: &SwMsiMap) -> Result {
        let bit = 1u64 << m.id;
        if self.present.load(Relaxed) & bit != 0 {
            return Ok(());
        }
        domain.map(
            usize::try_from(m.iova()).map_err(|_| EOVERFLOW)?,
            m.msi_page,
            PAGE_SIZE,
            PROT_READ | PROT_WRITE | PROT_MMIO,
            GFP_KERNEL_ACCOUNT,
        )?;
        self.present
            .store(self.present.load(Relaxed) | bit, Relaxed);
        Ok(())
    }
}

impl SwMsiOwner for SwMsiDomain {
    fn map_msi(&self, domain: &Domain, dev: &Device, msi_addr: PhysAddr) -> Result<Option<u64>> {
        // No window: the doorbell is not translated, the message stays as it is.
        let Some(window) = window_of(dev)? else {
            return Ok(None);
        };
        let mut maps = self.maps.maps.lock();
        let m = SwMsiMaps::get(&mut maps, msi_addr & PAGE_MASK as u64, window)?;
        self.install(domain, &m)?;
        Ok(Some(m.iova()))
    }
}
