// SPDX-License-Identifier: GPL-2.0

//! The VT-d first-stage format for the shadow engine: `IOMMU_HWPT_DATA_VTD_S1` descriptions,
//! their tables (x86-64 paging: 4 or 5 levels, 4 KiB, 2 MiB and 1 GiB leaves) and their user
//! invalidations (`IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`).
//!
//! The rules of an entry (VT-d specification, "First-Stage Paging Entries"): bit 0 present,
//! bit 1 read/write, bit 7 a leaf at the PDPE (1 GiB) and PDE (2 MiB) levels and reserved above;
//! the address in bits 51:12 (of a large leaf, from its alignment up; the low address bits of a
//! large leaf other than PAT, bit 12, are reserved). A reserved bit set makes the entry translate
//! nothing, as the hardware faults on it. Writes need read/write at every level. The
//! user/supervisor bit is not checked, and accessed/dirty bits are never set in the user's
//! table: a description asking for the extended access flag (`IOMMU_VTD_S1_EAFE`) is refused.

use kernel::{
    iommu::domain::UserData,
    prelude::*, //
};

use super::walk::{
    Format,
    Pte, //
};
use crate::uapi::{
    HwptVtdS1,
    InvalidateVtdS1,
    IOMMU_HWPT_DATA_VTD_S1, //
};

/// `IOMMU_VTD_S1_EAFE`.
const S1_EAFE: u64 = 1 << 1;
/// `IOMMU_VTD_INV_FLAGS_LEAF`.
const INV_FLAGS_LEAF: u32 = 1 << 0;

/// Present.
const P: u64 = 1 << 0;
/// Read/write.
const RW: u64 = 1 << 1;
/// Page size: a leaf above level 0.
const PS: u64 = 1 << 7;
/// The address bits of an entry, 51:12.
const ADDR: u64 = ((1 << 52) - 1) & !0xfff;
/// 4 and 5 levels.
const ADDR_WIDTH_4LEVEL: u32 = 48;
const ADDR_WIDTH_5LEVEL: u32 = 57;

/// A VT-d first-stage table: its root and depth.
pub(crate) struct VtdS1 {
    /// The root table's guest physical address.
    pub(crate) root: u64,
    levels: u32,
}

impl VtdS1 {
    /// The table `data` describes (`IOMMU_HWPT_DATA_VTD_S1`): `EINVAL` for an address width
    /// other than 48 or 57, a table pointer that is not
    /// 4 KiB aligned, or the extended access flag; other flag bits are ignored, as the driver
    /// ignores them.
    ///
    /// The engine walks 5 levels whatever the hardware can: IOVAs beyond the shadow domain's
    /// aperture translate nothing.
    pub(crate) fn from_user(data: &UserData) -> Result<Self> {
        let raw: HwptVtdS1 =
            data.copy_struct(IOMMU_HWPT_DATA_VTD_S1, core::mem::size_of::<HwptVtdS1>())?;
        let levels = match raw.addr_width {
            ADDR_WIDTH_4LEVEL => 4,
            ADDR_WIDTH_5LEVEL => 5,
            _ => return Err(EINVAL),
        };
        if raw.flags & S1_EAFE != 0 || raw.pgtbl_addr & 0xfff != 0 {
            return Err(EINVAL);
        }
        // `IOMMU_VTD_S1_SRE` and `IOMMU_VTD_S1_WPE` change nothing here: the user/supervisor
        // bit is not checked and writes always need the read/write bit.
        Ok(Self {
            root: raw.pgtbl_addr,
            levels,
        })
    }
}

impl Format for VtdS1 {
    fn levels(&self) -> u32 {
        self.levels
    }

    fn decode(&self, level: u32, entry: u64) -> Pte {
        if entry & P == 0 {
            return Pte::None;
        }
        let write = entry & RW != 0;
        let leaf_reserved = match level {
            0 => 0,
            1 | 2 if entry & PS != 0 => {
                // Bits from 13 up to the block's alignment (bit 12 is PAT).
                let align = super::walk::level_shift(level);
                ((1u64 << align) - 1) & !0x1fff
            }
            1 | 2 => {
                return Pte::Table {
                    gpa: entry & ADDR,
                    write,
                }
            }
            _ if entry & PS != 0 => return Pte::None,
            _ => {
                return Pte::Table {
                    gpa: entry & ADDR,
                    write,
                }
            }
        };
        if entry & leaf_reserved != 0 {
            return Pte::None;
        }
        let align = (1u64 << super::walk::level_shift(level)) - 1;
        Pte::Leaf {
            gpa: entry & ADDR & !align,
            write,
        }
    }
}

/// One checked user invalidation: `[first, last]`, or `None` for nothing (zero pages). With
/// upstream's answers: `EOPNOTSUPP` for flags other than the leaf hint or a nonzero reserved
/// word; `EINVAL` for an address that is not 4 KiB aligned, or the all-ones page count (every
/// address) with an address. A range past the top of the address space ends there.
pub(crate) fn inv_range(e: &InvalidateVtdS1) -> Result<Option<(u64, u64)>> {
    if e.flags & !INV_FLAGS_LEAF != 0 || e.reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    if e.addr & 0xfff != 0 || (e.npages == u64::MAX && e.addr != 0) {
        return Err(EINVAL);
    }
    if e.npages == 0 {
        return Ok(None);
    }
    let last = e
        .npages
        .checked_mul(4096)
        .and_then(|size| e.addr.checked_add(size - 1))
        .unwrap_or(u64::MAX);
    Ok(Some((e.addr, last)))
}
