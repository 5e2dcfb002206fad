// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow nesting on QEMU's emulated VT-d with first-stage tables only
 * (x-flts=on: no second stage, no ECAP.NEST), with QEMU's edu device behind
 * vfio-pci: this program plays the guest. Its guest memory is mapped in an
 * IOAS (the stage 2: GPA -> host pages) through a NEST_PARENT HWPT, which
 * the hardware cannot be; its stage 1 is a 4-level x86-64 table in that
 * memory, named by GPA in an IOMMU_HWPT_DATA_VTD_S1 nested HWPT, and the
 * device is attached to that. With iommufd_rs loaded with shadow_nesting=1
 * (SHADOW_NESTING=1 in the environment), the core serves the nested HWPT
 * with a shadow paging domain of the hardware; every check looks at where
 * the device's bytes really landed:
 *  - refusal: without the opt-in the NEST_PARENT allocation is EOPNOTSUPP
 *    (as with the C iommufd); GET_HW_INFO reports no nesting either way;
 *  - translate: S1 IOVAs (what sits at GPA == IOVA is a decoy that must stay
 *    untouched) lead to the pages the S1 table names, read-only leaves
 *    refuse the device's writes;
 *  - remap_and_invalidate: a changed leaf takes effect after
 *    IOMMU_HWPT_INVALIDATE covering it (caching mode), not before;
 *  - unmap_s2_under_s1: an IOAS unmap under a live S1 leaf stops the DMA at
 *    once (a DMAR fault is logged, the old page is not written), an IOAS map
 *    makes the leaf translate again without an invalidation;
 *  - large_leaves: 2 MiB and 1 GiB stage-1 leaves;
 *  - five_level: a 5-level table (the shadow walks 5 levels on a 48-bit
 *    unit; IOVAs beyond its aperture would translate nothing).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/iommufd.h>

#include "kselftest_harness.h"
#include "vfio_edu.h"

#define NOT_VTD		"not an x86_64 VT-d system"
#define OPTIN_OFF	"iommufd_rs without shadow_nesting=1 (refusal checks the refusal)"

#define PG		4096ULL
#define MB		(1024 * 1024ULL)
#define GB		(1024 * MB)
/*
 * Guest memory (edu's DMA addresses are masked to 28 bits, so the S1 IOVAs
 * are below 256 MiB; the GPAs need not be). Region: the tables, then data
 * pages, at GPA_BASE. The page at GPA_B is mapped on its own, so that it
 * can leave the IOAS alone. The decoy sits at GPA == S1 IOVA.
 */
#define GPA_BASE	0x04000000ULL
#define REGION_PAGES	16
#define PG_ROOT		0
#define PG_PDPT		1
#define PG_PD		2
#define PG_PT		3
#define PG_PML5		4
#define PG_A		8
#define PG_C		10
#define PG_D		12
#define GPA(pg)		(GPA_BASE + (pg) * PG)
#define GPA_B		0x05000000ULL
#define DECOY_GPA	0x00a00000ULL
#define DECOY_PAGES	16
#define S1_IOVA(n)	(DECOY_GPA + (n) * PG)
#define S1_SRC		S1_IOVA(1)
#define S1_DST		S1_IOVA(3)
#define S1_RO		S1_IOVA(5)
/* 2 MiB: IOVA S1_2M -> GPA GPA_2M, a 2 MiB stage-2 mapping of its own. */
#define S1_2M		0x01000000ULL
#define GPA_2M		0x06000000ULL
/* 1 GiB: PDPT entry 0 -> GPA 1 GiB; IOVA x lands at GPA 1 GiB + x. */
#define GPA_1G		GB

#define PTE_P		(1ULL << 0)
#define PTE_RW		(1ULL << 1)
#define PTE_US		(1ULL << 2)
#define PTE_PS		(1ULL << 7)
#define IDX(iova, l)	(((iova) >> (12 + 9 * (l))) & 511)
#define ECAP_NEST	(1ULL << 26)
#define MARK		0x5a
#define MARK2		0xa5

#define STEP(fmt, ...)	TH_LOG("step: " fmt, ##__VA_ARGS__)

FIXTURE(vtd)
{
	char bdf[32], cdev[64];
	int iommufd, devfd;
	uint32_t devid, ioas, parent, nested;
	struct edu_dev dev;
	uint8_t *region, *decoy, *pb, *p2m, *p1g;
	bool optin, refused;
	char why[160];
};

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint64_t *table(FIXTURE_DATA(vtd) *self, int pg)
{
	return (uint64_t *)(self->region + pg * PG);
}

