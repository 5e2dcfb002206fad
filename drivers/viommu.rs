// SPDX-License-Identifier: GPL-2.0

//! vIOMMU objects (`IOMMU_VIOMMU_ALLOC`): the virtual IOMMU a VMM presents to its guest, backed
//! by one physical IOMMU instance and nested over a nest-parent HWPT_PAGING (the stage 2).
//!
//! The vIOMMU is where SMMUv3-style nesting happens: nested HWPTs are allocated on it
//! (`IOMMU_HWPT_ALLOC` with the vIOMMU as `pt_id`), guest invalidation commands go to it
//! (`IOMMU_HWPT_INVALIDATE` with its id), guest devices get their virtual ids on it
//! ([`vdevice`]), its events are queued for user space in vEVENTQs
//! ([`crate::eventq::veventq`]), and hardware queues that read guest memory are started on it
//! ([`hw_queue`]). What any of that means for the hardware is the backend's
//! ([`crate::hw::ViommuHw`]); this module owns the objects, their lifetimes and the uAPI rules.
//!
//! Drivers see the vIOMMU through [`ViommuCore`]: find a device by virtual id, the virtual id of
//! a device, report an event; and at allocation through [`ViommuServices`]: offer an mmap
//! region ([`mmap`]).
//!
//! Lifetimes: the vIOMMU holds a user reference on its parent HWPT; each vDEVICE, vEVENTQ, HW
//! queue and nested HWPT of the vIOMMU holds one on it, so it cannot be destroyed before them
//! (`EBUSY`), and neither can it while user space maps one of its mmap regions.

pub(crate) mod hw_queue;
pub(crate) mod mmap;
pub(crate) mod vdevice;

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    device::Device,
    io::PhysAddr,
    iommu::domain::{
        device_iommu,
        IommuInstance,
        UserData, //
    },
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    uaccess::UserPtr, //
};
use zerocopy_derive::Immutable;

use crate::{
    device::IDevice,
    eventq::veventq::EventQueue,
    hw::{
        self,
        ViommuHw, //
    },
    hwpt::HwptPaging,
    object::{
        ObjectData,
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    ucmd::{
        Ucmd,
        UserCmd, //
    },
    IommufdCtx, //
};
use mmap::MmapRegion;

/// `IOMMU_VIOMMU_TYPE_DEFAULT`: reserved, never a vIOMMU.
const IOMMU_VIOMMU_TYPE_DEFAULT: u32 = 0;

/// `struct iommu_viommu_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuViommuAlloc {
    size: u32,
    flags: u32,
    viommu_type: u32,
    dev_id: u32,
    hwpt_id: u32,
    out_viommu_id: u32,
    data_len: u32,
    reserved: u32,
    data_uptr: u64,
}

const _: () = assert!(size_of::<IommuViommuAlloc>() == 40);

impl UserCmd for IommuViommuAlloc {
    const MIN_SIZE: usize = offset_of!(IommuViommuAlloc, out_viommu_id) + size_of::<u32>();
}

/// A virtual id of a vIOMMU: the device it names, or `None` while the vDEVICE that takes it is
/// being set up (it reads as free then, but cannot be taken twice).
struct VirtId {
    virt_id: u64,
    dev: Option<ARef<Device>>,
}

/// What the drivers see of a vIOMMU (the parts of upstream's `struct iommufd_viommu` that
/// `iommufd_driver.c` serves): its virtual devices and its event queues.
///
/// Locks: `vdevs` and `veventqs` are leaves; a driver may be called with either held (a
/// device's attach callback, under its group's mutex, asks for a virtual id).
#[pin_data]
pub(crate) struct ViommuCore {
    #[pin]
    vdevs: Mutex<KVec<VirtId>>,
    #[pin]
    veventqs: Mutex<KVec<Arc<EventQueue>>>,
}

