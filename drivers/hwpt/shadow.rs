// SPDX-License-Identifier: GPL-2.0

//! Shadow nesting: a nested HWPT on hardware that cannot walk two stages, served by composing
//! the user's stage-1 table with the IOAS (the stage 2) into one single-stage paging domain
//! of the hardware, as a shadow MMU composes CPU page tables.
//!
//! Only with the module parameter `shadow_nesting=1`. Then a `IOMMU_HWPT_ALLOC_NEST_PARENT`
//! that the hardware refuses (`EOPNOTSUPP`) gives a paging HWPT that is a shadow parent only,
//! and a nested HWPT of a format this engine knows ([`vtd_s1`]) on a nest parent whose hardware
//! refuses that format is a shadow: a [`Shadow`] and its paging domain, which devices attach
//! to. Documentation/design.md ("Shadow nesting") has the semantics; in short:
//!
//! - The shadow maps each present stage-1 leaf's IOVAs to the host pages the IOAS maps the
//!   leaf's guest physical addresses to, with the permissions of both stages.
//! - Caching-mode semantics: the table is read at allocation, and again over exactly the range
//!   of each `IOMMU_HWPT_INVALIDATE` entry (the all-ones form: everything).
//! - The shadow is a domain of the IOAS's page table ([`IoptDomain`]), so it sees every IOAS
//!   map and unmap, under the IOAS's lock, before any page is unpinned: an unmap removes the
//!   shadow's entries into the range before it returns; a map makes the leaves into the range
//!   translate without an invalidation.
//!
//! # Records
//!
//! The shadow records the leaves of the last walks ([`walk::Leaf`], by IOVA) and the runs the
//! IOAS mapped (guest physical range, host physical address, permissions). The shadow domain
//! holds exactly one mapping per leaf and run that meet, mapped and unmapped with the same
//! IOVA and size, so that no unmap ever cuts a larger mapping of the hardware.
//!
//! # Locks
//!
//! `inv` (one invalidation at a time) → the IOAS's lock (the walk's reads, one table page at a
//! time, released in between) → `state`. The IOAS calls the shadow's [`IoptDomain`] operations
//! with its lock held, and they take `state`. No path takes the IOAS's lock with `state` held,
//! and the walk reads guest memory without `state`.

pub(crate) mod vtd_s1;
pub(crate) mod walk;

use kernel::{
    device::Device,
    iommu::domain::{
        Domain,
        PagingDomain,
        UserData,
        UserDataArray, //
    },
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode, //
    },
    sync::{
        Arc,
        Mutex, //
    },
};

use self::{
    vtd_s1::VtdS1,
    walk::{
        Leaf,
        Limits, //
    },
};
use super::{
    invalidate::each_entry,
    HwptPaging, //
};
use crate::{
    ioas::{
        io_pagetable::{
            first_range_in,
            IoptDomain,
            PROT_READ,
            PROT_WRITE, //
        },
        Ioas,
    },
    uapi::{
        InvalidateVtdS1,
        IOMMU_HWPT_DATA_VTD_S1,
        IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, //
    },
};

/// Most leaves one shadow records (`ENOSPC` past it): 1 GiB of 4 KiB leaves.
pub(crate) const MAX_LEAVES: usize = 1 << 18;
/// Most table pages one walk reads (`E2BIG` past it).
pub(crate) const MAX_TABLES: u32 = 1 << 16;

/// A recorded leaf (keyed by its first IOVA).
#[derive(Clone, Copy)]
struct LeafRec {
    last: u64,
    gpa: u64,
    write: bool,
}

/// A run the IOAS mapped (keyed by its first guest physical address).
#[derive(Clone, Copy)]
struct Run {
    last: u64,
    phys: u64,
    prot: u32,
}

/// Ranges keyed by their first address, not overlapping.
trait Ranged {
    fn last(&self) -> u64;
}

impl Ranged for LeafRec {
    fn last(&self) -> u64 {
        self.last
    }
}

impl Ranged for Run {
    fn last(&self) -> u64 {
        self.last
    }
}