static int nested_alloc(FIXTURE_DATA(vtd) *self, uint32_t aw, uint64_t root,
			uint32_t *id)
{
	struct iommu_hwpt_vtd_s1 s1 = {
		.pgtbl_addr = root,
		.addr_width = aw,
	};
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = self->devid,
		.pt_id = self->parent,
		.data_type = IOMMU_HWPT_DATA_VTD_S1,
		.data_len = sizeof(s1),
		.data_uptr = (uintptr_t)&s1,
	};
	int rc = ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_hwpt_id;
	return rc;
}

static int invalidate(FIXTURE_DATA(vtd) *self, uint64_t addr, uint64_t npages)
{
	struct iommu_hwpt_vtd_s1_invalidate e = {
		.addr = addr,
		.npages = npages,
	};
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = self->nested,
		.data_uptr = (uintptr_t)&e,
		.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
		.entry_len = sizeof(e),
		.entry_num = 1,
	};

	return ioctl(self->iommufd, IOMMU_HWPT_INVALIDATE, &cmd);
}

static int map_ro(int fd, uint32_t ioas, uint64_t iova, void *buf, size_t len)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)buf,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &cmd);
}

/* The 4-level path to iova's 4 KiB leaf, through the region's tables. */
static void s1_map(FIXTURE_DATA(vtd) *self, uint64_t iova, uint64_t gpa,
		   bool w)
{
	table(self, PG_ROOT)[IDX(iova, 3)] = GPA(PG_PDPT) | PTE_P | PTE_RW | PTE_US;
	table(self, PG_PDPT)[IDX(iova, 2)] = GPA(PG_PD) | PTE_P | PTE_RW | PTE_US;
	table(self, PG_PD)[IDX(iova, 1)] = GPA(PG_PT) | PTE_P | PTE_RW | PTE_US;
	table(self, PG_PT)[IDX(iova, 0)] = gpa | PTE_P | PTE_US | (w ? PTE_RW : 0);
}

static uint8_t *page_at(FIXTURE_DATA(vtd) *self, int pg)
{
	return self->region + pg * PG;
}

static void mem_reset(FIXTURE_DATA(vtd) *self)
{
	memset(self->region, 0, 8 * PG);
	memset(self->region + 8 * PG, MARK, (REGION_PAGES - 8) * PG);
	memset(self->decoy, MARK2, DECOY_PAGES * PG);
	memset(self->pb, MARK, PG);
}

/*
 * src (RAM at a device IOVA) -> the device -> dst, and the bytes where the
 * stage-1 table says dst leads.
 */
static void copy_check(struct __test_metadata *_metadata,
		       FIXTURE_DATA(vtd) *self, uint64_t src, uint8_t *src_mem,
		       uint64_t dst, uint8_t *dst_mem)
{
	uint8_t pat[XFER];

	fill_pattern(pat, XFER);
	memcpy(src_mem, pat, XFER);
	ASSERT_EQ(0, dma_in(&self->dev, src));
	ASSERT_EQ(0, dma_out(&self->dev, dst, 0));
	EXPECT_EQ(-1, first_diff(pat, dst_mem, XFER))
		TH_LOG("IOVA %#llx -> IOVA %#llx: the bytes did not land",
		       (unsigned long long)src, (unsigned long long)dst);
	EXPECT_EQ(-1, first_not(self->decoy, MARK2, DECOY_PAGES * PG))
		TH_LOG("the decoy at GPA == IOVA was written: stage 1 skipped");
	STEP("edu DMA: IOVA %#llx -> device -> IOVA %#llx, landed where stage 1 and stage 2 say",
	     (unsigned long long)src, (unsigned long long)dst);
}