impl ViommuCore {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                vdevs <- new_mutex!(KVec::new()),
                veventqs <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Calls `f` with the device whose virtual id is `virt_id`, with the vIOMMU's virtual ids
    /// locked (upstream's `iommufd_viommu_find_dev()` under `xa_lock`); `None` if there is none.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn with_dev<R>(&self, virt_id: u64, f: impl FnOnce(&Device) -> R) -> Option<R> {
        let vdevs = self.vdevs.lock();
        let dev = vdevs
            .iter()
            .find(|v| v.virt_id == virt_id)
            .and_then(|v| v.dev.as_ref())?;
        Some(f(dev))
    }

    /// Calls `f` with every virtual id that names a device, and the device, with the vIOMMU's
    /// virtual ids locked (for debugfs views).
    #[cfg_attr(not(CONFIG_ARM_SMMU_V3_RUST_NESTING), expect(dead_code))]
    pub(crate) fn for_each_vdev(&self, mut f: impl FnMut(u64, &Device)) {
        let vdevs = self.vdevs.lock();
        for v in vdevs.iter() {
            if let Some(dev) = &v.dev {
                f(v.virt_id, dev);
            }
        }
    }

    /// The virtual id of `dev` on this vIOMMU (`iommufd_viommu_get_vdev_id()`); `ENOENT` if it
    /// has none.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn vdev_id_of(&self, dev: &Device) -> Result<u64> {
        let vdevs = self.vdevs.lock();
        vdevs
            .iter()
            .find(|v| {
                v.dev
                    .as_ref()
                    .is_some_and(|d| core::ptr::eq::<Device>(&**d, dev))
            })
            .map(|v| v.virt_id)
            .ok_or(ENOENT)
    }

    /// Queues an event of `veventq_type` with `data` in the vIOMMU's vEVENTQ of that type
    /// (`iommufd_viommu_report_event()`): `EOPNOTSUPP` if there is none. A full queue, or no
    /// memory for the event (`ENOMEM`), records lost events instead.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn report_event(&self, veventq_type: u32, data: &[u8]) -> Result {
        if data.is_empty() {
            kernel::warn_on!(true);
            return Err(EINVAL);
        }
        let qs = self.veventqs.lock();
        let q = qs
            .iter()
            .find(|q| q.queue_type() == veventq_type)
            .ok_or(EOPNOTSUPP)?;
        q.report(data)
    }

    /// Takes `virt_id` for a vDEVICE being set up (`EEXIST` if it is taken).
    fn reserve(&self, virt_id: u64) -> Result {
        let mut vdevs = self.vdevs.lock();
        if vdevs.iter().any(|v| v.virt_id == virt_id) {
            return Err(EEXIST);
        }
        vdevs.push(VirtId { virt_id, dev: None }, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Makes the reserved `virt_id` name `dev`.
    fn publish(&self, virt_id: u64, dev: ARef<Device>) {
        let mut vdevs = self.vdevs.lock();
        if let Some(v) = vdevs.iter_mut().find(|v| v.virt_id == virt_id) {
            v.dev = Some(dev);
        }
    }

    /// Frees `virt_id`.
    fn release(&self, virt_id: u64) {
        let mut vdevs = self.vdevs.lock();
        if let Some(pos) = vdevs.iter().position(|v| v.virt_id == virt_id) {
            let _ = vdevs.remove(pos);
        }
    }

    /// Adds a vEVENTQ; `EEXIST` if the vIOMMU has one of its type.
    pub(crate) fn add_veventq(&self, q: Arc<EventQueue>) -> Result {
        let mut qs = self.veventqs.lock();
        if qs.iter().any(|o| o.queue_type() == q.queue_type()) {
            return Err(EEXIST);
        }
        qs.push(q, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Takes a vEVENTQ out again.
    pub(crate) fn remove_veventq(&self, q: &Arc<EventQueue>) {
        let mut qs = self.veventqs.lock();
        if let Some(pos) = qs.iter().position(|o| Arc::ptr_eq(o, q)) {
            let _ = qs.remove(pos);
        }
    }
}

/// What a backend may use while it makes a vIOMMU.
pub(crate) struct ViommuServices<'a> {
    ictx: &'a IommufdCtx,
    id: u32,
    core: &'a Arc<ViommuCore>,
}

impl ViommuServices<'_> {
    /// The object id the vIOMMU will have.
    #[cfg_attr(not(CONFIG_ARM_SMMU_V3_RUST_NESTING), expect(dead_code))]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The vIOMMU's core: virtual ids and events.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn core(&self) -> &Arc<ViommuCore> {
        self.core
    }

    /// Offers user space `length` bytes of physical memory at `phys` (both page aligned,
    /// `EINVAL` otherwise) through `mmap()` on the iommufd file (upstream's
    /// `iommufd_viommu_alloc_mmap()`). The region goes when the returned value is dropped,
    /// which the backend does in its destroy.
    #[cfg_attr(
        not(any(CONFIG_IOMMUFD_TEST, CONFIG_ARM_SMMU_V3_RUST_NESTING)),
        expect(dead_code)
    )]
    pub(crate) fn alloc_mmap(&self, phys: PhysAddr, length: usize) -> Result<MmapRegion> {
        self.ictx
            .mmaps
            .alloc(self.id, Viommu::key_of(self.core), phys, length)
    }
}

