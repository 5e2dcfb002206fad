// SPDX-License-Identifier: GPL-2.0

//! iommufd-rs: the iommufd user API (`/dev/iommu`) implemented in Rust.
//!
//! The module registers the misc device `/dev/iommu` under the same name as the C
//! implementation (and `/dev/vfio/vfio` with `CONFIG_IOMMUFD_VFIO_CONTAINER`). Every open file is
//! an independent context ([`IommufdCtx`]) with its own object table. The ioctls are dispatched
//! by [`ioctl`]; each object type and what it owns is a concept module with a folder of its parts
//! (Documentation/design.md, "The module's layout"). [`vfio`] provides the in-kernel API VFIO
//! calls.
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
    mm::virt::VmaNew,
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

// The concept modules (Documentation/design.md, "The module's layout"): each is a file with a
// folder of its parts.
//
// Without `CONFIG_IOMMUFD_TEST` the selftest, the only user of a few items of these modules, is
// not built: `Access::new`, `IDevice::pasid_domain`, `ObjectTable::remove`, `Ucmd::set_result`.
// They are not dead code in the other builds.
#[cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]
mod device;
mod eventq;
mod hw;
mod hwpt;
mod inline_vec;
mod ioas;
mod ioctl;
mod layout;
#[cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]
mod object;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selftest;
mod stats;
mod uapi;
#[cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]
mod ucmd;
mod vfio;
mod viommu;

use object::ObjectTable;

module! {
    type: IommufdModule,
    name: "iommufd_rs",
    authors: ["iommufd-rs developers"],
    description: "iommufd user API (/dev/iommu) in Rust",
    license: "GPL",
    imports_ns: ["IOMMUFD", "IOMMUFD_INTERNAL", "DMA_BUF", "ARM_SMMU_V3_RUST", "INTEL_IOMMU_RUST"],
    params: {
        mock_selfcheck: bool {
            default: false,
            description: "Run the mock IOMMU self-test at load time",
        },
        smmuv3_selfcheck: bool {
            default: false,
            description: "Test only (CONFIG_IOMMUFD_TEST): check the SMMUv3 backend's vSTE and \
                command rules at load time",
        },
        vtd_selfcheck: bool {
            default: false,
            description: "Test only (CONFIG_IOMMUFD_TEST): check the VT-d backend's stage-1 \
                rules, PASID-table entries and invalidation descriptors at load time",
        },
        fail_init_step: u32 {
            default: 0,
            description: "Test only (CONFIG_IOMMUFD_TEST): make module init fail after step N",
        },
        allow_unsafe_interrupts: bool {
            default: false,
            description: "Allow IOMMUFD to bind to devices even if the platform cannot isolate \
                the MSI interrupt window. Enabling this is a security weakness.",
        },
        allow_noncoherent_nesting: bool {
            default: false,
            description: "Allow SMMUv3 vIOMMUs on an SMMU without S2FWB for masters that are \
                not CANWBS. Only for platforms known to be coherent (emulated SMMUs): \
                elsewhere a guest's stage-1 memory attributes can make its DMA incoherent.",
        },
        shadow_nesting: bool {
            default: false,
            description: "Serve nested HWPTs (IOMMU_HWPT_DATA_VTD_S1) on IOMMUs that cannot \
                nest by shadowing: the guest's stage-1 table composed with the IOAS into one \
                paging domain, rebuilt over the range of each invalidation.",
        },
    },
}

#[cfg(CONFIG_IOMMUFD_TEST)]
kernel::sync::global_lock! {
    // SAFETY: Initialised by `MockRegistration::new`, once per load, before `/dev/iommu` exists.
    unsafe(uninit) static MOCK: Mutex<Option<hw::mock::MockIommu>> = None;
}

/// Whether devices whose MSIs the platform cannot isolate may be bound (module parameter).
pub(crate) fn allow_unsafe_interrupts() -> bool {
    module_parameters::allow_unsafe_interrupts.value()
}

/// Whether SMMUv3 vIOMMUs may be made where the SMMU cannot keep a guest's DMA coherent
/// (module parameter; see [`hw::smmuv3`]).
#[cfg_attr(not(CONFIG_ARM_SMMU_V3_RUST_NESTING), expect(dead_code))]
pub(crate) fn allow_noncoherent_nesting() -> bool {
    module_parameters::allow_noncoherent_nesting.value()
}