FIXTURE_SETUP(vtd)
{
	struct iommu_hw_info_vtd vtd = {};
	struct iommu_hw_info info;
	int rc;

	self->iommufd = -1;
	self->devfd = -1;
	self->dev.fd = -1;
	self->dev.bar = NULL;
	self->region = self->decoy = self->pb = self->p2m = self->p1g = NULL;
	self->optin = getenv("SHADOW_NESTING") &&
		      !strcmp(getenv("SHADOW_NESTING"), "1");
#ifndef __x86_64__
	SKIP(return, NOT_VTD);
#endif
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu PCI device (%04x:%04x)", EDU_VENDOR,
		     EDU_DEVICE);
	ASSERT_EQ(0, bind_vfio_pci(self->bdf));
	ASSERT_EQ(0, find_cdev(self->bdf, self->cdev, sizeof(self->cdev)));
	self->region = map_anon(REGION_PAGES * PG);
	self->decoy = map_anon(DECOY_PAGES * PG);
	self->pb = map_anon(PG);
	self->p2m = map_anon(2 * MB);
	self->p1g = map_anon(DECOY_PAGES * PG);
	ASSERT_NE(NULL, self->region);
	ASSERT_NE(NULL, self->decoy);
	ASSERT_NE(NULL, self->pb);
	ASSERT_NE(NULL, self->p2m);
	ASSERT_NE(NULL, self->p1g);
	mem_reset(self);

	self->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->iommufd);
	self->devfd = open(self->cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->devfd);
	ASSERT_EQ(0, dev_bind(self->devfd, self->iommufd, &self->devid));
	if (get_hw_info(self->iommufd, self->devid, &vtd, sizeof(vtd), &info) ||
	    info.out_data_type != IOMMU_HW_INFO_TYPE_INTEL_VTD)
		SKIP(return, NOT_VTD);
	if (vtd.ecap_reg & ECAP_NEST)
		SKIP(return, "the VT-d unit nests (ECAP.NEST): no shadow needed (QEMU: x-flts=on has none)");

	ASSERT_EQ(0, ioas_alloc(self->iommufd, &self->ioas));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, GPA_BASE,
			       self->region, REGION_PAGES * PG));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, DECOY_GPA,
			       self->decoy, DECOY_PAGES * PG));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, GPA_B, self->pb, PG));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, GPA_2M, self->p2m,
			       2 * MB));
	ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, GPA_1G + DECOY_GPA,
			       self->p1g, DECOY_PAGES * PG));

	rc = hwpt_alloc(self->iommufd, self->devid, self->ioas,
			IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent);
	if (self->optin) {
		ASSERT_EQ(0, rc) TH_LOG("NEST_PARENT with shadow_nesting=1: %s",
					strerror(errno));
	} else {
		ASSERT_EQ(-1, rc) TH_LOG("NEST_PARENT succeeded on a unit without nesting");
		ASSERT_EQ(EOPNOTSUPP, errno);
		self->refused = true;
		snprintf(self->why, sizeof(self->why), "%s",
			 access("/sys/module/iommufd_rs", F_OK) ?
				 "the C iommufd has no shadow nesting" : OPTIN_OFF);
	}
	edu_enable(_metadata, &self->dev, self->devfd);
}

FIXTURE_TEARDOWN(vtd)
{
	edu_unmap_bar(&self->dev);
	close_fd(&self->devfd);
	close_fd(&self->iommufd);
	if (self->region)
		munmap(self->region, REGION_PAGES * PG);
	if (self->decoy)
		munmap(self->decoy, DECOY_PAGES * PG);
	if (self->pb)
		munmap(self->pb, PG);
	if (self->p2m)
		munmap(self->p2m, 2 * MB);
	if (self->p1g)
		munmap(self->p1g, DECOY_PAGES * PG);
}

#define NEED_SHADOW()                                          \
	do {                                                   \
		if (self->refused)                             \
			SKIP(return, "%s", self->why);         \
	} while (0)

/* The table with S1_SRC -> A, S1_DST -> B (GPA_B), the nested HWPT, attach. */
static void nest(struct __test_metadata *_metadata, FIXTURE_DATA(vtd) *self)
{
	uint32_t pt;

	s1_map(self, S1_SRC, GPA(PG_A), true);
	s1_map(self, S1_DST, GPA_B, true);
	s1_map(self, S1_RO, GPA(PG_D), false);
	STEP("HWPT_PAGING %u: NEST_PARENT on a unit without nesting (a shadow parent)",
	     self->parent);
	ASSERT_EQ(0, nested_alloc(self, 48, GPA(PG_ROOT), &self->nested))
		TH_LOG("IOMMU_HWPT_ALLOC VTD_S1: %s", strerror(errno));
	STEP("HWPT_NESTED %u (VTD_S1, 4 levels, root at GPA %#llx): IOVA %#llx -> GPA %#llx, IOVA %#llx -> GPA %#llx",
	     self->nested, (unsigned long long)GPA(PG_ROOT),
	     (unsigned long long)S1_SRC, (unsigned long long)GPA(PG_A),
	     (unsigned long long)S1_DST, (unsigned long long)GPA_B);
	pt = self->nested;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	ASSERT_EQ(self->nested, pt);
	STEP("%s attached to HWPT_NESTED %u", self->bdf, self->nested);
}

