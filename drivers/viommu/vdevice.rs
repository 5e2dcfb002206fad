// SPDX-License-Identifier: GPL-2.0

//! vDEVICE objects (`IOMMU_VDEVICE_ALLOC`): a bound device as the guest sees it behind a
//! vIOMMU, with its virtual id (a virtual StreamID or RID).
//!
//! A device has at most one vDEVICE (`EEXIST`), and a virtual id names at most one device per
//! vIOMMU (`EEXIST`). The vDEVICE holds a user reference on its vIOMMU. When the device is
//! unbound while its vDEVICE exists, the vDEVICE is destroyed and leaves a tombstone: its id
//! stays taken and looks up as `ENOENT` until the file is closed (upstream's
//! `iommufd_device_remove_vdev()`), so a VMM that destroys it later gets a clear answer. Once
//! unbinding has started no new vDEVICE can be made for the device (`ENOENT`).

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        Arc,
        CondVar,
        Mutex,
        UniqueArc, //
    },
};
use zerocopy_derive::Immutable;

use super::{
    Viommu,
    ViommuCore, //
};
use crate::{
    device::IDevice,
    hw::VDeviceHw,
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

/// `struct iommu_vdevice_alloc`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable)]
pub(crate) struct IommuVdeviceAlloc {
    size: u32,
    viommu_id: u32,
    dev_id: u32,
    out_vdevice_id: u32,
    virt_id: u64,
}

const _: () = assert!(size_of::<IommuVdeviceAlloc>() == 24);

impl UserCmd for IommuVdeviceAlloc {
    const MIN_SIZE: usize = offset_of!(IommuVdeviceAlloc, virt_id) + size_of::<u64>();
}

/// A device's vDEVICE slot (upstream's `idev->vdev` and `idev->destroying`, under
/// `igroup->lock`).
pub(crate) struct VdevSlot {
    /// The object id of the device's vDEVICE.
    id: Option<u32>,
    /// The device is being unbound: no new vDEVICE.
    destroying: bool,
}

/// The vDEVICE state of a device: its slot, and where an unbind waits for a vDEVICE that user
/// space is destroying at the same time.
#[pin_data]
pub(crate) struct DeviceVdev {
    #[pin]
    state: Mutex<VdevSlot>,
    #[pin]
    gone: CondVar,
}

impl DeviceVdev {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(VdevSlot {
                id: None,
                destroying: false,
            }),
            gone <- new_condvar!(),
        })
    }
}

/// A vDEVICE object.
pub(crate) struct VDevice {
    /// The backend's part, dropped first (upstream's `vdev->destroy`).
    hw: Option<KBox<dyn VDeviceHw>>,
    core: Arc<ViommuCore>,
    virt_id: u64,
    /// The object's own id (what the device's slot names it by).
    id: u32,
    idev: Arc<IDevice>,
    /// The vIOMMU, with a long-term user reference.
    _viommu: ObjectRef,
}

impl ObjectData for VDevice {
    const TYPE: ObjectType = ObjectType::VDevice;
}

impl Drop for VDevice {
    fn drop(&mut self) {
        let vdev = self.idev.vdev();
        let mut slot = vdev.state.lock();
        drop(self.hw.take());
        self.core.release(self.virt_id);
        if slot.id == Some(self.id) {
            slot.id = None;
            vdev.gone.notify_all();
        }
    }
}

/// Destroys the vDEVICE of `idev`, leaving a tombstone, and keeps any new one from being made
/// (the device is being unbound). Waits for a vDEVICE user space is destroying meanwhile.
pub(crate) fn remove_for_unbind(ictx: &IommufdCtx, idev: &IDevice) {
    let vdev = idev.vdev();
    loop {
        let mut slot = vdev.state.lock();
        slot.destroying = true;
        let Some(id) = slot.id else {
            return;
        };
        match ictx.objects.get(id, ObjectType::VDevice).ok() {
            Some(r) => {
                // References are dropped without the slot's lock: the last one drops the
                // vDEVICE, which takes it.
                drop(slot);
                if kernel::warn_on!(r.data::<VDevice>().is_none_or(|v| v.id != id)) {
                    return;
                }
                // Our reference keeps user space from destroying it meanwhile (`EBUSY`).
                ictx.objects.tombstone_user(ictx, r);
            }
            None => {
                // User space is destroying it right now: its drop empties the slot.
                while slot.id == Some(id) {
                    vdev.gone.wait(&mut slot);
                }
            }
        }
    }
}

/// `IOMMU_VDEVICE_ALLOC`, with upstream's checks in upstream's order.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_, IommuVdeviceAlloc>) -> Result {
    let ictx = ucmd.ictx;
    let virt_id = ucmd.cmd.virt_id;
    // The id indexes upstream's XArray.
    if usize::try_from(virt_id).is_err() {
        return Err(EINVAL);
    }
    let viommu_obj = ictx.objects.get(ucmd.cmd.viommu_id, ObjectType::Viommu)?;
    let viommu = Arc::from(viommu_obj.data::<Viommu>().ok_or(ENOENT)?);
    let idev_obj = ictx.objects.get(ucmd.cmd.dev_id, ObjectType::Device)?;
    let idev = Arc::from(idev_obj.data::<IDevice>().ok_or(ENOENT)?);
    viommu.check_device(idev.device())?;
    // Allocated before the slot's lock: a `VDevice` that is dropped takes the lock.
    let uninit = UniqueArc::<VDevice>::new_uninit(GFP_KERNEL_ACCOUNT)?;
    let vdev_state = idev.vdev();
    let mut slot = vdev_state.state.lock();
    if slot.destroying {
        return Err(ENOENT);
    }
    if slot.id.is_some() {
        return Err(EEXIST);
    }
    let mut new = ictx.objects.reserve()?;
    let id = new.id();
    viommu.core.reserve(virt_id)?;
    let hw = match viommu.hw.vdevice_init(idev.device(), virt_id) {
        Ok(hw) => hw,
        Err(e) => {
            viommu.core.release(virt_id);
            return Err(e);
        }
    };
    let vdev: Arc<VDevice> = uninit
        .write(VDevice {
            hw,
            core: viommu.core.clone(),
            virt_id,
            id,
            idev: idev.clone(),
            _viommu: viommu_obj.into_long_term(),
        })
        .into();
    viommu.core.publish(virt_id, idev.device().into());
    slot.id = Some(id);
    let res = new.prepare(ObjectKind::new(vdev.clone()));
    let res = res.and_then(|()| {
        ucmd.cmd.out_vdevice_id = id;
        ucmd.respond()
    });
    match res {
        Ok(()) => {
            let res = new.finalize();
            drop(slot);
            res
        }
        Err(e) => {
            slot.id = None;
            drop(slot);
            // Dropping the vDEVICE (after the slot's lock, which its drop takes) gives back its
            // virtual id and the backend's part.
            drop(new);
            drop(vdev);
            Err(e)
        }
    }
}
