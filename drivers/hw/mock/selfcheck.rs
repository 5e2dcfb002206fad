// SPDX-License-Identifier: GPL-2.0

//! A self-test of the mock IOMMU through the IOMMU core.
//!
//! Run at module init with `mock_selfcheck=1`. It uses the mock only
//! through the generic IOMMU user API ([`kernel::iommu::domain`]), the way
//! iommufd will: a mock device probed by the core, paging domains allocated
//! by the core, group and PASID attachments, map, unmap, translation and
//! dirty tracking. Each check is logged as `iommufd_rs: mock_selfcheck: ok
//! N - what` (or `not ok`), and a last line says `PASS` or `FAIL`.

use super::{
    MockDevice,
    MockIommu,
    HWPT_ALLOC_DIRTY_TRACKING,
    HWPT_ALLOC_NEST_PARENT,
    HWPT_ALLOC_PASID,
    IOMMU_HWPT_DATA_SELFTEST,
    IOMMU_HW_INFO_SELFTEST_REGVAL,
    IOMMU_HW_INFO_TYPE_SELFTEST,
    IOMMU_TEST_DEV_CACHE_DEFAULT,
    IOMMU_TEST_PASID_RESERVED,
    MOCK_APERTURE_LAST,
    MOCK_APERTURE_START,
    MOCK_FLAGS_DEVICE_NO_DIRTY,
    MOCK_FLAGS_DEVICE_PASID,
    MOCK_PAGE_SIZE,
    MOCK_PASID_WIDTH, //
};
use kernel::{
    iommu::domain::{
        device_capable,
        device_hw_info,
        device_max_pasids,
        Capability,
        DmaOwnerClaim,
        Group,
        GroupAttachment,
        PagingDomain,
        PasidAttachment,
        ResvRegions,
        UserData,
        DIRTY_NO_CLEAR,
        PROT_READ,
        PROT_WRITE, //
    },
    prelude::*,
    uaccess::UserPtr, //
};

/// Counts and logs the checks.
struct Checker {
    n: u32,
    failed: u32,
}

impl Checker {
    fn check(&mut self, ok: bool, what: &str) {
        self.n += 1;
        if ok {
            pr_info!("mock_selfcheck: ok {} - {}\n", self.n, what);
        } else {
            self.failed += 1;
            pr_err!("mock_selfcheck: not ok {} - {}\n", self.n, what);
        }
    }

    /// Checks that `r` is `Ok` and returns its value.
    fn ok<T>(&mut self, r: Result<T>, what: &str) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(true, what);
                Some(v)
            }
            Err(e) => {
                self.n += 1;
                self.failed += 1;
                pr_err!(
                    "mock_selfcheck: not ok {} - {} (error {})\n",
                    self.n,
                    what,
                    e.to_errno()
                );
                None
            }
        }
    }

    /// Checks that `r` failed with `expected`.
    fn err<T>(&mut self, r: Result<T>, expected: Error, what: &str) {
        let got = match r {
            Ok(_) => 0,
            Err(e) => e.to_errno(),
        };
        if got != expected.to_errno() {
            pr_err!(
                "mock_selfcheck: got {} instead of {}\n",
                got,
                expected.to_errno()
            );
        }
        self.check(got == expected.to_errno(), what);
    }
}

/// Physical addresses the checks map. The mock never touches the memory,
/// so any page-aligned address will do.
const PA_A: u64 = 0x4000_0000;
const PA_B: u64 = 0x5000_0800;

/// Runs the self-test and logs the result; returns whether it passed.
pub(crate) fn selfcheck(iommu: &MockIommu) -> bool {
    let mut c = Checker { n: 0, failed: 0 };
    run(iommu, &mut c);
    if c.failed == 0 {
        pr_info!("mock_selfcheck: PASS ({} checks)\n", c.n);
    } else {
        pr_err!(
            "mock_selfcheck: FAIL ({} of {} checks failed)\n",
            c.failed,
            c.n
        );
    }
    c.failed == 0
}

