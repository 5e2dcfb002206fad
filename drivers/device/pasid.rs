// SPDX-License-Identifier: GPL-2.0

//! PASID attachments of a bound device.
//!
//! Besides its attachment without PASID, a device may attach each of its PASIDs to a paging
//! HWPT allocated with `IOMMU_HWPT_ALLOC_PASID`. While any PASID is attached, the device
//! itself (without PASID) may only be attached to such HWPTs too, and the other way round.
//! PASID 0 (`IOMMU_NO_PASID`) is the device's attachment without PASID.

use kernel::{
    iommu::domain::{
        AttachDomain,
        PasidAttachment, //
    },
    prelude::*, //
};

use super::{
    lookup_pt,
    IDevice, //
};
use crate::{
    hwpt::Hwpt,
    object::ObjectRef,
    IommufdCtx, //
};

/// `IOMMU_NO_PASID`.
pub(crate) const IOMMU_NO_PASID: u32 = 0;

/// One PASID of a device attached to a HWPT.
pub(crate) struct PasidAttach {
    /// Declared first: detaching the PASID comes before dropping the HWPT reference.
    att: PasidAttachment<AttachDomain>,
    hwpt: ObjectRef,
}

impl PasidAttach {
    fn pasid(&self) -> u32 {
        self.att.pasid()
    }
}

impl IDevice {
    /// Whether the device's attachment without PASID allows PASIDs to be attached: there is
    /// none, or its HWPT was allocated with `IOMMU_HWPT_ALLOC_PASID`.
    fn no_pasid_compat(attach: Option<&super::Attach>) -> bool {
        attach.is_none_or(|a| a.hwpt().is_ok_and(|h| h.pasid_compat()))
    }