/// Whether nested HWPTs the hardware cannot serve are shadowed (module parameter; see
/// [`hwpt::shadow`]).
pub(crate) fn shadow_nesting() -> bool {
    module_parameters::shadow_nesting.value()
}

/// Whether to run the SMMUv3 backend's vectors at load time (test-only module parameter).
#[cfg_attr(
    not(all(CONFIG_ARM_SMMU_V3_RUST_NESTING, CONFIG_IOMMUFD_TEST)),
    expect(dead_code)
)]
pub(crate) fn smmuv3_selfcheck() -> bool {
    module_parameters::smmuv3_selfcheck.value()
}

/// Whether to run the VT-d backend's vectors at load time (test-only module parameter).
#[cfg_attr(
    not(all(CONFIG_INTEL_IOMMU_RUST_NESTING, CONFIG_IOMMUFD_TEST)),
    expect(dead_code)
)]
pub(crate) fn vtd_selfcheck() -> bool {
    module_parameters::vtd_selfcheck.value()
}

/// Fails module init after step `step` when the test-only parameter `fail_init_step` says so
/// (only with `CONFIG_IOMMUFD_TEST`; the `module_init_unwind` suite checks every step unwinds).
fn init_step_done(step: u32) -> Result {
    if cfg!(CONFIG_IOMMUFD_TEST) && module_parameters::fail_init_step.value() == step {
        pr_info!("fail_init_step={step}: failing module init\n");
        return Err(ECANCELED);
    }
    Ok(())
}

/// `include/linux/miscdevice.h`: the minor of `/dev/vfio/vfio`.
const VFIO_MINOR: i32 = 196;

/// `include/linux/miscdevice.h`: a minor chosen at registration (`/dev/iommu`).
// CAST: The value, 255, fits in an `i32`.
const MISC_DYNAMIC_MINOR: i32 = kernel::bindings::MISC_DYNAMIC_MINOR as i32;

extern "C" {
    /// `drivers/vfio/api.c`: tells `iommufd_ctx_from_file()` which files are ours (slot 0:
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
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) fn mock() -> Result<hw::mock::MockIommu> {
    MOCK.lock().clone().ok_or(ENODEV)
}

/// The selftest mock IOMMU, registered and published in [`MOCK`] for as long as this lives.
///
/// [`MOCK`] holds the only long-lived handle, and dropping this takes it out again, so a module
/// init that fails after registering the mock unregisters it as well.
#[cfg(CONFIG_IOMMUFD_TEST)]
struct MockRegistration;

#[cfg(CONFIG_IOMMUFD_TEST)]
impl MockRegistration {
    fn new(module: &'static ThisModule) -> Result<Self> {
        let mock = hw::mock::MockIommu::register(module)?;
        if module_parameters::mock_selfcheck.value() {
            hw::mock::selfcheck(&mock);
        }
        // SAFETY: Called once per module load (the module initialiser builds one
        // `MockRegistration`), before anything uses `MOCK`.
        unsafe { MOCK.init() };
        *MOCK.lock() = Some(mock);
        Ok(Self)
    }
}

#[cfg(CONFIG_IOMMUFD_TEST)]
impl Drop for MockRegistration {
    fn drop(&mut self) {
        // No file is open any more (each holds a module reference), so no mock device or domain
        // exists and this unregisters the mock.
        drop(MOCK.lock().take());
    }
}

/// The module: owns the `/dev/iommu` registration for its whole lifetime.
///
/// Fields are dropped in declaration order, the reverse of the order the initialiser builds
/// them in; an initialiser that fails part way drops what it built in the same order.
#[pin_data]
struct IommufdModule {
    /// Dropped first: `iommufd_ctx_from_file()` stops accepting our files.
    _published: PublishedFops,
    /// `/dev/vfio/vfio`, the VFIO container, served by the same file operations when the kernel
    /// has iommufd provide it (`CONFIG_IOMMUFD_VFIO_CONTAINER`), as upstream's iommufd does.
    _vfio_dev: Option<Pin<KBox<MiscDeviceRegistration<IommufdCtx>>>>,
    #[pin]
    _dev: MiscDeviceRegistration<IommufdCtx>,
    /// debugfs `iommufd_rs/stats`.
    #[pin]
    _stats: kernel::debugfs::File<stats::Stats>,
    /// debugfs `iommufd_rs/ioctls`.
    #[pin]
    _ioctls: kernel::debugfs::File<stats::Ioctls>,
    /// debugfs `iommufd_rs/smmuv3`.
    #[cfg(CONFIG_ARM_SMMU_V3_RUST_NESTING)]
    #[pin]
    _smmuv3: kernel::debugfs::File<hw::smmuv3::View>,
    _debugfs: kernel::debugfs::Dir,
    /// The selftest mock IOMMU, only with `CONFIG_IOMMUFD_TEST` (as upstream's mock).
    #[cfg(CONFIG_IOMMUFD_TEST)]
    _mock: MockRegistration,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions { name: c"iommu" };
        // Only the mock IOMMU registers with the module.
        #[cfg(not(CONFIG_IOMMUFD_TEST))]
        let _ = module;

