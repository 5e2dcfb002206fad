// SPDX-License-Identifier: GPL-2.0

//! DEVICE objects: a device bound to an iommufd context, and its attachment to a HWPT.
//!
//! Binding claims DMA ownership of the device for the context. Attaching to an IOAS picks an
//! automatic HWPT_PAGING of that IOAS the device can use, or creates one; attaching to a HWPT
//! uses it directly. An automatic HWPT goes away with the last device attached to it.
//!
//! The IOMMU attaches groups, not devices: the devices of one group bound to one context share
//! an [`IGroup`] (upstream's `iommufd_group`). The first device that attaches attaches the group;
//! the others join it on the same HWPT (anything else is `EINVAL`); a replace moves the whole
//! group; the last device to detach detaches the group.

use kernel::{
    device::Device,
    iommu::domain::{
        device_capable,
        AttachDomain,
        Capability,
        DmaOwnerClaim,
        Group,
        GroupAttachment,
        ResvRegion,
        ResvRegions,
        RESV_DIRECT_RELAXABLE, //
    },
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    }, //
};

use crate::{
    hw::mock::MockDevice,
    hwpt::{
        self,
        Hwpt,
        HwptPaging, //
    },
    inline_vec::InlineVec,
    ioas::Ioas,
    object::ObjectData,
    object::{
        NewObject,
        ObjectKind,
        ObjectRef,
        ObjectType, //
    },
    viommu::vdevice::DeviceVdev,
    IommufdCtx, //
};

pub(crate) mod hw_info;
mod pasid;
pub(crate) mod sw_msi;

/// The attachment of a group to a HWPT.
struct Attach {
    /// Declared first: detaching the group comes before dropping the HWPT reference.
    group: GroupAttachment<AttachDomain>,
    hwpt: ObjectRef,
}

impl Attach {
    /// The HWPT the group is attached to.
    fn hwpt(&self) -> Result<Hwpt> {
        Hwpt::of(&self.hwpt).ok_or(EINVAL)
    }
}

/// The devices of one IOMMU group bound to one context (upstream's `iommufd_group`).
#[pin_data]
pub(crate) struct IGroup {
    group: ARef<Group>,
    #[pin]
    state: Mutex<GroupState>,
}

struct GroupState {
    /// Where the group is attached, while any of its devices is.
    attach: Option<Attach>,
    /// The attached devices (key and device), whose reserved regions are reserved in the IOAS.
    /// Most groups have one device, which costs no allocation here.
    devices: InlineVec<(usize, ARef<Device>)>,
}

impl GroupState {
    fn has(&self, key: usize) -> bool {
        self.devices.iter().any(|(k, _)| *k == key)
    }

    /// Takes the reserved regions of the first `n` attached devices out of `ioas`.
    fn unreserve(&self, ioas: &Ioas, n: usize) {
        for (key, _) in self.devices.iter().take(n) {
            ioas.iopt.unreserve_owner(*key);
        }
    }
}