TEST_F(vtd, refusal)
{
	struct iommu_hw_info_vtd vtd = {};
	struct iommu_hw_info info;

	/* Either way the unit reports what it is: no nesting. */
	ASSERT_EQ(0, get_hw_info(self->iommufd, self->devid, &vtd, sizeof(vtd),
				 &info));
	EXPECT_EQ(0, vtd.ecap_reg & ECAP_NEST);
	if (self->refused) {
		STEP("NEST_PARENT: EOPNOTSUPP (%s)", self->why);
		return;
	}
	/* With the opt-in, nested HWPTs of other types stay refused. */
	{
		uint8_t junk[16] = {};
		struct iommu_hwpt_alloc cmd = {
			.size = sizeof(cmd),
			.dev_id = self->devid,
			.pt_id = self->parent,
			.data_type = 0xdead, /* IOMMU_HWPT_DATA_SELFTEST */
			.data_len = sizeof(junk),
			.data_uptr = (uintptr_t)junk,
		};

		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->iommufd, IOMMU_HWPT_ALLOC, &cmd));
	}
}

TEST_F_TIMEOUT(vtd, translate, 300)
{
	uint8_t before[XFER];

	NEED_SHADOW();
	nest(_metadata, self);
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   self->pb);
	/* A read-only leaf: the device reads through it, cannot write. */
	copy_check(_metadata, self, S1_RO, page_at(self, PG_D), S1_DST,
		   self->pb);
	memcpy(before, page_at(self, PG_D), XFER);
	ASSERT_EQ(0, dma_out(&self->dev, S1_RO, 0));
	EXPECT_EQ(-1, first_diff(before, page_at(self, PG_D), XFER))
		TH_LOG("a write went through a read-only stage-1 leaf");
	STEP("edu DMA write to the read-only IOVA %#llx: refused",
	     (unsigned long long)S1_RO);
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->nested));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->parent));
}

TEST_F_TIMEOUT(vtd, remap_and_invalidate, 300)
{
	NEED_SHADOW();
	nest(_metadata, self);
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   self->pb);
	/* The guest changes the leaf: nothing happens before it invalidates. */
	s1_map(self, S1_DST, GPA(PG_C), true);
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   self->pb);
	STEP("leaf changed to GPA %#llx, not invalidated: DMA still goes to the old page (caching mode)",
	     (unsigned long long)GPA(PG_C));
	ASSERT_EQ(0, invalidate(self, S1_DST, 1));
	STEP("IOMMU_HWPT_INVALIDATE %#llx, 1 page", (unsigned long long)S1_DST);
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   page_at(self, PG_C));
	/* A new leaf, and the all-ones form. */
	s1_map(self, S1_IOVA(7), GPA(PG_D), true);
	ASSERT_EQ(0, invalidate(self, 0, UINT64_MAX));
	STEP("IOMMU_HWPT_INVALIDATE everything");
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_IOVA(7),
		   page_at(self, PG_D));
}