/// The key of the first range of `tree` that meets `[first, last]`.
fn first_in<T: Ranged>(tree: &RBTree<u64, T>, first: u64, last: u64) -> Option<u64> {
    first_range_in(tree, first, last, T::last).map(|(k, _)| k)
}

/// Calls `f` on each range of `tree` that meets `[first, last]`, in order, until it fails.
fn each_in<T: Ranged>(
    tree: &RBTree<u64, T>,
    first: u64,
    last: u64,
    mut f: impl FnMut(u64, &T) -> Result,
) -> Result {
    let mut cur = first;
    while let Some(k) = first_in(tree, cur, last) {
        let v = tree.get(&k).ok_or(EINVAL)?;
        f(k, v)?;
        if v.last() >= last {
            break;
        }
        cur = v.last() + 1;
    }
    Ok(())
}

/// One mapping of the shadow domain: where leaf and run meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    iova: u64,
    phys: u64,
    size: u64,
    prot: u32,
}

/// The mapping where the leaf at `iova` and the run at `gpa` meet, clipped to the shadow
/// domain's aperture `[ap_first, ap_last]`, if they meet and allow an access.
fn piece(
    iova: u64,
    leaf: &LeafRec,
    gpa: u64,
    run: &Run,
    (ap_first, ap_last): (u64, u64),
) -> Option<Piece> {
    let leaf_gpa_last = leaf.gpa.checked_add(leaf.last - iova)?;
    // The guest physical range both cover, then the IOVA range it is at, in the aperture.
    let a = leaf.gpa.max(gpa);
    let b = leaf_gpa_last.min(run.last);
    if a > b {
        return None;
    }
    let i_first = (iova + (a - leaf.gpa)).max(ap_first);
    let i_last = (iova + (b - leaf.gpa)).min(ap_last);
    if i_first > i_last {
        return None;
    }
    let g_first = leaf.gpa + (i_first - iova);
    let s1 = PROT_READ | if leaf.write { PROT_WRITE } else { 0 };
    let prot = (run.prot & s1) | (run.prot & !(PROT_READ | PROT_WRITE));
    if prot & (PROT_READ | PROT_WRITE) == 0 {
        return None;
    }
    Some(Piece {
        iova: i_first,
        phys: run.phys.checked_add(g_first - gpa)?,
        size: i_last - i_first + 1,
        prot,
    })
}

/// Leaf sizes: 4 KiB, 2 MiB, 1 GiB (the levels a leaf can be at, [`walk::MAX_LEAF_LEVEL`]).
const CLASSES: usize = walk::MAX_LEAF_LEVEL as usize + 1;

/// The size class of a leaf from `iova` to `leaf.last` (a block of its level's size).
fn class_of(iova: u64, leaf: &LeafRec) -> usize {
    let bits = (leaf.last - iova).wrapping_add(1).trailing_zeros();
    // CAST: at most 64.
    (bits.saturating_sub(walk::level_shift(0)) / 9).min(CLASSES as u32 - 1) as usize
}

/// The recorded leaves, by IOVA, and by guest physical address per size class (so that a
/// stage-2 change finds the leaves into its range without visiting the others).
///
/// # Invariants
///
/// `by_gpa[c]` holds `(leaf.gpa, iova)` for exactly the leaves of `by_iova` of class `c`;
/// `n` is their number.
struct Leaves {
    by_iova: RBTree<u64, LeafRec>,
    by_gpa: [RBTree<(u64, u64), ()>; CLASSES],
    n: usize,
}

/// The tree nodes of one leaf, allocated before it is recorded.
struct LeafNodes {
    leaf: RBTreeNode<u64, LeafRec>,
    gpa: RBTreeNode<(u64, u64), ()>,
}

impl LeafNodes {
    fn new(iova: u64, rec: LeafRec) -> Result<Self> {
        Ok(Self {
            leaf: RBTreeNode::new(iova, rec, GFP_KERNEL_ACCOUNT)?,
            gpa: RBTreeNode::new((rec.gpa, iova), (), GFP_KERNEL_ACCOUNT)?,
        })
    }
}

impl Leaves {
    fn new() -> Self {
        Self {
            by_iova: RBTree::new(),
            by_gpa: [RBTree::new(), RBTree::new(), RBTree::new()],
            n: 0,
        }
    }