impl IGroup {
    /// The group of `dev` in `ictx`: the one of a device of the same group bound to the context,
    /// or a new one. Called under the context's bind lock.
    fn get(ictx: &IommufdCtx, group: ARef<Group>) -> Result<Arc<IGroup>> {
        let mut found = None;
        ictx.objects.for_each(ObjectType::Device, |obj| {
            if let Some(d) = obj.data::<IDevice>() {
                if found.is_none() && core::ptr::eq(d.igroup.group.as_raw(), group.as_raw()) {
                    found = Some(d.igroup.clone());
                }
            }
        });
        if let Some(g) = found {
            return Ok(g);
        }
        Arc::pin_init(
            pin_init!(IGroup {
                group,
                state <- new_mutex!(GroupState {
                    attach: None,
                    devices: InlineVec::new(),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

struct DevState {
    /// The attached PASIDs.
    pasids: KVec<pasid::PasidAttach>,
}

/// Reserves the reserved regions of `dev` in `ioas`, owned by `key`; all or nothing.
fn reserve_regions(dev: &Device, key: usize, ioas: &Ioas) -> Result {
    reserve_list(ResvRegions::get(dev)?.iter(), key, ioas)
}

/// Reserves `regions` in `ioas` (but the relaxable direct ones), owned by `key`; all or nothing.
fn reserve_list(regions: impl Iterator<Item = ResvRegion>, key: usize, ioas: &Ioas) -> Result {
    for r in regions {
        if r.kind == RESV_DIRECT_RELAXABLE {
            continue;
        }
        if let Err(e) = ioas.iopt.reserve(r.start, r.last, key) {
            ioas.iopt.unreserve_owner(key);
            return Err(e);
        }
    }
    Ok(())
}

/// The reserved regions of `dev`, and the start of its `IOMMU_RESV_SW_MSI` window if it has
/// one: read once, when the device is bound (the list is the device's and its IOMMU's, fixed
/// while it is bound; a device with none allocates nothing here).
fn bound_regions(dev: &Device) -> Result<(KVec<ResvRegion>, Option<u64>)> {
    let regions = ResvRegions::get(dev)?;
    // One allocation, none for no region.
    let mut kept = KVec::with_capacity(regions.iter().count(), GFP_KERNEL_ACCOUNT)?;
    for r in regions.iter() {
        kept.push_within_capacity(r).map_err(|_| ENOMEM)?;
    }
    Ok((kept, sw_msi::window_in(regions.iter())))
}

/// Looks up `pt_id`, the target of an attach or a replace: `ENOENT` for no object, then
/// `EINVAL` for one that is neither an IOAS nor a HWPT, both before anything else is checked,
/// as upstream's type switch comes first.
fn lookup_pt(ictx: &IommufdCtx, pt_id: u32) -> Result<ObjectRef> {
    let pt = ictx.objects.get_any(pt_id)?;
    if pt.data::<Ioas>().is_none() && Hwpt::of(&pt).is_none() {
        return Err(EINVAL);
    }
    Ok(pt)
}

/// The IOAS behind `pt`: the IOAS itself, or the IOAS a HWPT translates; `EINVAL` for any other
/// object.
fn pt_ioas(pt: &ObjectRef) -> Result<Arc<Ioas>> {
    if let Some(ioas) = pt.data::<Ioas>() {
        return Ok(ioas.into());
    }
    Ok(Hwpt::of(pt).ok_or(EINVAL)?.paging()?.ioas()?.into())
}

extern "C" {
    /// `drivers/vfio/api.c`: whether `dev` is a PCI virtual function that supports PRI.
    fn iommufd_rs_dev_is_pri_vf(dev: *mut c_void) -> bool;
}

/// Whether `dev` is a PCI virtual function that supports PRI.
fn dev_is_pri_vf(dev: &Device) -> bool {
    // `Device` wraps `struct device` transparently (`Device::from_raw()` is the reverse cast),
    // so its address is the C device's.
    let raw = core::ptr::from_ref(dev).cast_mut().cast::<c_void>();
    // SAFETY: `raw` is a valid device for the duration of the call (the caller holds a
    // reference); the helper only reads it.
    unsafe { iommufd_rs_dev_is_pri_vf(raw) }
}

/// A bound device.
#[pin_data]
pub(crate) struct IDevice {
    dev: ARef<Device>,
    /// The DEVICE object's id (what fault records name the device by).
    id: u32,
    /// The device's group in the context. Lock order: its state, then the device's.
    igroup: Arc<IGroup>,
    #[pin]
    state: Mutex<DevState>,
    /// The device's vDEVICE, if it has one ([`crate::viommu::vdevice`]).
    #[pin]
    vdev: DeviceVdev,
    /// The device's IOMMU can enforce cache coherency, so every domain it attaches to must.
    enforce_cc: bool,
    /// A PCI virtual function with PRI: it may not use HWPTs that take faults.
    pri_vf: bool,
    /// The start of the device's `IOMMU_RESV_SW_MSI` window: its MSI doorbells are mapped there in
    /// every domain it attaches to ([`crate::sw_msi`]).
    sw_msi_window: Option<u64>,
    /// The device's reserved regions, which an attach reserves in the IOAS ([`bound_regions`]).
    resv: KVec<ResvRegion>,
    /// After `state`: DMA ownership is released only once every attachment is gone.
    _owner: DmaOwnerClaim,
    /// The device's owner when iommufd created it (a selftest mock device): dropped last, after
    /// DMA ownership is released, since removing it takes the device off its IOMMU.
    _backing: Option<MockDevice>,
}

impl ObjectData for IDevice {
    const TYPE: ObjectType = ObjectType::Device;
}

impl IDevice {
    /// Binds `dev` to the context `ictx`: claims its DMA ownership, and publishes the DEVICE
    /// object at the id reserved in `new`; returns the device and its id.
    pub(crate) fn bind(
        ictx: &IommufdCtx,
        new: NewObject<'_>,
        dev: &Device,
        backing: Option<MockDevice>,
    ) -> Result<(Arc<IDevice>, u32)> {
        if !device_capable(dev, Capability::CacheCoherency) {
            return Err(EINVAL);
        }
        let group = Group::get(dev).ok_or(ENODEV)?;
        // A device whose MSIs are not isolated could make a plain DMA write trigger an interrupt
        // outside this context. As VFIO always did, such devices are refused unless the
        // administrator allows it; the selftest's mock devices have no MSIs.
        if backing.is_none() && !group.has_isolated_msi() {
            if !crate::allow_unsafe_interrupts() {
                return Err(EPERM);
            }
            dev_warn!(
                dev,
                "MSI interrupts are not secure, they cannot be isolated by the platform. \
                 Check that platform features like interrupt remapping are enabled. \
                 Use the \"allow_unsafe_interrupts\" module parameter to override\n"
            );
        }
        let (resv, sw_msi_window) = bound_regions(dev)?;
        let owner = DmaOwnerClaim::claim(dev.into(), core::ptr::from_ref(ictx) as usize)?;
        // Devices of one group share their `IGroup`: finding it and publishing the device are
        // one step for other binds.
        let _bind = ictx.bind_lock.lock();
        let igroup = IGroup::get(ictx, group)?;
        let id = new.id();
        let idev = Arc::pin_init(
            pin_init!(IDevice {
                dev: dev.into(),
                id,
                igroup,
                sw_msi_window,
                resv,
                pri_vf: dev_is_pri_vf(dev),
                _owner: owner,
                enforce_cc: device_capable(dev, Capability::EnforceCacheCoherency),
                state <- new_mutex!(DevState {
                    pasids: KVec::new(),
                }),
                vdev <- DeviceVdev::new(),
                _backing: backing,
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        new.publish(ObjectKind::new(idev.clone()))?;
        Ok((idev, id))
    }

    /// The device's IOMMU group.
    pub(crate) fn group(&self) -> &Group {
        &self.igroup.group
    }

    /// The device.
    pub(crate) fn device(&self) -> &Device {
        &self.dev
    }

    /// The device's vDEVICE state.
    pub(crate) fn vdev(&self) -> &DeviceVdev {
        &self.vdev
    }

    /// The device is being unbound: its vDEVICE goes, leaving a tombstone, and no new one can
    /// be made.
    pub(crate) fn remove_vdev(&self, ictx: &IommufdCtx) {
        crate::viommu::vdevice::remove_for_unbind(ictx, self);
    }

    /// Whether the device's IOMMU can enforce cache coherency, so every domain it attaches to
    /// must.
    pub(crate) fn enforces_cache_coherency(&self) -> bool {
        self.enforce_cc
    }

    /// Whether the device's IOMMU can track dirty pages.
    pub(crate) fn dirty_tracking_capable(&self) -> bool {
        device_capable(&self.dev, Capability::DirtyTracking)
    }

    fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Finds a HWPT for the device from `pt` (an IOAS: an automatic HWPT, reused or new; a
    /// HWPT: itself) and attaches or moves the group to it with `attach`.
    ///
    /// A new automatic HWPT is checked with `before_fill` before its domain mirrors the IOAS
    /// ([`hwpt::alloc_auto`]).
    fn to_hwpt(
        &self,
        ictx: &IommufdCtx,
        pt: ObjectRef,
        before_fill: Option<&dyn Fn() -> Result>,
        attach: &mut dyn FnMut(&Hwpt) -> Result,
    ) -> Result<ObjectRef> {
        if let Some(hwpt) = Hwpt::of(&pt) {
            attach(&hwpt)?;
            return Ok(pt);
        }
        let ioas = Arc::from(pt.data::<Ioas>().ok_or(EINVAL)?);
        // Reuse an automatic HWPT of the IOAS the device can attach to.
        let mut found: Option<Result<ObjectRef>> = None;
        ictx.objects.for_each(ObjectType::HwptPaging, |obj| {
            if found.is_some() {
                return;
            }
            let Some(h) = obj.data::<HwptPaging>() else {
                return;
            };
            if !h.auto_domain || !h.translates(&ioas) {
                return;
            }
            match attach(&Hwpt::Paging(h.into())) {
                Ok(()) => found = Some(ictx.objects.get(obj.id(), ObjectType::HwptPaging)),
                Err(e) if e == EINVAL => {}
                Err(e) => found = Some(Err(e)),
            }
        });
        if let Some(r) = found {
            return r;
        }
        // A new automatic HWPT. Its object is made before the group moves there, so that
        // nothing can fail after `attach` (publishing at a reserved id does not allocate): a
        // failed replace must leave the group where it was.
        let hwpt = hwpt::alloc_auto(ictx, self, pt, before_fill)?;
        let new = ictx.objects.alloc(ObjectKind::new(hwpt.clone()))?;
        attach(&Hwpt::Paging(hwpt))?;
        let id = new.id();
        new.finalize()?;
        ictx.objects.get(id, ObjectType::HwptPaging)
    }

    /// `EINVAL` if `h` takes faults and the device is a PCI virtual function with PRI (upstream's
    /// `iommufd_hwpt_compatible_device()`): PRI is shared with the physical function and its
    /// other VFs, and nothing coordinates the answers.
    pub(crate) fn check_faults(&self, h: &Hwpt) -> Result {
        if self.pri_vf && h.fault_route(self.id).is_some() {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Whether the device, with PASIDs attached or not (`has_pasids`), may use `h`: a device
    /// with PASIDs attached only uses HWPTs allocated for PASIDs (`EINVAL`), and a device whose
    /// IOMMU can enforce cache coherency makes the HWPT enforce it.
    ///
    /// The MSI doorbells the device may already use are mapped into the domain of the HWPT
    /// (of a nested HWPT's parent) before the device moves there.
    fn check_hwpt(&self, h: &Hwpt, has_pasids: bool) -> Result {
        self.check_faults(h)?;
        if has_pasids && !h.pasid_compat() {
            return Err(EINVAL);
        }
        let paging = h.paging()?;
        if self.enforce_cc {
            paging.enforce_cache_coherency()?;
        }
        if let Some(window) = self.sw_msi_window {
            paging.msi.install_all(&paging.domain, window)?;
        }
        Ok(())
    }

    /// Attaches the device to `pt_id` (IOAS or HWPT); returns the HWPT id.
    ///
    /// If another device of the group is attached, this one joins it: `pt_id` must be that HWPT,
    /// or its IOAS if the HWPT is automatic (`EINVAL` otherwise).
    pub(crate) fn attach(&self, ictx: &IommufdCtx, pt_id: u32) -> Result<u32> {
        // The target is checked before an attached device is `EBUSY`.
        let pt = lookup_pt(ictx, pt_id)?;
        let mut gs = self.igroup.state.lock();
        if gs.has(self.key()) {
            return Err(EBUSY);
        }
        gs.devices.reserve_one(GFP_KERNEL_ACCOUNT)?;
        let target_ioas = pt_ioas(&pt)?;
        let has_pasids = !self.state.lock().pasids.is_empty();
        if let Some(cur) = &gs.attach {
            let h = cur.hwpt()?;
            let same = match Hwpt::of(&pt) {
                Some(t) => t.same(&h),
                None => h.auto_domain() && h.paging()?.translates(&target_ioas),
            };
            if !same {
                return Err(EINVAL);
            }
            self.check_hwpt(&h, has_pasids)?;
            reserve_list(self.resv.iter().copied(), self.key(), &target_ioas)?;
            let id = cur.hwpt.id();
            // Room was reserved above.
            gs.devices
                .push((self.key(), self.dev.clone()), GFP_KERNEL_ACCOUNT)?;
            return Ok(id);
        }
        reserve_list(self.resv.iter().copied(), self.key(), &target_ioas)?;
        let mut ga = None;
        // A new automatic HWPT is not PASID-compatible. Upstream attaches it before it mirrors
        // the IOAS, so a device with PASIDs attached is refused it before any mapping is checked.
        let new_auto_check = || if has_pasids { Err(EINVAL) } else { Ok(()) };
        let res = self.to_hwpt(ictx, pt, Some(&new_auto_check), &mut |h| {
            self.check_hwpt(h, has_pasids)?;
            ga = Some(GroupAttachment::attach(
                self.igroup.group.clone(),
                h.domain(),
                h.fault_route(self.id),
            )?);
            Ok(())
        });
        match (res, ga) {
            (Ok(hwpt), Some(group)) => {
                let id = hwpt.id();
                gs.attach = Some(Attach {
                    group,
                    hwpt: hwpt.into_long_term(),
                });
                gs.devices
                    .push((self.key(), self.dev.clone()), GFP_KERNEL_ACCOUNT)?;
                Ok(id)
            }
            (res, _) => {
                target_ioas.iopt.unreserve_owner(self.key());
                res.and(Err(EINVAL))
            }
        }
    }

    /// Moves the attached device, with the rest of its group, to `pt_id`; returns the new HWPT
    /// id.
    pub(crate) fn replace(&self, ictx: &IommufdCtx, pt_id: u32) -> Result<u32> {
        let mut gs = self.igroup.state.lock();
        let pt = ictx.objects.get_any(pt_id)?;
        let new_ioas = pt_ioas(&pt)?;
        if !gs.has(self.key()) {
            return Err(self.unattached_replace_err(ictx, pt));
        }
        let Some(cur) = gs.attach.take() else {
            return Err(self.unattached_replace_err(ictx, pt));
        };
        if cur.hwpt.id() == pt_id {
            gs.attach = Some(cur);
            return Ok(pt_id);
        }
        let old_ioas = match cur.hwpt().and_then(|h| Ok(Arc::from(h.paging()?.ioas()?))) {
            Ok(i) => i,
            Err(_) => {
                gs.attach = Some(cur);
                return Err(EINVAL);
            }
        };
        let moved_ioas = !Arc::ptr_eq(&old_ioas, &new_ioas);
        if moved_ioas {
            // Every attached device of the group moves: reserve all their regions there.
            let mut done = 0;
            let mut res = Ok(());
            for (key, dev) in gs.devices.iter() {
                res = reserve_regions(dev, *key, &new_ioas);
                if res.is_err() {
                    break;
                }
                done += 1;
            }
            if let Err(e) = res {
                gs.unreserve(&new_ioas, done);
                gs.attach = Some(cur);
                return Err(e);
            }
        }
        let has_pasids = !self.state.lock().pasids.is_empty();
        let old_domain = cur.hwpt().map(|h| (h.domain(), h.fault_route(self.id)));
        let mut cur_group = Some(cur.group);
        let mut new_group = None;
        let res = self.to_hwpt(ictx, pt, None, &mut |h| {
            self.check_hwpt(h, has_pasids)?;
            let g = cur_group.take().ok_or(EINVAL)?;
            match g.replace(h.domain(), h.fault_route(self.id)) {
                Ok(n) => {
                    new_group = Some(n);
                    Ok(())
                }
                Err((e, g)) => {
                    cur_group = Some(g);
                    Err(e)
                }
            }
        });
        // Should the group have moved although the replace failed, it moves back.
        if res.is_err() && cur_group.is_none() {
            if let (Some(n), Ok((old, route))) = (new_group.take(), old_domain) {
                match n.replace(old, route) {
                    Ok(g) => cur_group = Some(g),
                    Err((_, n)) => new_group = Some(n),
                }
            }
        }
        match (res, new_group) {
            (Ok(hwpt), Some(group)) => {
                let id = hwpt.id();
                // `gs.attach` was taken above, so nothing is replaced here.
                gs.attach = Some(Attach {
                    group,
                    hwpt: hwpt.into_long_term(),
                });
                if moved_ioas {
                    gs.unreserve(&old_ioas, usize::MAX);
                }
                drop(gs);
                Self::put_hwpt(ictx, cur.hwpt);
                Ok(id)
            }
            (res, _) => {
                if moved_ioas {
                    gs.unreserve(&new_ioas, usize::MAX);
                }
                if let Some(group) = cur_group {
                    gs.attach = Some(Attach {
                        group,
                        hwpt: cur.hwpt,
                    });
                    return res.and(Err(EINVAL));
                }
                // The group moved, the new HWPT could not be kept and the group could not move
                // back: it was detached with the dropped attachment, so its devices are
                // detached now.
                gs.unreserve(&old_ioas, usize::MAX);
                gs.devices.clear();
                drop(gs);
                Self::put_hwpt(ictx, cur.hwpt);
                res.and(Err(EINVAL))
            }
        }
    }

    /// What a replace of a device (or PASID) that is not attached fails with: `EINVAL`, but onto
    /// an IOAS upstream first tries each automatic HWPT there (each refuses) and then makes a new
    /// one, filled before the replace is tried, so a failure to mirror the IOAS (say a mapping
    /// outside the domain's aperture, `EADDRINUSE`) is what the caller sees.
    pub(crate) fn unattached_replace_err(&self, ictx: &IommufdCtx, pt: ObjectRef) -> Error {
        if pt.data::<Ioas>().is_none() {
            return EINVAL;
        }
        match hwpt::alloc_auto(ictx, self, pt, None) {
            // Never published: dropping it undoes it.
            Ok(_) => EINVAL,
            Err(e) => e,
        }
    }

    /// Detaches the device; the last attached device of its group detaches the group.
    pub(crate) fn detach(&self, ictx: &IommufdCtx) {
        let mut gs = self.igroup.state.lock();
        if gs.devices.remove_first(|(k, _)| *k == self.key()).is_none() {
            return;
        }
        if let Some(Ok(h)) = gs.attach.as_ref().map(|a| a.hwpt()) {
            if let Ok(ioas) = h.paging().and_then(|p| p.ioas()) {
                ioas.iopt.unreserve_owner(self.key());
            }
        }
        if !gs.devices.is_empty() {
            return;
        }
        // The group is detached under the lock, as upstream does under `igroup->lock`, so an
        // attach right after this returns finds it detached.
        let hwpt = gs.attach.take().map(|Attach { group, hwpt }| {
            drop(group);
            hwpt
        });
        drop(gs);
        if let Some(hwpt) = hwpt {
            Self::put_hwpt(ictx, hwpt);
        }
    }

    /// Drops a device's reference to a HWPT; an automatic HWPT nobody uses any more goes away.
    fn put_hwpt(ictx: &IommufdCtx, hwpt: ObjectRef) {
        if hwpt.data::<HwptPaging>().is_some_and(|h| h.auto_domain) {
            ictx.objects.put_and_try_destroy(ictx, hwpt);
        }
    }
}
