// SPDX-License-Identifier: GPL-2.0

//! iommufd-rs: the iommufd user API (`/dev/iommu`) implemented in Rust.
//!
//! The module registers the misc device `/dev/iommu` under the same name as the C
//! implementation (and `/dev/vfio/vfio` with `CONFIG_IOMMUFD_VFIO_CONTAINER`). Every open file is
//! an independent context ([`IommufdCtx`]) with its own object table. The ioctls are dispatched
//! by [`ioctl`]; the objects and what they own have a file each (Documentation/design.md, "The
//! module today"). [`vfio_api`] and `drivers/vfio_api.c` provide the in-kernel API VFIO calls.
//!
//! Only one iommufd implementation can be loaded at a time: both export the in-kernel API VFIO
//! links against and both register the misc device "iommu", so loading this module while
//! `iommufd.ko` is loaded fails, and the other way round.

use kernel::{
    device::Device,
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceNode,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow,
        Mutex, //
    }, //
};

mod access;
mod device;
mod dirty;
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
mod dmabuf;
#[cfg(not(CONFIG_DMA_SHARED_BUFFER))]
#[path = "dmabuf_none.rs"]
mod dmabuf;
mod hw_info;
mod hwpt;
mod io_pagetable;
mod ioas;
mod ioctl;
mod layout;
mod mock_iommu;
mod object;
mod pages;
mod selftest;
mod stats;
mod sw_msi;
mod uapi;
mod ucmd;
mod vfio_api;
mod vfio_compat;
mod xa;

use object::ObjectTable;

module! {
    type: IommufdModule,
    name: "iommufd_rs",
    authors: ["iommufd-rs developers"],
    description: "iommufd user API (/dev/iommu) in Rust",
    license: "GPL",
    imports_ns: ["IOMMUFD", "IOMMUFD_INTERNAL", "DMA_BUF"],
    params: {
        mock_selfcheck: bool {
            default: false,
            description: "Run the mock IOMMU self-test at load time",
        },
        allow_unsafe_interrupts: bool {
            default: false,
            description: "Allow IOMMUFD to bind to devices even if the platform cannot isolate \
                the MSI interrupt window. Enabling this is a security weakness.",
        },
    },
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before `/dev/iommu` exists.
    unsafe(uninit) static MOCK: Mutex<Option<mock_iommu::MockIommu>> = None;
}

/// Whether devices whose MSIs the platform cannot isolate may be bound (module parameter).
pub(crate) fn allow_unsafe_interrupts() -> bool {
    module_parameters::allow_unsafe_interrupts.value()
}

/// `include/linux/miscdevice.h`: the minor of `/dev/vfio/vfio`.
const VFIO_MINOR: i32 = 196;

extern "C" {
    /// `drivers/vfio_api.c`: tells `iommufd_ctx_from_file()` which files are ours (slot 0:
    /// `/dev/iommu`, slot 1: `/dev/vfio/vfio`).
    fn iommufd_rs_publish_fops(slot: u32, fops: *const c_void);
}

/// While it lives, `iommufd_ctx_from_file()` accepts files of the registrations it was made for.
struct PublishedFops;

impl PublishedFops {
    fn new(regs: [Option<&MiscDeviceRegistration<IommufdCtx>>; 2]) -> Self {
        for (slot, reg) in (0u32..).zip(regs) {
            if let Some(reg) = reg {
                // SAFETY: The registration is live, so its `struct miscdevice` is valid; its
                // file operations are static.
                unsafe { iommufd_rs_publish_fops(slot, (*reg.as_raw()).fops.cast()) };
            }
        }
        PublishedFops
    }
}

impl Drop for PublishedFops {
    fn drop(&mut self) {
        for slot in 0..2 {
            // SAFETY: Clearing is always allowed.
            unsafe { iommufd_rs_publish_fops(slot, core::ptr::null()) };
        }
    }
}

/// The mock IOMMU, while the module is loaded.
pub(crate) fn mock() -> Result<mock_iommu::MockIommu> {
    MOCK.lock().clone().ok_or(ENODEV)
}

/// The module: owns the `/dev/iommu` registration for its whole lifetime.
#[pin_data(PinnedDrop)]
struct IommufdModule {
    #[pin]
    _dev: MiscDeviceRegistration<IommufdCtx>,
    /// `/dev/vfio/vfio`, the VFIO container, served by the same file operations when the kernel
    /// has iommufd provide it (`CONFIG_IOMMUFD_VFIO_CONTAINER`), as upstream's iommufd does.
    _vfio_dev: Option<Pin<KBox<MiscDeviceRegistration<IommufdCtx>>>>,
    /// Declared after the registrations, dropped before them.
    _published: PublishedFops,
    /// The selftest mock IOMMU (registers nothing without `CONFIG_IOMMUFD_TEST`).
    _mock: mock_iommu::MockIommu,
    /// debugfs `iommufd_rs/stats`.
    #[pin]
    _stats: kernel::debugfs::File<stats::Stats>,
    _debugfs: kernel::debugfs::Dir,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions { name: c"iommu" };