    /// Records the leaf of `nodes` (at `iova`, `rec`), which overlaps no recorded leaf.
    fn insert(&mut self, iova: u64, rec: &LeafRec, nodes: LeafNodes) {
        self.by_iova.insert(nodes.leaf);
        self.by_gpa[class_of(iova, rec)].insert(nodes.gpa);
        // INVARIANT: both trees got the leaf.
        self.n += 1;
    }

    /// Takes the leaf at `iova` out, with its nodes.
    fn remove(&mut self, iova: u64) -> Option<(LeafRec, LeafNodes)> {
        let rec = *self.by_iova.get(&iova)?;
        let leaf = self.by_iova.remove_node(&iova)?;
        let gpa = self.by_gpa[class_of(iova, &rec)].remove_node(&(rec.gpa, iova));
        // INVARIANT: out of both trees (the index always has it).
        self.n -= 1;
        let gpa = match gpa {
            Some(g) => g,
            None => RBTreeNode::new((rec.gpa, iova), (), GFP_KERNEL_ACCOUNT).ok()?,
        };
        Some((rec, LeafNodes { leaf, gpa }))
    }

    /// Calls `f` on each leaf whose guest physical range meets `[first, last]`.
    fn each_at_gpa(&self, first: u64, last: u64, mut f: impl FnMut(u64, &LeafRec)) {
        for (c, tree) in self.by_gpa.iter().enumerate() {
            // CAST: `c < CLASSES`.
            let size = 1u64 << walk::level_shift(c as u32);
            let mut key = (first.saturating_sub(size - 1), 0u64);
            while let Some(cur) = tree.cursor_lower_bound(&key) {
                let (&(g, iova), ()) = cur.current();
                if g > last {
                    break;
                }
                if let Some(rec) = self.by_iova.get(&iova) {
                    f(iova, rec);
                }
                key = match (iova.checked_add(1), g.checked_add(1)) {
                    (Some(i), _) => (g, i),
                    (None, Some(g1)) => (g1, 0),
                    (None, None) => break,
                };
            }
        }
    }
}

/// What the shadow records.
struct State {
    leaves: Leaves,
    runs: RBTree<u64, Run>,
}

/// The shadow of one nested HWPT: the user's stage-1 table over the IOAS, as one paging domain.
///
/// # Invariants
///
/// `domain` maps exactly the [`piece`]s of every recorded leaf with every recorded run.
#[pin_data]
pub(crate) struct Shadow {
    /// The shadow domain; devices attach to it.
    pub(crate) domain: Arc<PagingDomain>,
    /// Its aperture.
    aperture: (u64, u64),
    /// The page sizes of the IOAS's stage 2 (the parent's), as the IOAS sees this domain.
    s2_pgsize: u64,
    /// The user's table.
    format: VtdS1,
    /// One invalidation (walk and update) at a time.
    #[pin]
    inv: Mutex<()>,
    #[pin]
    state: Mutex<State>,
}

/// How one shadow domain is allocated: the device, the HWPT flags meant for the domain
/// (`IOMMU_HWPT_ALLOC_PASID`), whether it takes faults (a FAULT object), and whether it must
/// enforce cache coherency.
pub(crate) struct ShadowCfg<'a> {
    pub(crate) dev: &'a Device,
    pub(crate) domain_flags: u32,
    pub(crate) iopf: bool,
    pub(crate) enforce_cc: bool,
}

/// A shadow as a nested HWPT holds it: registered as a domain of its parent's IOAS until
/// dropped.
pub(crate) struct ShadowHwpt {
    shadow: Arc<Shadow>,
    parent: Arc<HwptPaging>,
}

