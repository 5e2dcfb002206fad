// SPDX-License-Identifier: GPL-2.0

//! The SMMUv3 vIOMMU: its VMID, its nested domains, its vDEVICEs and the guest commands it
//! forwards.

use core::fmt;
use kernel::{
    device::Device,
    iommu::{
        arm_smmu_v3::{
            read_ste,
            Info,
            Vsmmu, //
        },
        domain::{
            NestedDomain,
            PagingDomain,
            UserData,
            UserDataArray, //
        },
    },
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
};

use super::{
    cmd,
    vste,
    Caps, //
};
use crate::{
    hw::{
        VDeviceHw,
        ViommuHw, //
    },
    viommu::{
        ViommuCore,
        ViommuServices, //
    },
};

/// `IOMMU_HWPT_DATA_ARM_SMMUV3`.
const IOMMU_HWPT_DATA_ARM_SMMUV3: u32 = 2;
/// `IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`.
const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3: u32 = 1;

/// `struct iommu_hwpt_arm_smmuv3`: the vSTE, two little-endian words.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct HwptArmSmmuv3 {
    ste: [u64; 2],
}

// SAFETY: Two `u64`s: every bit pattern is valid.
unsafe impl FromBytes for HwptArmSmmuv3 {}
// SAFETY: No padding.
unsafe impl AsBytes for HwptArmSmmuv3 {}

/// `struct iommu_viommu_arm_smmuv3_invalidate`: one guest command, two little-endian words.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
struct InvalidateArmSmmuv3 {
    cmd: [u64; 2],
}

// SAFETY: Two `u64`s: every bit pattern is valid.
unsafe impl FromBytes for InvalidateArmSmmuv3 {}
// SAFETY: No padding.
unsafe impl AsBytes for InvalidateArmSmmuv3 {}

/// One live vIOMMU, for the debugfs view.
struct Shown {
    id: u32,
    vmid: u16,
    core: Arc<ViommuCore>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `init()` at module init, before `/dev/iommu` exists.
    unsafe(uninit) static VIOMMUS: Mutex<KVec<Shown>> = KVec::new();
}

/// Module init.
pub(super) fn init() {
    // SAFETY: Called once, at module init.
    unsafe { VIOMMUS.init() };
}

/// Writes the debugfs view of the live vIOMMUs.
pub(super) fn show(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let list = VIOMMUS.lock();
    for v in list.iter() {
        writeln!(f, "viommu {} vmid {}", v.id, v.vmid)?;
        let mut res = Ok(());
        v.core.for_each_vdev(|vsid, dev| {
            if res.is_err() {
                return;
            }
            let (Ok(info), Ok(ste)) = (Info::of(dev), read_ste(dev)) else {
                return;
            };
            res = write!(
                f,
                "vdevice {} vsid {} sid {} dev {} ste",
                v.id,
                vsid,
                info.sid,
                dev.name().to_str().unwrap_or("?")
            )
            .and_then(|()| {
                for w in ste {
                    write!(f, " {w:016x}")?;
                }
                writeln!(f)
            });
        });
        res?;
    }
    Ok(())
}

/// The StreamID of each vDEVICE of a vIOMMU, by vSID: what guest commands name a device by.
type Sids = Mutex<KVec<(u64, u32)>>;

/// An SMMUv3 vIOMMU.
///
/// # Invariants
///
/// An entry for it, with the same `id`, is in `VIOMMUS` while it lives.
pub(super) struct SmmuViommu {
    vsmmu: Vsmmu<ViommuCore>,
    caps: Caps,
    max_cmds: usize,
    id: u32,
    /// Locks: a leaf; taken under the vDEVICE slot's lock (`vdevice_init`, the vDEVICE's drop).
    sids: Arc<Sids>,
}

/// The SMMUv3 part of a vDEVICE: its vSID names its master's StreamID while it lives.
struct SmmuVdev {
    sids: Arc<Sids>,
    vsid: u64,
}

impl VDeviceHw for SmmuVdev {}

impl Drop for SmmuVdev {
    fn drop(&mut self) {
        let mut sids = self.sids.lock();
        if let Some(pos) = sids.iter().position(|(v, _)| *v == self.vsid) {
            let _ = sids.remove(pos);
        }
    }
}