TEST_F_TIMEOUT(vtd, unmap_s2_under_s1, 300)
{
	uint64_t unmapped;
	uint8_t pat[XFER];
	int kfd;

	NEED_SHADOW();
	nest(_metadata, self);
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   self->pb);
	kfd = kmsg_open();
	ASSERT_LE(0, kfd);
	ASSERT_EQ(0, unmap_iova(self->iommufd, self->ioas, GPA_B, PG,
				&unmapped));
	ASSERT_EQ(PG, unmapped);
	STEP("IOAS unmap of GPA %#llx under the live leaf of IOVA %#llx",
	     (unsigned long long)GPA_B, (unsigned long long)S1_DST);
	memset(self->pb, MARK, PG);
	fill_pattern(pat, XFER);
	memcpy(page_at(self, PG_A), pat, XFER);
	ASSERT_EQ(0, dma_in(&self->dev, S1_SRC));
	ASSERT_EQ(0, dma_out(&self->dev, S1_DST, 0));
	EXPECT_EQ(-1, first_not(self->pb, MARK, PG))
		TH_LOG("the page that left the IOAS was written");
	usleep(200 * 1000);
	EXPECT_LT(0, kmsg_matching(_metadata, kfd, fault_line))
		TH_LOG("no DMAR fault logged for the refused transfer");
	close(kfd);
	STEP("edu DMA to IOVA %#llx: not landed, a DMAR fault logged",
	     (unsigned long long)S1_DST);
	/* Back in the IOAS (another page): translates without invalidation. */
	{
		uint8_t *other = map_anon(PG);

		ASSERT_NE(NULL, other);
		ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, GPA_B, other,
				       PG));
		copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
			   other);
		EXPECT_EQ(-1, first_not(self->pb, MARK, PG));
		STEP("IOAS map of GPA %#llx again: the leaf translates, no invalidation needed",
		     (unsigned long long)GPA_B);
		munmap(other, PG);
	}
	/* Read-only stage 2: the device reads, its write does not land. */
	ASSERT_EQ(0, unmap_iova(self->iommufd, self->ioas, GPA_B, PG,
				&unmapped));
	ASSERT_EQ(0, map_ro(self->iommufd, self->ioas, GPA_B, self->pb, PG));
	memset(self->pb, MARK, PG);
	ASSERT_EQ(0, dma_out(&self->dev, S1_DST, 0));
	EXPECT_EQ(-1, first_not(self->pb, MARK, PG))
		TH_LOG("a write went through a read-only stage 2");
	copy_check(_metadata, self, S1_DST, self->pb, S1_SRC,
		   page_at(self, PG_A));
}

TEST_F_TIMEOUT(vtd, large_leaves, 300)
{
	uint32_t pt;

	NEED_SHADOW();
	nest(_metadata, self);
	/* 2 MiB: IOVA S1_2M + x -> GPA GPA_2M + x. */
	table(self, PG_PD)[IDX(S1_2M, 1)] = GPA_2M | PTE_P | PTE_RW | PTE_US | PTE_PS;
	ASSERT_EQ(0, invalidate(self, S1_2M, 512));
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A),
		   S1_2M + 5 * PG + MB, self->p2m + 5 * PG + MB);
	STEP("2 MiB leaf: IOVA %#llx -> GPA %#llx", (unsigned long long)S1_2M,
	     (unsigned long long)GPA_2M);
	/*
	 * 1 GiB: PDPT entry 0 becomes a leaf for [0, 1 GiB) -> GPA 1 GiB, so
	 * S1_SRC leads to GPA 1 GiB + S1_SRC (p1g) from now on.
	 */
	table(self, PG_PDPT)[0] = GPA_1G | PTE_P | PTE_RW | PTE_US | PTE_PS;
	ASSERT_EQ(0, invalidate(self, 0, UINT64_MAX));
	copy_check(_metadata, self, S1_SRC, self->p1g + (S1_SRC - DECOY_GPA),
		   S1_DST, self->p1g + (S1_DST - DECOY_GPA));
	STEP("1 GiB leaf: IOVA 0 -> GPA %#llx", (unsigned long long)GPA_1G);
	pt = self->ioas;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
}

TEST_F_TIMEOUT(vtd, five_level, 300)
{
	uint32_t pt;
	int rc;

	NEED_SHADOW();
	/* PML5 entry 0 -> the 4-level root: the same IOVAs below 2^48. */
	table(self, PG_PML5)[0] = GPA(PG_ROOT) | PTE_P | PTE_RW | PTE_US;
	s1_map(self, S1_SRC, GPA(PG_A), true);
	s1_map(self, S1_DST, GPA_B, true);
	/*
	 * The unit translates 48 bits (QEMU's intel-iommu has aw-bits=48 at
	 * most): the shadow walks the 5 levels, IOVAs beyond 2^48 would
	 * translate nothing.
	 */
	rc = nested_alloc(self, 57, GPA(PG_PML5), &self->nested);
	ASSERT_EQ(0, rc) TH_LOG("VTD_S1 with 57 bits: %s", strerror(errno));
	STEP("HWPT_NESTED %u (VTD_S1, 5 levels, PML5 at GPA %#llx)", self->nested,
	     (unsigned long long)GPA(PG_PML5));
	pt = self->nested;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	copy_check(_metadata, self, S1_SRC, page_at(self, PG_A), S1_DST,
		   self->pb);
}

TEST_HARNESS_MAIN