impl ShadowHwpt {
    /// Makes the shadow of the table `data` describes over `parent`, filled from the IOAS and
    /// the table. On error nothing is left behind.
    pub(crate) fn new(
        parent: &Arc<HwptPaging>,
        cfg: &ShadowCfg<'_>,
        data: &UserData,
    ) -> Result<Self> {
        if data.data_type() != IOMMU_HWPT_DATA_VTD_S1 {
            return Err(EOPNOTSUPP);
        }
        let domain = PagingDomain::alloc_user(cfg.dev, cfg.domain_flags, None)?;
        let g = domain.geometry();
        let aperture = (g.aperture_start, g.aperture_end);
        let format = VtdS1::from_user(data)?;
        let domain = if cfg.iopf { domain.with_iopf() } else { domain };
        if cfg.enforce_cc && !domain.enforce_cache_coherency() {
            return Err(EINVAL);
        }
        let s2_pgsize = Domain::pgsize_bitmap(&parent.domain) as u64;
        let shadow = Arc::pin_init(
            try_pin_init!(Shadow {
                domain: Arc::new(domain, GFP_KERNEL_ACCOUNT)?,
                aperture,
                s2_pgsize,
                format,
                inv <- new_mutex!(()),
                state <- new_mutex!(State {
                    leaves: Leaves::new(),
                    runs: RBTree::new(),
                }),
            }? Error),
            GFP_KERNEL_ACCOUNT,
        )?;
        let ioas = parent.ioas()?;
        let dom: Arc<dyn IoptDomain> = shadow.clone();
        ioas.iopt.add_domain(shadow.key(), dom)?;
        // From here on dropping `this` unregisters the shadow.
        let this = ShadowHwpt {
            shadow,
            parent: parent.clone(),
        };
        this.shadow.rewalk(&ioas, 0, u64::MAX)?;
        Ok(this)
    }

    /// The shadow domain.
    pub(crate) fn domain(&self) -> &Arc<PagingDomain> {
        &self.shadow.domain
    }

    /// The shadow.
    pub(crate) fn shadow(&self) -> &Arc<Shadow> {
        &self.shadow
    }

    /// Carries out user space's invalidations in `array`: each entry re-walks its range.
    /// Another data type is `EINVAL` with nothing done; each entry is checked and carried out
    /// in turn, so `entry_num` says how many were done when one fails.
    pub(crate) fn invalidate(&self, array: &mut UserDataArray) -> Result {
        let ioas = self.parent.ioas()?;
        each_entry(
            array,
            IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
            |e: &InvalidateVtdS1| match vtd_s1::inv_range(e)? {
                Some((first, last)) => self.shadow.rewalk(&ioas, first, last),
                None => Ok(()),
            },
        )
    }
}

impl Drop for ShadowHwpt {
    fn drop(&mut self) {
        if let Ok(ioas) = self.parent.ioas() {
            ioas.iopt.remove_domain(self.shadow.key());
        }
    }
}

/// The translation of one IOVA as the shadow records it and as its domain has it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Xlate {
    /// The host physical address the records give, and their permissions (`IOMMU_READ`,
    /// `IOMMU_WRITE`); `None` if nothing translates the IOVA.
    pub(crate) recorded: Option<(u64, u32)>,
    /// What the domain translates the IOVA to (0: nothing).
    pub(crate) domain: u64,
}

impl Shadow {
    /// The key of the shadow among the IOAS's domains.
    fn key(&self) -> usize {
        core::ptr::from_ref::<Shadow>(self) as usize
    }

    /// Re-walks the user's table over `[first, last]` and replaces what the shadow records
    /// and maps there. On error the shadow is as before (or, if even restoring failed, without
    /// the leaves that could not be restored: never a mapping it does not record).
    fn rewalk(&self, ioas: &Ioas, first: u64, last: u64) -> Result {
        let _inv = self.inv.lock();
        // Leaves only change under `inv`: what overlaps the range now still does after the
        // walk. The walk covers them whole, so that none is cut.
        let (wf, wl, budget) = {
            let st = self.state.lock();
            let (mut wf, mut wl, mut inside) = (first, last, 0usize);
            each_in(&st.leaves.by_iova, first, last, |k, v| {
                wf = wf.min(k);
                wl = wl.max(v.last);
                inside += 1;
                Ok(())
            })?;
            (wf, wl, MAX_LEAVES.saturating_sub(st.leaves.n - inside))
        };
        let limits = Limits {
            tables: MAX_TABLES,
            leaves: budget,
        };
        let read = |gpa: u64, buf: &mut [u8]| ioas.iopt.access_rw(gpa, buf, false, true);
        let new = walk::walk(&self.format, self.format.root, wf, wl, limits, &read)?;
        self.replace(wf, wl, &new)
    }