fn run(iommu: &MockIommu, c: &mut Checker) {
    c.err(
        MockDevice::create(iommu, 1 << 1),
        EINVAL,
        "unknown device flags are refused",
    );
    let Some(dev) = c.ok(
        MockDevice::create(iommu, MOCK_FLAGS_DEVICE_PASID),
        "create a PASID mock device",
    ) else {
        return;
    };
    c.check(dev.pasid_capable(), "the device is PASID capable");
    c.ok(
        dev.check_cache(0, IOMMU_TEST_DEV_CACHE_DEFAULT),
        "cache entry 0 holds the default",
    );
    c.err(
        dev.check_cache(4, IOMMU_TEST_DEV_CACHE_DEFAULT),
        EINVAL,
        "cache entry 4 does not exist",
    );
    c.ok(dev.invalidate_cache(Some(1)), "invalidate cache entry 1");
    c.ok(dev.check_cache(1, 0), "cache entry 1 is 0");
    c.ok(
        dev.check_cache(2, IOMMU_TEST_DEV_CACHE_DEFAULT),
        "cache entry 2 is untouched",
    );
    c.ok(dev.invalidate_cache(None), "invalidate all cache entries");
    c.ok(dev.check_cache(3, 0), "cache entry 3 is 0");
    c.check(
        MockDevice::from_device(dev.device()).map(|d| d.flags()) == Some(MOCK_FLAGS_DEVICE_PASID),
        "the device's data is found from its Device",
    );
    let Some(group) = c.ok(
        Group::get(dev.device()).ok_or(ENODEV),
        "the core probed the device into a group",
    ) else {
        return;
    };
    c.check(
        device_capable(dev.device(), Capability::CacheCoherency),
        "capable: cache coherency",
    );
    c.check(
        device_max_pasids(dev.device()) == 1 << MOCK_PASID_WIDTH,
        "the PASID device has 2^20 PASIDs",
    );
    c.check(
        device_capable(dev.device(), Capability::DirtyTracking),
        "capable: dirty tracking",
    );
    match c.ok(device_hw_info(dev.device(), 0), "hw_info") {
        Some(info) => {
            let ok = info.info_type == IOMMU_HW_INFO_TYPE_SELFTEST
                && info.data.len() == 8
                && info.data[4..] == IOMMU_HW_INFO_SELFTEST_REGVAL.to_ne_bytes();
            c.check(ok, "hw_info is the selftest type with test_reg");
        }
        None => return,
    }
    c.err(
        device_hw_info(dev.device(), 1),
        EOPNOTSUPP,
        "hw_info of another type is refused",
    );
    if let Some(regions) = c.ok(ResvRegions::get(dev.device()), "reserved regions") {
        c.check(
            regions.iter().count() == 0,
            "the mock has no reserved regions",
        );
    }
    let Some(claim) = c.ok(
        DmaOwnerClaim::claim(dev.device().into(), 0x1000),
        "claim DMA ownership",
    ) else {
        return;
    };

    let Some(domain) = c.ok(
        PagingDomain::alloc(dev.device(), HWPT_ALLOC_DIRTY_TRACKING),
        "allocate a dirty-tracking paging domain",
    ) else {
        return;
    };
    c.check(iommu.is_mock_domain(&domain), "the domain is a mock domain");
    c.check(
        domain.min_page_size() == MOCK_PAGE_SIZE,
        "page size is MOCK_PAGE_SIZE",
    );
    c.check(
        matches!(iommu.page_size(&domain), Ok(MOCK_PAGE_SIZE)),
        "the mock reports its page size",
    );
    let g = domain.geometry();
    c.check(
        g.aperture_start == MOCK_APERTURE_START
            && g.aperture_end == MOCK_APERTURE_LAST
            && g.force_aperture,
        "aperture is the mock aperture",
    );
    c.check(domain.has_dirty_ops(), "the domain has dirty ops");
    c.check(
        !domain.enforce_cache_coherency(),
        "the mock cannot enforce cache coherency",
    );
    let Some(domain2) = c.ok(
        PagingDomain::alloc(dev.device(), 0),
        "allocate a plain paging domain",
    ) else {
        return;
    };
    c.check(
        !domain2.has_dirty_ops(),
        "the plain domain has no dirty ops",
    );

    // Driver data for the allocation, as iommufd passes it (the checks
    // below fail before the mock reads user memory).
    let no_mem = UserPtr::from_addr(0);
    c.err(
        PagingDomain::alloc_user(dev.device(), 0, Some(&UserData::new(0x1234, no_mem, 8))),
        EOPNOTSUPP,
        "alloc with an unknown data type is refused",
    );
    c.err(
        PagingDomain::alloc_user(dev.device(), 0, Some(&UserData::new(0, no_mem, 8))),
        EINVAL,
        "alloc with data of type NONE is EINVAL",
    );
    c.err(
        PagingDomain::alloc_user(
            dev.device(),
            0,
            Some(&UserData::new(IOMMU_HWPT_DATA_SELFTEST, no_mem, 2)),
        ),
        EINVAL,
        "alloc with selftest data shorter than iotlb is EINVAL",
    );
    c.err(
        PagingDomain::alloc_user(dev.device(), 1 << 2, None),
        EOPNOTSUPP,
        "alloc with an unknown flag is refused",
    );
    c.ok(
        PagingDomain::alloc_user(
            dev.device(),
            HWPT_ALLOC_NEST_PARENT | HWPT_ALLOC_PASID,
            None,
        )
        .map(drop),
        "NEST_PARENT and PASID allocation flags are accepted",
    );
    match c.ok(
        PagingDomain::alloc_user(dev.device(), 0, None),
        "alloc through the driver op",
    ) {
        Some(d) => c.check(iommu.is_mock_domain(&d), "that domain is a mock domain too"),
        None => return,
    }

    let Some(attach) = c.ok(
        GroupAttachment::attach(group.clone(), &domain, None),
        "attach the group",
    ) else {
        return;
    };

    let iova = MOCK_APERTURE_START as usize;
    let rw = PROT_READ | PROT_WRITE;
    c.ok(
        domain.map(iova, PA_A, 16 * 1024, rw, GFP_KERNEL),
        "map 16 KiB",
    );
    let iova_b = iova + 64 * 1024 + MOCK_PAGE_SIZE;
    c.ok(
        domain.map(iova_b, PA_B, 3 * MOCK_PAGE_SIZE, rw, GFP_KERNEL),
        "map 3 pages of 2 KiB at a 2 KiB offset",
    );
    c.err(
        domain.map(iova + 4096, PA_A, 4096, rw, GFP_KERNEL),
        EADDRINUSE,
        "mapping over a mapping fails",
    );
    c.err(
        domain.map(iova + 1, PA_A, 4096, rw, GFP_KERNEL),
        EINVAL,
        "an unaligned map fails",
    );
    c.check(
        domain.iova_to_phys((iova + 4096 + 123) as u64) == PA_A + 4096 + 123,
        "iova_to_phys in the 16 KiB",
    );
    c.check(
        domain.iova_to_phys((iova_b + MOCK_PAGE_SIZE + 5) as u64)
            == PA_B + MOCK_PAGE_SIZE as u64 + 5,
        "iova_to_phys in the 2 KiB pages",
    );
    c.check(
        domain.iova_to_phys((iova_b - 1) as u64) == 0,
        "iova_to_phys of a hole is 0",
    );

    // Dirty tracking.
    let bits = |b: &mut [u8]| {
        if let Some(first) = b.first_mut() {
            *first = 0b1000_0001;
        }
        Ok(())
    };
    c.err(
        iommu.set_dirty(&domain, iova, 16 * 1024, MOCK_PAGE_SIZE, bits),
        EINVAL,
        "set_dirty before tracking is on fails",
    );
    c.ok(domain.set_dirty_tracking(true), "start dirty tracking");
    c.err(
        domain2.set_dirty_tracking(true),
        EOPNOTSUPP,
        "no dirty tracking without dirty ops",
    );
    c.err(
        iommu.set_dirty(&domain, iova + 1, 16 * 1024, MOCK_PAGE_SIZE, bits),
        EINVAL,
        "set_dirty at an unaligned IOVA fails",
    );
    c.err(
        iommu.set_dirty(&domain2, iova, 16 * 1024, MOCK_PAGE_SIZE, bits),
        EINVAL,
        "set_dirty on a domain without dirty ops fails",
    );
    match c.ok(
        iommu.set_dirty(&domain, iova, 16 * 1024, MOCK_PAGE_SIZE, bits),
        "set_dirty",
    ) {
        Some(n) => c.check(n == 2, "set_dirty counts the set bits"),
        None => return,
    }
    let mock = iommu.mock_domain(&domain);
    c.check(
        mock.and_then(|m| m.is_dirty(iova + 12 * 1024)) == Some(true),
        "the page table entry of the 16 KiB is dirty",
    );
    let last = iova + 16 * 1024 - 1;
    let r = domain.read_and_clear_dirty(iova, 128 * 1024, DIRTY_NO_CLEAR, None);
    c.check(
        matches!(r, Ok(Some((s, l))) if s == iova && l == last),
        "read dirty (no clear): the whole 16 KiB entry",
    );
    let r = domain.read_and_clear_dirty(iova, 128 * 1024, 0, None);
    c.check(
        matches!(r, Ok(Some((s, l))) if s == iova && l == last),
        "read and clear dirty: still dirty",
    );
    let r = domain.read_and_clear_dirty(iova, 128 * 1024, 0, None);
    c.check(matches!(r, Ok(None)), "read dirty again: clean");
    let one = |b: &mut [u8]| {
        if let Some(first) = b.first_mut() {
            *first = 0b10;
        }
        Ok(())
    };
    match c.ok(
        iommu.set_dirty(&domain, iova_b, 3 * MOCK_PAGE_SIZE, MOCK_PAGE_SIZE, one),
        "set one 2 KiB page dirty",
    ) {
        Some(n) => c.check(n == 1, "one bit counted"),
        None => return,
    }
    let r = domain.read_and_clear_dirty(iova, 128 * 1024, 0, None);
    // The core mapped the 6 KiB as a 2 KiB page (at a 2 KiB-aligned IOVA)
    // and a 4 KiB page; the dirty 2 KiB is in the 4 KiB entry, which is
    // reported whole, as the C mock's page table does.
    let (s2, l2) = (iova_b + MOCK_PAGE_SIZE, iova_b + 3 * MOCK_PAGE_SIZE - 1);
    c.check(
        matches!(r, Ok(Some((s, l))) if s == s2 && l == l2),
        "the 4 KiB entry holding that 2 KiB page is dirty, the 2 KiB entry is not",
    );
    c.ok(domain.set_dirty_tracking(false), "stop dirty tracking");

    // A device without dirty tracking.
    if let Some(nd) = c.ok(
        MockDevice::create(iommu, MOCK_FLAGS_DEVICE_NO_DIRTY),
        "create a NO_DIRTY mock device",
    ) {
        c.check(nd.id() != dev.id(), "the devices have different ids");
        c.check(
            device_max_pasids(nd.device()) <= 1,
            "the other device has no PASIDs",
        );
        c.check(
            !device_capable(nd.device(), Capability::DirtyTracking),
            "NO_DIRTY: not dirty capable",
        );
        c.err(
            PagingDomain::alloc(nd.device(), HWPT_ALLOC_DIRTY_TRACKING),
            EOPNOTSUPP,
            "NO_DIRTY: a dirty-tracking domain is refused",
        );
        if let Some(ng) = Group::get(nd.device()) {
            c.err(
                GroupAttachment::attach(ng.clone(), &domain, None),
                EINVAL,
                "NO_DIRTY: attaching to a dirty-tracking domain fails",
            );
            c.ok(
                GroupAttachment::attach(ng, &domain2, None).map(drop),
                "NO_DIRTY: attach to a plain domain",
            );
        }
        c.err(
            MockDevice::create(iommu, 1 << 3),
            EINVAL,
            "unknown flag 1 << 3",
        );
    }

    // PASIDs.
    c.ok(
        PasidAttachment::attach(dev.device().into(), 7, &domain2, None).map(drop),
        "attach and detach PASID 7",
    );
    let reserved = IOMMU_TEST_PASID_RESERVED;
    if let Some(pa) = c.ok(
        PasidAttachment::attach(dev.device().into(), reserved, &domain, None),
        "attach the reserved PASID",
    ) {
        match pa.replace(&domain2, None) {
            Ok(_) => c.check(false, "replacing the reserved PASID fails once"),
            Err((e, pa)) => {
                c.check(
                    e == ENOMEM,
                    "replacing the reserved PASID fails once (ENOMEM)",
                );
                c.check(
                    pa.pasid() == reserved,
                    "the failed replace keeps the old attachment",
                );
            }
        }
    }

    // Replace the group's domain, then unmap.
    let attach = match attach.replace(&domain2, None) {
        Ok(a) => {
            c.check(true, "replace the group's domain");
            a
        }
        Err((e, _a)) => {
            c.check(false, "replace the group's domain");
            pr_err!("mock_selfcheck: replace failed with {}\n", e.to_errno());
            return;
        }
    };
    c.check(domain.unmap(iova, 16 * 1024) == 16 * 1024, "unmap 16 KiB");
    c.check(
        domain.unmap(iova_b, 3 * MOCK_PAGE_SIZE) == 3 * MOCK_PAGE_SIZE,
        "unmap the 2 KiB pages",
    );
    c.check(
        domain.iova_to_phys(iova as u64) == 0,
        "nothing is mapped after unmap",
    );
    c.check(
        domain.unmap(iova, 4096) == 0,
        "unmapping a hole unmaps nothing",
    );
    drop(attach);
    drop(domain2);
    drop(domain);
    drop(claim);
    drop(group);
    drop(dev);
    c.check(true, "detach, free the domains and remove the device");
}