impl SmmuViommu {
    pub(super) fn new(
        dev: &Device,
        parent: &PagingDomain,
        info: &Info,
        svc: &ViommuServices<'_>,
    ) -> Result<Self> {
        let sids = Arc::pin_init(new_mutex!(KVec::new()), GFP_KERNEL_ACCOUNT)?;
        let mut list = VIOMMUS.lock();
        list.reserve(1, GFP_KERNEL)?;
        let vsmmu = Vsmmu::new(dev, parent, svc.core().clone())?;
        let id = svc.id();
        list.push(
            Shown {
                id,
                vmid: vsmmu.vmid(),
                core: svc.core().clone(),
            },
            GFP_KERNEL,
        )?;
        drop(list);
        // INVARIANT: Listed above.
        Ok(Self {
            vsmmu,
            caps: Caps::of(info),
            max_cmds: usize::try_from(info.max_cmds)?.max(1),
            id,
            sids,
        })
    }

    /// Issues `cmds`, rewritten, in batches; on failure the error and how many went through.
    fn issue_all(&self, cmds: &mut [[u64; 2]]) -> core::result::Result<(), (usize, Error)> {
        let mut done = 0;
        for batch in cmds.chunks_mut(self.max_cmds) {
            self.vsmmu.issue(batch).map_err(|e| (done, e))?;
            done += batch.len();
        }
        Ok(())
    }
}

impl Drop for SmmuViommu {
    fn drop(&mut self) {
        let mut list = VIOMMUS.lock();
        if let Some(pos) = list.iter().position(|v| v.id == self.id) {
            let gone = list.remove(pos);
            // The last one gives the list's memory back: the static is not dropped when the
            // module goes.
            let buffer = list.is_empty().then(|| core::mem::take(&mut *list));
            // Dropped outside the lock: the entry holds a `ViommuCore` reference.
            drop(list);
            drop(gone);
            drop(buffer);
        }
    }
}

impl ViommuHw for SmmuViommu {
    fn alloc_nested(&self, flags: u32, data: &UserData) -> Result<NestedDomain> {
        if flags != 0 {
            return Err(EOPNOTSUPP);
        }
        let arg: HwptArmSmmuv3 =
            data.copy_struct(IOMMU_HWPT_DATA_ARM_SMMUV3, size_of::<HwptArmSmmuv3>())?;
        let v = vste::validate(arg.ste.map(u64::from_le))?;
        self.vsmmu.nested(v.ste, v.enable_ats)
    }

    fn cache_invalidate(&self, array: &mut UserDataArray) -> Result {
        let entries =
            match array.entries::<InvalidateArmSmmuv3>(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) {
                Ok(e) => e,
                Err(e) => {
                    array.set_done(0);
                    return Err(e);
                }
            };
        let mut cmds = KVVec::with_capacity(entries.len(), GFP_KERNEL_ACCOUNT)?;
        let vmid = self.vsmmu.vmid();
        let sids = self.sids.lock();
        let mut res = Ok(());
        for e in entries.iter() {
            let c = cmd::convert(&self.caps, vmid, e.cmd.map(u64::from_le), |vsid| {
                sids.iter()
                    .find(|(v, _)| *v == u64::from(vsid))
                    .map(|(_, sid)| *sid)
            });
            match c {
                Ok(c) => cmds.push(c, GFP_KERNEL_ACCOUNT)?,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        drop(sids);
        // The commands before a refused one are issued: what `entry_num` says was done, was.
        let done = match self.issue_all(&mut cmds) {
            Ok(()) => cmds.len(),
            Err((n, e)) => {
                res = Err(e);
                n
            }
        };
        array.set_done(u32::try_from(done)?);
        res
    }

    fn vdevice_init(&self, dev: &Device, virt_id: u64) -> Result<Option<KBox<dyn VDeviceHw>>> {
        // A vSID names the master's one StreamID: with more, the others would be left stale.
        let info = Info::of(dev).map_err(|_| EINVAL)?;
        if info.num_streams != 1 {
            return Err(EOPNOTSUPP);
        }
        let vdev = KBox::new(
            SmmuVdev {
                sids: self.sids.clone(),
                vsid: virt_id,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // The lock goes with the statement: on failure `vdev` drops (and locks) after it.
        let pushed = self
            .sids
            .lock()
            .push((virt_id, info.sid), GFP_KERNEL_ACCOUNT);
        pushed?;
        Ok(Some(vdev))
    }
}