    /// Replaces the leaves that meet `[first, last]` or any of `new` with `new`.
    fn replace(&self, first: u64, last: u64, new: &[Leaf]) -> Result {
        let rec_of = |l: &Leaf| LeafRec {
            last: l.last,
            gpa: l.gpa,
            write: l.write,
        };
        let mut nodes = KVec::with_capacity(new.len(), GFP_KERNEL)?;
        for l in new {
            nodes.push(LeafNodes::new(l.iova, rec_of(l))?, GFP_KERNEL)?;
        }
        let rf = new.first().map_or(first, |l| l.iova.min(first));
        let rl = new.last().map_or(last, |l| l.last.max(last));
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let mut old_keys = KVec::new();
        each_in(&st.leaves.by_iova, rf, rl, |k, _| {
            old_keys.push(k, GFP_KERNEL)?;
            Ok(())
        })?;
        let mut old = KVec::with_capacity(old_keys.len(), GFP_KERNEL)?;
        for &k in old_keys.iter() {
            if let Some((rec, n)) = st.leaves.remove(k) {
                self.unmap_leaf(&st.runs, k, &rec);
                // Within the capacity reserved above: no allocation.
                old.push((k, rec, n), GFP_KERNEL)?;
            }
        }
        let mut inserted = 0usize;
        let mut res = Ok(());
        for (l, n) in new.iter().zip(nodes.drain_all()) {
            let rec = rec_of(l);
            if let Err(e) = self.map_leaf(&st.runs, l.iova, &rec) {
                res = Err(e);
                break;
            }
            st.leaves.insert(l.iova, &rec, n);
            inserted += 1;
        }
        if res.is_ok() {
            return Ok(());
        }
        // Undo: the new leaves out, the old ones back (each only if it maps again).
        for l in new.iter().take(inserted) {
            if let Some((rec, n)) = st.leaves.remove(l.iova) {
                self.unmap_leaf(&st.runs, l.iova, &rec);
                drop(n);
            }
        }
        for (k, rec, n) in old.drain_all() {
            if self.map_leaf(&st.runs, k, &rec).is_ok() {
                st.leaves.insert(k, &rec, n);
            }
        }
        res
    }

    /// Maps every piece of the leaf at `iova`; on error none.
    fn map_leaf(&self, runs: &RBTree<u64, Run>, iova: u64, leaf: &LeafRec) -> Result {
        let gl = leaf.gpa.checked_add(leaf.last - iova).ok_or(EINVAL)?;
        let mut mapped = 0usize;
        let res = each_in(runs, leaf.gpa, gl, |g, run| {
            if let Some(p) = piece(iova, leaf, g, run, self.aperture) {
                self.domain.map(p.iova, p.phys, p.size, p.prot)?;
                mapped += 1;
            }
            Ok(())
        });
        if res.is_err() {
            let mut left = mapped;
            let _ = each_in(runs, leaf.gpa, gl, |g, run| {
                if left == 0 {
                    return Err(EINVAL);
                }
                if let Some(p) = piece(iova, leaf, g, run, self.aperture) {
                    self.domain.unmap(p.iova, p.size);
                    left -= 1;
                }
                Ok(())
            });
        }
        res
    }

    /// Unmaps every piece of the leaf at `iova`.
    fn unmap_leaf(&self, runs: &RBTree<u64, Run>, iova: u64, leaf: &LeafRec) {
        let Some(gl) = leaf.gpa.checked_add(leaf.last - iova) else {
            return;
        };
        let _ = each_in(runs, leaf.gpa, gl, |g, run| {
            if let Some(p) = piece(iova, leaf, g, run, self.aperture) {
                self.domain.unmap(p.iova, p.size);
            }
            Ok(())
        });
    }