        try_pin_init!(Self {
            #[cfg(CONFIG_IOMMUFD_TEST)]
            _mock: {
                let mock = MockRegistration::new(module)?;
                init_step_done(1)?;
                mock
            },
            _debugfs: kernel::debugfs::Dir::new(c"iommufd_rs"),
            _stats <- {
                init_step_done(2)?;
                _debugfs.read_only_file(c"stats", stats::Stats)
            },
            _ioctls <- _debugfs.read_only_file(c"ioctls", stats::Ioctls),
            #[cfg(CONFIG_ARM_SMMU_V3_RUST_NESTING)]
            _smmuv3 <- {
                hw::smmuv3::init();
                _debugfs.read_only_file(c"smmuv3", hw::smmuv3::View)
            },
            // `/dev/iommu` with upstream's mode, 0660.
            _dev <- {
                // The VT-d backend's vectors, if asked for.
                #[cfg(CONFIG_INTEL_IOMMU_RUST_NESTING)]
                hw::vtd::init();
                init_step_done(3)?;
                MiscDeviceRegistration::register_node(
                    options,
                    MiscDeviceNode {
                        minor: MISC_DYNAMIC_MINOR,
                        nodename: c"iommu",
                        mode: 0o660,
                    },
                )
            },
            _vfio_dev: {
                init_step_done(4)?;
                if cfg!(CONFIG_IOMMUFD_VFIO_CONTAINER) {
                    let node = MiscDeviceNode {
                        minor: VFIO_MINOR,
                        nodename: c"vfio/vfio",
                        mode: 0o666,
                    };
                    Some(KBox::pin_init(
                        MiscDeviceRegistration::register_node(
                            MiscDeviceOptions { name: c"vfio" },
                            node,
                        ),
                        GFP_KERNEL,
                    )?)
                } else {
                    None
                }
            },
            _published: {
                init_step_done(5)?;
                let published = PublishedFops::new([Some(&_dev), _vfio_dev.as_deref()]);
                init_step_done(6)?;
                published
            },
        })
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
    #[pin]
    pub(crate) sw_msi: device::sw_msi::SwMsiCtx,
    /// Serialises device binds, which look up the group a device shares with bound ones.
    #[pin]
    pub(crate) bind_lock: Mutex<()>,
    /// The regions vIOMMUs offer for `mmap()` on the file.
    #[pin]
    pub(crate) mmaps: viommu::mmap::Mmaps,
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

impl IommufdCtx {
    /// Destroys the objects, at the release of the file or with the context.
    fn destroy_all(&self) {
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

#[pinned_drop]
impl PinnedDrop for IommufdCtx {
    fn drop(self: Pin<&mut Self>) {
        // Nothing left if the release of the file destroyed the objects.
        self.destroy_all();
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
                sw_msi <- device::sw_msi::SwMsiCtx::new(),
                bind_lock <- kernel::new_mutex!(()),
                mmaps <- viommu::mmap::Mmaps::new(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The file's last reference is gone. If nothing else holds the context (VFIO devices and
    /// access objects can), its objects are destroyed here rather than in its drop: the same
    /// work, some frames higher on the stack (see [`object::ObjectData::free_after`]).
    fn release(ictx: Arc<Self>, _file: &File) {
        if let Some(ictx) = Arc::into_unique_or_drop(ictx) {
            ictx.destroy_all();
        }
    }

    fn ioctl(ictx: ArcBorrow<'_, IommufdCtx>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(ictx, cmd, arg)
    }

    fn mmap(ictx: ArcBorrow<'_, IommufdCtx>, _file: &File, vma: &VmaNew) -> Result {
        ictx.mmaps.mmap(&ictx, vma)
    }
}