        try_pin_init!(Self {
            _mock: {
                let mock = mock_iommu::MockIommu::register(module)?;
                if module_parameters::mock_selfcheck.value() {
                    mock_iommu::selfcheck(&mock);
                }
                // SAFETY: Called once, before anything uses `MOCK`.
                unsafe { MOCK.init() };
                *MOCK.lock() = Some(mock.clone());
                mock
            },
            _debugfs: kernel::debugfs::Dir::new(c"iommufd_rs"),
            _stats <- _debugfs.read_only_file(c"stats", stats::Stats),
            _dev <- MiscDeviceRegistration::register(options),
            _vfio_dev: if cfg!(CONFIG_IOMMUFD_VFIO_CONTAINER) {
                let node = MiscDeviceNode {
                    minor: VFIO_MINOR,
                    nodename: c"vfio/vfio",
                    mode: 0o666,
                };
                Some(KBox::pin_init(
                    MiscDeviceRegistration::register_node(MiscDeviceOptions { name: c"vfio" }, node),
                    GFP_KERNEL,
                )?)
            } else {
                None
            },
            _published: PublishedFops::new([Some(&_dev), _vfio_dev.as_deref()]),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for IommufdModule {
    fn drop(self: Pin<&mut Self>) {
        // No file is open any more (each holds a module reference).
        drop(MOCK.lock().take());
    }
}

/// The state of one open `/dev/iommu` file (upstream's `iommufd_ctx`).
///
/// Each open file is an independent iommufd context. Its objects live in its
/// table and are freed when the file is released.
#[pin_data(PinnedDrop)]
pub(crate) struct IommufdCtx {
    /// The objects created on this file.
    #[pin]
    pub(crate) objects: ObjectTable,
    /// `IOMMU_OPTION_RLIMIT_MODE`: charge pinned pages to the mm (1) or to the user (0).
    account_mm: Atomic<bool>,
    /// The id of the IOAS serving the VFIO compatibility ioctls, 0 for none.
    pub(crate) vfio_ioas: Atomic<u32>,
    /// The device of `/dev/iommu` (dma-bufs are attached to it).
    pub(crate) misc_dev: ARef<Device>,
    /// A VFIO no-IOMMU group uses the context as its container: no compat IOAS may be made.
    pub(crate) no_iommu: Atomic<bool>,
    /// The MSI doorbell pages mapped in the context's domains.
    pub(crate) sw_msi: Arc<sw_msi::SwMsiMaps>,
    /// Serialises device binds, which look up the group a device shares with bound ones.
    #[pin]
    pub(crate) bind_lock: Mutex<()>,
}

impl IommufdCtx {
    /// `IOMMU_DESTROY`: destroys the object `id` unless something uses it (`EBUSY`).
    pub(crate) fn destroy_object(&self, id: u32) -> Result {
        self.objects.destroy_with(self, id)
    }

    /// Clears the VFIO compat IOAS if it is `id` (the IOAS is being destroyed).
    pub(crate) fn forget_vfio_ioas(&self, id: u32) {
        let _ = self.vfio_ioas.cmpxchg(id, 0, Relaxed);
    }

    /// Whether pinned pages are charged to the mm rather than the user.
    pub(crate) fn account_mm(&self) -> bool {
        self.account_mm.load(Relaxed)
    }

    /// Sets `IOMMU_OPTION_RLIMIT_MODE`; only while the context holds no object.
    pub(crate) fn set_account_mm(&self, mm: bool) -> Result {
        if !self.objects.is_empty() {
            return Err(EBUSY);
        }
        self.account_mm.store(mm, Relaxed);
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for IommufdCtx {
    fn drop(self: Pin<&mut Self>) {
        // Destroy objects users no longer hold, lowest id first, until none is left: an object
        // another one uses (a HWPT a device is attached to, the IOAS of a HWPT) goes in a later
        // round, after its user.
        loop {
            let mut progress = false;
            let mut next = 0u32;
            while let Some(id) = self.objects.next_id(next) {
                if self.destroy_object(id).is_ok() {
                    progress = true;
                }
                match id.checked_add(1) {
                    Some(n) => next = n,
                    None => break,
                }
            }
            if !progress {
                break;
            }
        }
        // Anything left is still referenced from outside the table; the table's drop releases
        // its references.
    }
}

#[vtable]
impl MiscDevice for IommufdCtx {
    type Ptr = Arc<Self>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(IommufdCtx {
                objects <- ObjectTable::new(),
                account_mm: Atomic::new(false),
                vfio_ioas: Atomic::new(0),
                misc_dev: misc.device().into(),
                no_iommu: Atomic::new(false),
                sw_msi: sw_msi::SwMsiMaps::new()?,
                bind_lock <- kernel::new_mutex!(()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn ioctl(ictx: ArcBorrow<'_, IommufdCtx>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(ictx, cmd, arg)
    }
}