    /// Maps the pieces of the run at `gpa` with every leaf into it; on error none.
    fn map_run(&self, leaves: &Leaves, gpa: u64, run: &Run) -> Result {
        let mut mapped = 0usize;
        let mut res = Ok(());
        leaves.each_at_gpa(gpa, run.last, |iova, leaf| {
            if res.is_err() {
                return;
            }
            if let Some(p) = piece(iova, leaf, gpa, run, self.aperture) {
                match self.domain.map(p.iova, p.phys, p.size, p.prot) {
                    Ok(()) => mapped += 1,
                    Err(e) => res = Err(e),
                }
            }
        });
        if res.is_err() {
            leaves.each_at_gpa(gpa, run.last, |iova, leaf| {
                if mapped == 0 {
                    return;
                }
                if let Some(p) = piece(iova, leaf, gpa, run, self.aperture) {
                    self.domain.unmap(p.iova, p.size);
                    mapped -= 1;
                }
            });
        }
        res
    }

    /// Unmaps the pieces of the run at `gpa` with every leaf into it.
    fn unmap_run(&self, leaves: &Leaves, gpa: u64, run: &Run) {
        leaves.each_at_gpa(gpa, run.last, |iova, leaf| {
            if let Some(p) = piece(iova, leaf, gpa, run, self.aperture) {
                self.domain.unmap(p.iova, p.size);
            }
        });
    }

    /// The translation of `iova`.
    pub(crate) fn xlate(&self, iova: u64) -> Xlate {
        let st = self.state.lock();
        let mut recorded = None;
        if let Some(k) = first_in(&st.leaves.by_iova, iova, iova) {
            if let Some(leaf) = st.leaves.by_iova.get(&k) {
                let gpa = leaf.gpa + (iova - k);
                if let Some(g) = first_in(&st.runs, gpa, gpa) {
                    if let Some(run) = st.runs.get(&g) {
                        let probe = LeafRec {
                            last: iova,
                            gpa,
                            write: leaf.write,
                        };
                        recorded = piece(iova, &probe, g, run, self.aperture)
                            .map(|p| (p.phys, p.prot & (PROT_READ | PROT_WRITE)));
                    }
                }
            }
        }
        Xlate {
            recorded,
            domain: self.domain.iova_to_phys(iova),
        }
    }
}

/// The IOAS's view of the shadow: its stage-2 changes. Called with the IOAS's lock held.
impl IoptDomain for Shadow {
    fn map(&self, gpa: u64, phys: u64, size: u64, prot: u32) -> Result {
        if size == 0 {
            return Ok(());
        }
        let last = gpa.checked_add(size - 1).ok_or(EOVERFLOW)?;
        let run = Run { last, phys, prot };
        let node = RBTreeNode::new(gpa, run, GFP_KERNEL_ACCOUNT)?;
        let mut st = self.state.lock();
        if first_in(&st.runs, gpa, last).is_some() {
            return Err(EEXIST);
        }
        self.map_run(&st.leaves, gpa, &run)?;
        st.runs.insert(node);
        Ok(())
    }

    fn unmap(&self, gpa: u64, size: u64) -> u64 {
        if size == 0 {
            return 0;
        }
        let last = gpa.saturating_add(size - 1);
        let mut guard = self.state.lock();
        let st = &mut *guard;
        while let Some(k) = first_in(&st.runs, gpa, last) {
            let Some(run) = st.runs.remove(&k) else {
                break;
            };
            self.unmap_run(&st.leaves, k, &run);
            // A run only partly inside (an area cut by the VFIO compatibility unmap) keeps its
            // parts outside, mapped again if possible; what cannot be is left unmapped.
            let mut keep = |g: u64, r: Run| {
                if let Ok(node) = RBTreeNode::new(g, r, GFP_KERNEL_ACCOUNT) {
                    if self.map_run(&st.leaves, g, &r).is_ok() {
                        st.runs.insert(node);
                    }
                }
            };
            if k < gpa {
                keep(
                    k,
                    Run {
                        last: gpa - 1,
                        ..run
                    },
                );
            }
            if run.last > last {
                keep(
                    last + 1,
                    Run {
                        last: run.last,
                        phys: run.phys + (last + 1 - k),
                        prot: run.prot,
                    },
                );
            }
        }
        size
    }

    fn pgsize_bitmap(&self) -> u64 {
        self.s2_pgsize
    }
}