    /// Whether `hwpt` may take a PASID of this device.
    fn check_pasid_hwpt(hwpt: &Hwpt, no_pasid_compat: bool) -> Result {
        if !hwpt.pasid_compat() || !no_pasid_compat {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Attaches `pasid` of the device to `pt_id` (IOAS or HWPT_PAGING); returns the HWPT id.
    pub(crate) fn pasid_attach(&self, ictx: &IommufdCtx, pasid: u32, pt_id: u32) -> Result<u32> {
        if pasid == IOMMU_NO_PASID {
            return self.attach(ictx, pt_id);
        }
        let gs = self.igroup.state.lock();
        let mut st = self.state.lock();
        let pt = lookup_pt(ictx, pt_id)?;
        if st.pasids.iter().any(|p| p.pasid() == pasid) {
            return Err(EBUSY);
        }
        st.pasids.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let compat = Self::no_pasid_compat(self.rid_attach(&gs));
        let mut att = None;
        // A new automatic HWPT is never PASID-compatible; upstream refuses it when it attaches,
        // before it mirrors the IOAS.
        let hwpt = self.to_hwpt(ictx, pt, Some(&|| Err(EINVAL)), &mut |h| {
            self.check_faults(h)?;
            Self::check_pasid_hwpt(h, compat)?;
            att = Some(PasidAttachment::attach(
                self.dev.clone(),
                pasid,
                h.domain(),
                h.fault_route(self.id),
            )?);
            Ok(())
        })?;
        let att = att.ok_or(EINVAL)?;
        let id = hwpt.id();
        st.pasids.push(
            PasidAttach {
                att,
                hwpt: hwpt.into_long_term(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(id)
    }

    /// Moves the attached `pasid` to `pt_id`; returns the new HWPT id. On failure the PASID
    /// stays where it was.
    pub(crate) fn pasid_replace(&self, ictx: &IommufdCtx, pasid: u32, pt_id: u32) -> Result<u32> {
        if pasid == IOMMU_NO_PASID {
            return self.replace(ictx, pt_id);
        }
        let gs = self.igroup.state.lock();
        let mut st = self.state.lock();
        let pt = lookup_pt(ictx, pt_id)?;
        let Some(pos) = st.pasids.iter().position(|p| p.pasid() == pasid) else {
            return Err(self.unattached_replace_err(ictx, pt));
        };
        let cur = st.pasids.remove(pos).map_err(|_| EINVAL)?;
        let compat = Self::no_pasid_compat(self.rid_attach(&gs));
        let cur_hwpt = Hwpt::of(&cur.hwpt).ok_or(EINVAL)?;
        let mut cur_att = Some(cur.att);
        let mut new_att = None;
        let res = self.to_hwpt(ictx, pt, None, &mut |h| {
            if h.same(&cur_hwpt) {
                return Ok(());
            }
            self.check_faults(h)?;
            Self::check_pasid_hwpt(h, compat)?;
            let a = cur_att.take().ok_or(EINVAL)?;
            match a.replace(h.domain(), h.fault_route(self.id)) {
                Ok(n) => {
                    new_att = Some(n);
                    Ok(())
                }
                Err((e, a)) => {
                    cur_att = Some(a);
                    Err(e)
                }
            }
        });
        // Removing an element left room for one: the pushes below do not allocate.
        match (res, new_att, cur_att) {
            (Ok(hwpt), Some(att), _) => {
                let id = hwpt.id();
                st.pasids.push(
                    PasidAttach {
                        att,
                        hwpt: hwpt.into_long_term(),
                    },
                    GFP_KERNEL_ACCOUNT,
                )?;
                drop(st);
                drop(gs);
                Self::put_hwpt(ictx, cur.hwpt);
                Ok(id)
            }
            (res, _, Some(att)) => {
                st.pasids.push(
                    PasidAttach {
                        att,
                        hwpt: cur.hwpt,
                    },
                    GFP_KERNEL_ACCOUNT,
                )?;
                // Either the PASID already was on the HWPT (success) or nothing changed.
                res.map(|hwpt| hwpt.id())
            }
            (Err(e), Some(att), None) => {
                // Moved, but the new HWPT could not be kept: the PASID ends up detached.
                drop(st);
                drop(gs);
                drop(att);
                Self::put_hwpt(ictx, cur.hwpt);
                Err(e)
            }
            (res, None, None) => res.and(Err(EINVAL)),
        }
    }

    /// Detaches `pasid` of the device; nothing happens if it is not attached.
    pub(crate) fn pasid_detach(&self, ictx: &IommufdCtx, pasid: u32) {
        if pasid == IOMMU_NO_PASID {
            self.detach(ictx);
            return;
        }
        // Detached under the lock (the attach handle goes here), so an attach of the PASID
        // right after this returns finds it free.
        let hwpt = {
            let mut st = self.state.lock();
            match st.pasids.iter().position(|p| p.pasid() == pasid) {
                Some(pos) => st.pasids.remove(pos).ok().map(|PasidAttach { att, hwpt }| {
                    drop(att);
                    hwpt
                }),
                None => None,
            }
        };
        if let Some(hwpt) = hwpt {
            Self::put_hwpt(ictx, hwpt);
        }
    }

    /// Detaches every PASID of the device (it is being unbound).
    pub(crate) fn pasid_detach_all(&self, ictx: &IommufdCtx) {
        let mut hwpts = KVec::new();
        {
            let mut st = self.state.lock();
            // Room for every HWPT reference, so that they go after the lock.
            let _ = hwpts.reserve(st.pasids.len(), GFP_KERNEL);
            while let Some(PasidAttach { att, hwpt }) = st.pasids.pop() {
                drop(att);
                // Without room (the reservation failed) the reference goes here, under the
                // lock; an automatic HWPT then stays until the context goes.
                let _ = hwpts.push_within_capacity(hwpt);
            }
        }
        for hwpt in hwpts {
            Self::put_hwpt(ictx, hwpt);
        }
    }

    /// The device's attachment without PASID (its group's, if the device is attached).
    fn rid_attach<'a>(&self, gs: &'a super::GroupState) -> Option<&'a super::Attach> {
        gs.attach.as_ref().filter(|_| gs.has(self.key()))
    }

    /// The domain `pasid` of the device is attached to, if any.
    pub(crate) fn pasid_domain(&self, pasid: u32) -> Option<AttachDomain> {
        if pasid == IOMMU_NO_PASID {
            let gs = self.igroup.state.lock();
            return self.rid_attach(&gs).map(|a| a.group.domain().clone());
        }
        let st = self.state.lock();
        st.pasids
            .iter()
            .find(|p| p.pasid() == pasid)
            .map(|p| p.att.domain().clone())
    }
}