/// A vIOMMU object.
pub(crate) struct Viommu {
    /// The backend's vIOMMU; dropped first (its destroy), while the parent is still held.
    pub(crate) hw: KBox<dyn ViommuHw>,
    pub(crate) core: Arc<ViommuCore>,
    /// The nest parent, and the long-term user reference on its object.
    hwpt: Arc<HwptPaging>,
    _parent: ObjectRef,
    /// The physical IOMMU instance of the vIOMMU: only its devices may use it.
    iommu: IommuInstance,
}

impl ObjectData for Viommu {
    const TYPE: ObjectType = ObjectType::Viommu;
}

impl Viommu {
    fn key_of(core: &Arc<ViommuCore>) -> usize {
        core::ptr::from_ref::<ViommuCore>(core) as usize
    }

    /// The identity of the vIOMMU (what its mmap regions name it by).
    pub(crate) fn identity(&self) -> usize {
        Self::key_of(&self.core)
    }

    /// The nest parent.
    pub(crate) fn hwpt(&self) -> &Arc<HwptPaging> {
        &self.hwpt
    }

    /// `EINVAL` unless `dev` is translated by the vIOMMU's IOMMU instance.
    pub(crate) fn check_device(&self, dev: &Device) -> Result {
        if device_iommu(dev) != Some(self.iommu) {
            return Err(EINVAL);
        }
        Ok(())
    }
}

/// `IOMMU_VIOMMU_ALLOC`, with upstream's checks in upstream's order.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuViommuAlloc>) -> Result {
    let ictx: &IommufdCtx = &ucmd.ictx;
    let cmd = &ucmd.cmd;
    if cmd.flags != 0 || cmd.viommu_type == IOMMU_VIOMMU_TYPE_DEFAULT {
        return Err(EOPNOTSUPP);
    }
    let idev_obj = ictx.objects.get(cmd.dev_id, ObjectType::Device)?;
    let idev = idev_obj.data::<IDevice>().ok_or(ENOENT)?;
    let dev = idev.device();
    let iommu = device_iommu(dev).ok_or(EOPNOTSUPP)?;
    let backend = hw::backend(dev);
    if !backend.viommu_supported(dev, cmd.viommu_type) {
        return Err(EOPNOTSUPP);
    }
    let parent = ictx.objects.get(cmd.hwpt_id, ObjectType::HwptPaging)?;
    let hwpt = Arc::from(parent.data::<HwptPaging>().ok_or(ENOENT)?);
    if !hwpt.nest_parent {
        return Err(EINVAL);
    }
    let uptr = usize::try_from(cmd.data_uptr).map_err(|_| EFAULT)?;
    let data = UserData::new(
        cmd.viommu_type,
        UserPtr::from_addr(uptr),
        cmd.data_len as usize,
    );
    let mut new = ictx.objects.reserve()?;
    let core = ViommuCore::new()?;
    let svc = ViommuServices {
        ictx,
        id: new.id(),
        core: &core,
    };
    let hw = backend.viommu_alloc(
        dev,
        &hwpt.domain,
        cmd.viommu_type,
        (cmd.data_len != 0).then_some(&data),
        &svc,
    )?;
    let viommu = Arc::new(
        Viommu {
            hw,
            core,
            hwpt,
            _parent: parent.into_long_term(),
            iommu,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    new.prepare(ObjectKind::new(viommu))?;
    ucmd.cmd.out_viommu_id = new.id();
    ucmd.respond()?;
    new.finalize()
}
