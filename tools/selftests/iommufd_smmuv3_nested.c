// SPDX-License-Identifier: GPL-2.0
/*
 * Real nested translation on QEMU's emulated SMMUv3 (arm64 VM, stage=nested),
 * with QEMU's edu PCI device behind vfio-pci: this program plays the guest.
 * It owns stage 1 (a context descriptor and 4 KiB-granule page tables it
 * writes into memory it maps in an IOAS), stage 2 is that IOAS through a
 * NEST_PARENT HWPT, and the device is attached to a nested HWPT made from a
 * virtual STE on a vIOMMU. The emulated SMMU walks IOVA -> IPA -> PA, the CD
 * and table fetches going through stage 2 as well, so every check looks at
 * where the device's bytes really landed:
 *  - translate: S1 IOVAs (not identity-mapped: what sits at IPA == IOVA is a
 *    decoy that must stay untouched) lead to the pages the S1 tables name;
 *  - remap_and_invalidate: a changed PTE or CD takes effect after
 *    IOMMU_HWPT_INVALIDATE on the vIOMMU (TLBI_NH_VA/ASID/ALL, CFGI_CD/_ALL),
 *    a bad command stops the array with EIO and entry_num tells where;
 *  - fault_to_veventq, veventq_overflow: stage-1 faults arrive on a vEVENTQ
 *    with the virtual StreamID, sequence numbers and the lost-events header;
 *  - abort_and_bypass: abort, bypass (stage 2 only) and non-valid vSTEs;
 *  - vmid_sharing: the S2VMID of the installed STEs (debugfs of the Rust
 *    backend): one per vIOMMU, shared by its devices;
 *  - vste_refusals: the vSTE bits and data types that are refused;
 *  - destroy_orders: EBUSY while dependents exist, teardown in several
 *    orders, and closing the files with everything alive;
 *  - refusal: without S2FWB or CANWBS (the emulated SMMU has neither, and
 *    VFIO does no cache maintenance) IOMMU_VIOMMU_ALLOC is EOPNOTSUPP, unless
 *    iommufd_rs is loaded with allow_noncoherent_nesting=1.
 * Which of these apply is decided from the system: where the vIOMMU is
 * refused, the nesting tests skip and refusal checks the refusal. On other
 * architectures everything skips.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
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

#define NOT_SMMUV3		"not an arm64 SMMUv3 system"

#define GENMASK64(h, l)		((~0ULL << (l)) & (~0ULL >> (63 - (h))))

/*
 * Guest memory. Everything the device emits must be below 2^28 (edu masks
 * its DMA addresses), which matters for S1 IOVAs and, with a bypass vSTE,
 * for IPAs. IPA_BASE stays clear of the software MSI window the SMMUv3
 * driver reserves in every IOAS (0x8000000-0x80fffff).
 *
 * The region at IPA_BASE holds, in 4 KiB pages: the CDs (64 bytes each, one
 * per stage-1 context), the three table levels of context 0 and of context
 * 1, then data pages with a guard page after each. The decoy region sits at
 * IPA == S1 IOVA: a transfer that skipped stage 1 would land there.
 */
#define PG			4096ULL	/* stage-1 granule, edu's buffer */
#define IPA_BASE		0x04000000ULL
#define REGION_PAGES		16
#define PG_CD			0
#define PG_TABLE(ctx, lvl)	(1 + 3 * (ctx) + (lvl) - 1)
#define PG_A			8
#define PG_B			10
#define PG_C			12
#define PG_D			14
#define IPA(pg)			(IPA_BASE + (pg) * PG)

#define DECOY_IPA		0x00a00000ULL
#define DECOY_PAGES		16
#define S1_IOVA(n)		(DECOY_IPA + (n) * PG)
#define S1_SRC			S1_IOVA(1)
#define S1_DST			S1_IOVA(3)
#define S1_HOLE			S1_IOVA(5)	/* never mapped in stage 1 */
#define S1_RO			S1_IOVA(7)	/* mapped read-only */
#define S1_SWAP			S1_IOVA(9)	/* -> S2_SWAP_IPA */
/* A page of its own in stage 2 (outside the region's mapping) */
#define S2_SWAP_IPA		0x05000000ULL

/* All S1 IOVAs are in one 2 MiB block: one L3 table serves them. */
_Static_assert(DECOY_IPA >> 21 == (S1_IOVA(DECOY_PAGES) - 1) >> 21,
	       "S1 IOVAs must share their L1 and L2 entries");
_Static_assert(IPA(REGION_PAGES) <= 0x08000000ULL, "below the MSI window");

#define MARK			0x5a	/* data pages no DMA may reach */
#define MARK2			0xa5	/* the decoy */

/* The virtual StreamIDs userspace gives its devices. */
#define VSID			0x42
#define VSID2			0x43
#define ASID(ctx)		(0x11 + (ctx))

/* SMMU_IDR0 and IDR3 bits (hw_info). */
#define IDR0_S2P		(1U << 0)
#define IDR0_S1P		(1U << 1)
#define IDR3_FWB		(1U << 8)

/* Stream table entry, double words 0 and 1 (the vSTE). */
#define STE0_V			(1ULL << 0)
#define STE0_CFG(c)		((uint64_t)(c) << 1)
#define STE0_CFG_OF(w)		(((w) >> 1) & 7)
#define CFG_ABORT		0
#define CFG_BYPASS		4
#define CFG_S1			5
#define CFG_S2			6
#define CFG_NESTED		7
#define STE0_CTXPTR(a)		((a) & GENMASK64(51, 6))
#define STE0_S1CDMAX(n)		((uint64_t)(n) << 59)
#define STE1_S1CIR_WBRA		(1ULL << 2)
#define STE1_S1COR_WBRA		(1ULL << 4)
#define STE1_S1CSH_ISH		(3ULL << 6)
#define STE1_MEV		(1ULL << 19)
#define STE1_S2FWB		(1ULL << 25)
#define STE1_S1STALLD		(1ULL << 27)
#define STE1_EATS(n)		((uint64_t)(n) << 28)
#define STE1_SHCFG(n)		((uint64_t)(n) << 44)
#define STE2_S2VMID(w)		((w) & 0xffff)

/* Context descriptor, double words 0, 1 and 3. */
#define CD0_T0SZ(n)		((uint64_t)(n) << 0)
#define CD0_TG0_4K		(0ULL << 6)
#define CD0_IRGN0_WBWA		(1ULL << 8)
#define CD0_ORGN0_WBWA		(1ULL << 10)
#define CD0_SH0_ISH		(3ULL << 12)
#define CD0_EPD1		(1ULL << 30)
#define CD0_V			(1ULL << 31)
#define CD0_IPS_44		(4ULL << 32)
#define CD0_AA64		(1ULL << 41)
#define CD0_R			(1ULL << 45)
#define CD0_A			(1ULL << 46)
#define CD0_ASID(n)		((uint64_t)(n) << 48)
#define CD1_TTB0(a)		((a) & GENMASK64(51, 4))
#define MAIR_ATTR0_WB		0xffULL
/* T0SZ 25: a 39-bit input space, three levels of 4 KiB tables. */
#define S1_T0SZ			25

/* Stage-1 descriptors (VMSAv8-64, 4 KiB granule). */
#define DESC_TABLE		3ULL	/* next-level table, or L3 page */
#define DESC_AP_EL0		(1ULL << 6)	/* AP[1] */
#define DESC_AP_RO		(1ULL << 7)	/* AP[2] */
#define DESC_SH_ISH		(3ULL << 8)
#define DESC_AF			(1ULL << 10)
#define DESC_NG			(1ULL << 11)
#define DESC_ADDR(a)		((a) & GENMASK64(47, 12))
#define L1_IDX(va)		(((va) >> 30) & 511)
#define L2_IDX(va)		(((va) >> 21) & 511)
#define L3_IDX(va)		(((va) >> 12) & 511)

/* Command queue entries userspace may send through the vIOMMU. */
#define CMD_CFGI_CD		0x05
#define CMD_CFGI_CD_ALL		0x06
#define CMD_TLBI_NH_ALL		0x10
#define CMD_TLBI_NH_ASID	0x11
#define CMD_TLBI_NH_VA		0x12
#define CMD_SYNC		0x46
#define CMD0_SID(n)		((uint64_t)(n) << 32)
#define CMD0_ASID(n)		((uint64_t)(n) << 48)
#define CMD1_LEAF		1ULL

/* Event records. */
#define EVT_F_TRANSLATION	0x10
#define EVT_F_PERMISSION	0x13
#define EVT0_ID(w)		((w) & 0xff)
#define EVT0_SID(w)		((w) >> 32)
#define EVT1_RNW		(1ULL << 35)
#define EVT1_S2			(1ULL << 39)

/*
 * A transfer the SMMU refuses is retried by QEMU in 4-byte pieces, each of
 * which records an event: FAULT_LEN bytes give FAULT_EVENTS records.
 */
#define FAULT_LEN		64
#define FAULT_EVENTS		(FAULT_LEN / 4)

#define EVENT_TIMEOUT_MS	20000
/* After the first event, time for the host's event thread to finish. */
#define EVENT_SETTLE_US		1500000
#define REC_SIZE		(sizeof(struct iommufd_vevent_header) + \
				 sizeof(struct iommu_vevent_arm_smmuv3))
#define REC_MAX			64

#define RUST_MODULE		"/sys/module/iommufd_rs"
#define SMMU_DEBUGFS		"/sys/kernel/debug/iommufd_rs/smmuv3"

FIXTURE(smmuv3)
{
	char bdf[NAME_MAX + 1];
	char cdev[NAME_MAX + 32];
	int iommufd;
	int devfd;
	uint32_t devid;
	struct edu_dev dev;
	uint8_t *region;	/* at IPA_BASE */
	uint8_t *decoy;		/* at DECOY_IPA */
	uint8_t *snap;		/* both as they were at snapshot() */
	size_t region_len;
	size_t decoy_len;
	uint32_t ioas;
	uint32_t parent;	/* the NEST_PARENT HWPT of ioas */
	uint32_t viommu;	/* 0: refused, the reason in refused */
	uint32_t vdev;
	uint32_t nested;
	int qfd;		/* a vEVENTQ */
	char refused[160];
};

/* --- iommufd commands for nesting ---------------------------------------- */

/*
 * make run shows the nested flow step by step (SMMUV3_STEPS=1): each step
 * and the addresses involved, as TAP comments.
 */
static bool steps_on(void)
{
	static int on = -1;

	if (on < 0)
		on = getenv("SMMUV3_STEPS") != NULL;
	return on;
}

#define STEP(fmt, ...)                                                     \
	do {                                                               \
		if (steps_on())                                            \
			printf("#   step: " fmt "\n", ##__VA_ARGS__);         \
	} while (0)

static int viommu_alloc(int fd, uint32_t dev_id, uint32_t hwpt_id,
			uint32_t *id)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
	};
	int rc = ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_viommu_id;
	return rc;
}

static int vdev_alloc(int fd, uint32_t viommu, uint32_t dev_id, uint64_t vsid,
		      uint32_t *id)
{
	struct iommu_vdevice_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu,
		.dev_id = dev_id,
		.virt_id = vsid,
	};
	int rc = ioctl(fd, IOMMU_VDEVICE_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_vdevice_id;
	return rc;
}

/* IOMMU_HWPT_ALLOC with driver data. */
static int hwpt_alloc_data(int fd, uint32_t dev_id, uint32_t pt_id,
			   uint32_t flags, uint32_t type, const void *data,
			   uint32_t len, uint32_t *id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = type,
		.data_len = len,
		.data_uptr = (uintptr_t)data,
	};
	int rc = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_hwpt_id;
	return rc;
}

/* A nested HWPT of viommu from the vSTE (ste0, ste1). */
static int nested_alloc(int fd, uint32_t dev_id, uint32_t viommu,
			uint64_t ste0, uint64_t ste1, uint32_t *id)
{
	struct iommu_hwpt_arm_smmuv3 vste = {
		.ste = { htole64(ste0), htole64(ste1) },
	};

	return hwpt_alloc_data(fd, dev_id, viommu, 0,
			       IOMMU_HWPT_DATA_ARM_SMMUV3, &vste, sizeof(vste),
			       id);
}

static int veventq_alloc(int fd, uint32_t viommu, uint32_t depth,
			 uint32_t *id, int *qfd)
{
	struct iommu_veventq_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu,
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
		.veventq_depth = depth,
	};
	int rc = ioctl(fd, IOMMU_VEVENTQ_ALLOC, &cmd);

	if (!rc) {
		*id = cmd.out_veventq_id;
		*qfd = cmd.out_veventq_fd;
	}
	return rc;
}

struct cmd {
	uint64_t w0, w1;
};

/* Sends n commands to the vIOMMU; *done is what the kernel wrote back. */
static int invalidate_type(int fd, uint32_t id, uint32_t type,
			   const struct cmd *cmds, uint32_t n, uint32_t *done)
{
	struct iommu_viommu_arm_smmuv3_invalidate e[8] = {};
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = id,
		.data_uptr = (uintptr_t)e,
		.data_type = type,
		.entry_len = sizeof(e[0]),
		.entry_num = n,
	};
	int rc;

	if (n > sizeof(e) / sizeof(e[0]))
		abort();
	for (uint32_t i = 0; i < n; i++) {
		e[i].cmd[0] = htole64(cmds[i].w0);
		e[i].cmd[1] = htole64(cmds[i].w1);
	}
	rc = ioctl(fd, IOMMU_HWPT_INVALIDATE, &cmd);
	*done = cmd.entry_num;
	return rc;
}

static int invalidate(int fd, uint32_t id, const struct cmd *cmds, uint32_t n,
		      uint32_t *done)
{
	return invalidate_type(fd, id, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
			       cmds, n, done);
}

static struct cmd tlbi_va(unsigned int asid, uint64_t va)
{
	return (struct cmd){ CMD_TLBI_NH_VA | CMD0_ASID(asid),
			     (va & GENMASK64(63, 12)) | CMD1_LEAF };
}

/* --- the guest's stage 1 ------------------------------------------------- */

static uint8_t *ptr_of(FIXTURE_DATA(smmuv3) *self, uint64_t ipa)
{
	if (ipa >= IPA_BASE && ipa < IPA_BASE + self->region_len)
		return self->region + (ipa - IPA_BASE);
	if (ipa >= DECOY_IPA && ipa < DECOY_IPA + self->decoy_len)
		return self->decoy + (ipa - DECOY_IPA);
	abort();
}

static uint64_t *table(FIXTURE_DATA(smmuv3) *self, int ctx, int lvl)
{
	return (uint64_t *)ptr_of(self, IPA(PG_TABLE(ctx, lvl)));
}

static uint64_t cd_ipa(int ctx)
{
	return IPA(PG_CD) + 64 * ctx;
}

/*
 * The CPU's stores to the CD and tables must be visible before the next
 * transfer makes the SMMU walk them. Under TCG the emulated walker reads
 * guest memory coherently, so a barrier is all it takes; a real SMMU without
 * coherent walks would need cache maintenance here, which is what
 * allow_noncoherent_nesting waives.
 */
static void publish(void)
{
	__sync_synchronize();
}

/* Points the CD of ctx at the tables of tables_ctx, with ASID asid. */
static void s1_write_cd(FIXTURE_DATA(smmuv3) *self, int ctx, int tables_ctx,
			unsigned int asid)
{
	uint64_t *cd = (uint64_t *)ptr_of(self, cd_ipa(ctx));

	memset(cd, 0, 64);
	cd[0] = htole64(CD0_T0SZ(S1_T0SZ) | CD0_TG0_4K | CD0_IRGN0_WBWA |
			CD0_ORGN0_WBWA | CD0_SH0_ISH | CD0_EPD1 | CD0_V |
			CD0_IPS_44 | CD0_AA64 | CD0_R | CD0_A |
			CD0_ASID(asid));
	cd[1] = htole64(CD1_TTB0(IPA(PG_TABLE(tables_ctx, 1))));
	cd[3] = htole64(MAIR_ATTR0_WB);
	publish();
}

/* An empty stage 1 for ctx: its CD and the table path to the S1 block. */
static void s1_init(FIXTURE_DATA(smmuv3) *self, int ctx)
{
	for (int lvl = 1; lvl <= 3; lvl++)
		memset(table(self, ctx, lvl), 0, PG);
	table(self, ctx, 1)[L1_IDX(DECOY_IPA)] =
		htole64(DESC_ADDR(IPA(PG_TABLE(ctx, 2))) | DESC_TABLE);
	table(self, ctx, 2)[L2_IDX(DECOY_IPA)] =
		htole64(DESC_ADDR(IPA(PG_TABLE(ctx, 3))) | DESC_TABLE);
	s1_write_cd(self, ctx, ctx, ASID(ctx));
}

static void s1_map(FIXTURE_DATA(smmuv3) *self, int ctx, uint64_t iova,
		   uint64_t ipa, bool writable)
{
	uint64_t d = DESC_ADDR(ipa) | DESC_TABLE | DESC_AF | DESC_SH_ISH |
		     DESC_NG | DESC_AP_EL0;

	if (!writable)
		d |= DESC_AP_RO;
	table(self, ctx, 3)[L3_IDX(iova)] = htole64(d);
	publish();
}

/* The vSTE that translates through the CD of ctx. */
static uint64_t vste0_s1(int ctx)
{
	return STE0_V | STE0_CFG(CFG_S1) | STE0_CTXPTR(cd_ipa(ctx));
}

#define VSTE1_S1	(STE1_S1CIR_WBRA | STE1_S1COR_WBRA | STE1_S1CSH_ISH)

/* --- where the bytes went ------------------------------------------------ */

static void snapshot(FIXTURE_DATA(smmuv3) *self)
{
	memcpy(self->snap, self->region, self->region_len);
	memcpy(self->snap + self->region_len, self->decoy, self->decoy_len);
}

/*
 * Since snapshot(): the XFER bytes at IPA dst hold want, and nothing else of
 * the region or the decoy changed (dst 0: nothing at all changed). A
 * transfer that moved nothing fails this as surely as one that went astray.
 */
static void expect_only(struct __test_metadata *_metadata,
			FIXTURE_DATA(smmuv3) *self, uint64_t dst,
			const uint8_t *want)
{
	bool dst_known = !dst;
	size_t bad = 0;
	uint64_t first = 0;
	int seen = 0, expected = 0;

	for (int area = 0; area < 2; area++) {
		const uint8_t *cur = area ? self->decoy : self->region;
		const uint8_t *old = self->snap + (area ? self->region_len : 0);
		uint64_t base = area ? DECOY_IPA : IPA_BASE;
		size_t len = area ? self->decoy_len : self->region_len;

		if (dst >= base && dst + XFER <= base + len)
			dst_known = true;
		for (size_t off = 0; off < len; off++) {
			uint64_t ipa = base + off;
			bool in = dst && ipa >= dst && ipa < dst + XFER;
			int e = in ? want[ipa - dst] : old[off];

			if (cur[off] == e)
				continue;
			if (!bad++) {
				first = ipa;
				seen = cur[off];
				expected = e;
			}
		}
	}
	ASSERT_TRUE(dst_known) TH_LOG("IPA %#llx is not test memory",
				      (unsigned long long)dst);
	EXPECT_EQ(0, bad)
		TH_LOG("%zu bytes wrong (expected %s), the first at IPA %#llx: %#x instead of %#x",
		       bad, dst ? "one page written" : "no change",
		       (unsigned long long)first, seen, expected);
}

/*
 * A fresh pattern in the page at IPA src_ipa; the device reads it from
 * src_addr and writes it to dst_addr; then it must be in the page at IPA
 * dst_ipa and nowhere else (dst_ipa 0: nothing may change at all).
 */
static void copy_check(struct __test_metadata *_metadata,
		       FIXTURE_DATA(smmuv3) *self, uint64_t src_addr,
		       uint64_t src_ipa, uint64_t dst_addr, uint64_t dst_ipa)
{
	uint8_t *src = ptr_of(self, src_ipa);
	uint8_t want[XFER];

	fill_pattern(src, XFER);
	memcpy(want, src, XFER);
	snapshot(self);
	ASSERT_EQ(0, dma_in(&self->dev, src_addr))
		TH_LOG("RAM -> device from %#llx did not finish",
		       (unsigned long long)src_addr);
	ASSERT_EQ(0, dma_out(&self->dev, dst_addr, 0))
		TH_LOG("device -> RAM to %#llx did not finish",
		       (unsigned long long)dst_addr);
	expect_only(_metadata, self, dst_ipa, want);
	STEP("edu DMA: read %d bytes at IOVA %#llx (IPA %#llx, %p), wrote them to IOVA %#llx: they are at IPA %#llx (%p), nowhere else",
	     XFER, (unsigned long long)src_addr, (unsigned long long)src_ipa,
	     (void *)src, (unsigned long long)dst_addr,
	     (unsigned long long)dst_ipa, (void *)ptr_of(self, dst_ipa));
}

/* A short write by the device to addr that must reach nothing. */
static void write_nowhere(struct __test_metadata *_metadata,
			  FIXTURE_DATA(smmuv3) *self, uint64_t addr,
			  uint64_t len)
{
	snapshot(self);
	ASSERT_EQ(0, edu_dma(&self->dev, EDU_BUF, addr, len, EDU_CMD_TO_RAM));
	expect_only(_metadata, self, 0, NULL);
}

/* --- vEVENTQ records ----------------------------------------------------- */

struct rec {
	uint32_t flags;
	uint32_t seq;
	bool data;
	uint64_t evt[4];
};

/* Everything queued now, up to max records; -1 on a read error. */
static int drain(int qfd, struct rec *r, int max)
{
	uint8_t buf[REC_MAX * REC_SIZE];
	int n = 0;

	while (n < max) {
		ssize_t len = read(qfd, buf, sizeof(buf));
		size_t off = 0;

		if (len < 0)
			return -1;
		if (len == 0)
			break;
		while (off + sizeof(struct iommufd_vevent_header) <=
			       (size_t)len &&
		       n < max) {
			struct iommufd_vevent_header h;
			struct iommu_vevent_arm_smmuv3 e;

			memcpy(&h, buf + off, sizeof(h));
			off += sizeof(h);
			r[n] = (struct rec){ .flags = h.flags,
					     .seq = h.sequence };
			if (!(h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS)) {
				if (off + sizeof(e) > (size_t)len)
					return -1;
				memcpy(&e, buf + off, sizeof(e));
				off += sizeof(e);
				r[n].data = true;
				for (int i = 0; i < 4; i++)
					r[n].evt[i] = le64toh(e.evt[i]);
			}
			n++;
		}
	}
	return n;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) < 0)
		return -1;
	return !!(p.revents & POLLIN);
}

/*
 * The records of one burst of faults: waits for the first, gives the host
 * time to report the rest (a small queue would otherwise be read while the
 * burst still fills it), then reads all. 0 if nothing came.
 */
static int collect(int qfd, struct rec *r, int max)
{
	if (readable(qfd, EVENT_TIMEOUT_MS) != 1)
		return 0;
	usleep(EVENT_SETTLE_US);
	return drain(qfd, r, max);
}

/*
 * n fault records of type id for the vSID, numbered from seq on, each for a
 * write by the device into [addr, addr + len) and found at stage 1.
 */
static void expect_faults(struct __test_metadata *_metadata,
			  const struct rec *r, int n, uint32_t seq,
			  unsigned int id, uint64_t addr, uint64_t len)
{
	for (int i = 0; i < n; i++) {
		TH_LOG("record %d: flags %#x seq %u evt %016llx %016llx %016llx %016llx",
		       i, r[i].flags, r[i].seq,
		       (unsigned long long)r[i].evt[0],
		       (unsigned long long)r[i].evt[1],
		       (unsigned long long)r[i].evt[2],
		       (unsigned long long)r[i].evt[3]);
		EXPECT_EQ(0, r[i].flags);
		EXPECT_TRUE(r[i].data);
		EXPECT_EQ(seq + i, r[i].seq);
		EXPECT_EQ(id, EVT0_ID(r[i].evt[0]));
		EXPECT_EQ(VSID, EVT0_SID(r[i].evt[0]));
		EXPECT_EQ(0, r[i].evt[1] & EVT1_RNW);
		EXPECT_EQ(0, r[i].evt[1] & EVT1_S2);
		EXPECT_LE(addr, r[i].evt[2]);
		EXPECT_GT(addr + len, r[i].evt[2]);
	}
}

/* --- the Rust backend's view of the stream table ------------------------- */

struct ste_line {
	unsigned int viommu;
	unsigned int vsid;
	unsigned int sid;
	char dev[64];
	uint64_t ste[8];
};

static bool have_debugfs(void)
{
	return !access(SMMU_DEBUGFS, R_OK);
}

/* The VMID of vIOMMU id, -1 without a line for it. */
static long dbg_vmid(uint32_t id)
{
	FILE *f = fopen(SMMU_DEBUGFS, "re");
	unsigned int v, vmid;
	char line[512];
	long ret = -1;

	if (!f)
		return -1;
	while (ret < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "viommu %u vmid %u", &v, &vmid) == 2 &&
		    v == id)
			ret = vmid;
	fclose(f);
	return ret;
}

/* The vdevice line of the device bdf, false without one. */
static bool dbg_vdev(const char *bdf, struct ste_line *l)
{
	FILE *f = fopen(SMMU_DEBUGFS, "re");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		uint64_t *s = l->ste;

		found = sscanf(line,
			       "vdevice %u vsid %u sid %u dev %63s ste %" SCNx64
			       " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64
			       " %" SCNx64 " %" SCNx64 " %" SCNx64,
			       &l->viommu, &l->vsid, &l->sid, l->dev, &s[0],
			       &s[1], &s[2], &s[3], &s[4], &s[5], &s[6],
			       &s[7]) == 12 &&
			!strcmp(l->dev, bdf);
	}
	fclose(f);
	return found;
}

/*
 * The STE installed for bdf, when the debugfs view exists: a vDEVICE vsid on
 * viommu, and Config cfg (abort also when not valid). A nested STE points at
 * the CD cd and carries the vIOMMU's VMID.
 */
static void expect_ste(struct __test_metadata *_metadata, const char *bdf,
		       uint32_t viommu, unsigned int vsid, unsigned int cfg,
		       uint64_t cd)
{
	struct ste_line l;

	if (!have_debugfs())
		return;
	ASSERT_TRUE(dbg_vdev(bdf, &l)) TH_LOG("no vdevice line for %s", bdf);
	TH_LOG("%s: viommu %u vsid %#x sid %#x ste %016llx %016llx %016llx %016llx",
	       bdf, l.viommu, l.vsid, l.sid, (unsigned long long)l.ste[0],
	       (unsigned long long)l.ste[1], (unsigned long long)l.ste[2],
	       (unsigned long long)l.ste[3]);
	EXPECT_EQ(viommu, l.viommu);
	EXPECT_EQ(vsid, l.vsid);
	if (cfg == CFG_ABORT && !(l.ste[0] & STE0_V))
		return;
	EXPECT_TRUE(l.ste[0] & STE0_V);
	EXPECT_EQ(cfg, STE0_CFG_OF(l.ste[0]));
	if (cfg == CFG_NESTED) {
		EXPECT_EQ(cd, STE0_CTXPTR(l.ste[0]));
		EXPECT_EQ(dbg_vmid(viommu), (long)STE2_S2VMID(l.ste[2]));
	}
}

/* --- fixture ------------------------------------------------------------- */

/*
 * The Rust module's opt-in is a load-time parameter (the parameters of Rust
 * modules are not in sysfs); its debugfs view says whether it is on.
 */
static bool optin_on(void)
{
	char line[64];
	bool on = false;
	FILE *f;

	f = fopen(SMMU_DEBUGFS, "r");
	if (!f)
		return false;
	if (fgets(line, sizeof(line), f))
		on = !strcmp(line, "allow_noncoherent_nesting 1\n");
	fclose(f);
	return on;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Guest memory: tables zeroed, data pages and decoy marked. */
static void mem_reset(FIXTURE_DATA(smmuv3) *self)
{
	memset(self->region, 0, PG_A * PG);
	memset(self->region + PG_A * PG, MARK, self->region_len - PG_A * PG);
	memset(self->decoy, MARK2, self->decoy_len);
}

/*
 * A new IOAS with the region and the decoy mapped at their IPAs, and its
 * NEST_PARENT HWPT, which every configuration must give.
 */
static void stage2(struct __test_metadata *_metadata,
		   FIXTURE_DATA(smmuv3) *self, uint32_t *ioas, uint32_t *parent)
{
	ASSERT_EQ(0, ioas_alloc(self->iommufd, ioas));
	ASSERT_EQ(0, map_fixed(self->iommufd, *ioas, IPA_BASE, self->region,
			       self->region_len));
	ASSERT_EQ(0, map_fixed(self->iommufd, *ioas, DECOY_IPA, self->decoy,
			       self->decoy_len));
	ASSERT_EQ(0, hwpt_alloc(self->iommufd, self->devid, *ioas,
				IOMMU_HWPT_ALLOC_NEST_PARENT, parent))
		TH_LOG("IOMMU_HWPT_ALLOC_NEST_PARENT: %s", strerror(errno));
	STEP("stage 2: IOAS %u maps the guest's RAM, IPA %#llx..%#llx -> user memory %p, and a decoy at IPA %#llx",
	     *ioas, IPA_BASE, IPA_BASE + self->region_len - 1,
	     (void *)self->region, DECOY_IPA);
	STEP("stage 2: HWPT_PAGING %u (NEST_PARENT) over IOAS %u", *parent,
	     *ioas);
}

FIXTURE_SETUP(smmuv3)
{
	long page = sysconf(_SC_PAGESIZE);
	struct iommu_hw_info_arm_smmuv3 idr = {};
	struct iommu_hw_info info;
	bool optin, fwb;
	int rc;

	self->iommufd = -1;
	self->devfd = -1;
	self->qfd = -1;
	self->dev.fd = -1;
	self->dev.bar = NULL;
	self->region = NULL;
	self->decoy = NULL;
	self->snap = NULL;
#ifndef __aarch64__
	SKIP(return, NOT_SMMUV3);
#endif
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu PCI device (%04x:%04x)", EDU_VENDOR,
		     EDU_DEVICE);
	ASSERT_EQ(0, bind_vfio_pci(self->bdf))
		TH_LOG("%s cannot be bound to vfio-pci", self->bdf);
	ASSERT_EQ(0, find_cdev(self->bdf, self->cdev, sizeof(self->cdev)))
		TH_LOG("%s has no VFIO device cdev", self->bdf);

	/* Whole host pages, so that a 64 KiB kernel maps them too. */
	self->region_len = REGION_PAGES * PG;
	self->decoy_len = DECOY_PAGES * PG;
	ASSERT_EQ(0, self->region_len % page);
	ASSERT_EQ(0, self->decoy_len % page);
	self->region = map_anon(self->region_len);
	self->decoy = map_anon(self->decoy_len);
	self->snap = malloc(self->region_len + self->decoy_len);
	ASSERT_NE(NULL, self->region);
	ASSERT_NE(NULL, self->decoy);
	ASSERT_NE(NULL, self->snap);
	mem_reset(self);

	self->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->iommufd);
	self->devfd = open(self->cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->devfd)
		TH_LOG("open %s: %s", self->cdev, strerror(errno));
	ASSERT_EQ(0, dev_bind(self->devfd, self->iommufd, &self->devid));

	if (get_hw_info(self->iommufd, self->devid, &idr, sizeof(idr), &info) ||
	    info.out_data_type != IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
		SKIP(return, NOT_SMMUV3);
	TH_LOG("%s: SMMU IDR0 %#x IDR1 %#x IDR3 %#x IDR5 %#x", self->bdf,
	       idr.idr[0], idr.idr[1], idr.idr[3], idr.idr[5]);
	ASSERT_EQ(IDR0_S1P | IDR0_S2P, idr.idr[0] & (IDR0_S1P | IDR0_S2P))
		TH_LOG("the SMMU does not have both stages (QEMU: stage=nested)");

	stage2(_metadata, self, &self->ioas, &self->parent);

	/*
	 * Nesting needs a stage 2 the guest cannot make non-coherent: S2FWB,
	 * or a device that is coherent whatever it asks for (CANWBS, from the
	 * firmware tables, invisible here). QEMU's SMMU has neither; only the
	 * Rust module's opt-in then lets the vIOMMU be made.
	 */
	optin = optin_on();
	fwb = idr.idr[3] & IDR3_FWB;
	rc = viommu_alloc(self->iommufd, self->devid, self->parent,
			  &self->viommu);
	if (optin || fwb) {
		ASSERT_EQ(0, rc) TH_LOG("IOMMU_VIOMMU_ALLOC: %s (%s)",
					strerror(errno),
					optin ? "allow_noncoherent_nesting=1" :
						"the SMMU has S2FWB");
	} else {
		ASSERT_EQ(-1, rc)
			TH_LOG("IOMMU_VIOMMU_ALLOC succeeded without S2FWB, CANWBS or the opt-in");
		ASSERT_EQ(EOPNOTSUPP, errno);
		self->viommu = 0;
		snprintf(self->refused, sizeof(self->refused),
			 "IOMMU_VIOMMU_ALLOC: EOPNOTSUPP (no S2FWB or CANWBS; %s)",
			 access(RUST_MODULE, F_OK) ?
				 "the C iommufd has no opt-in" :
				 "the Rust opt-in allow_noncoherent_nesting is off");
	}
	edu_enable(_metadata, &self->dev, self->devfd);
}

FIXTURE_TEARDOWN(smmuv3)
{
	edu_unmap_bar(&self->dev);
	close_fd(&self->devfd);
	close_fd(&self->qfd);
	close_fd(&self->iommufd);
	if (self->region)
		munmap(self->region, self->region_len);
	if (self->decoy)
		munmap(self->decoy, self->decoy_len);
	free(self->snap);
}

/* A nesting test needs the vIOMMU; where it is refused, setup said why. */
#define NEED_VIOMMU()                                             \
	do {                                                      \
		if (!self->viommu)                                \
			SKIP(return, "%s", self->refused);        \
	} while (0)

/*
 * Stage 1 of context 0 with S1_SRC -> page A and S1_DST -> page B, the
 * device's vDEVICE, a nested HWPT translating through that context, the
 * device attached to it, and a first transfer through it.
 */
static void nest_translate(struct __test_metadata *_metadata,
			   FIXTURE_DATA(smmuv3) *self)
{
	uint32_t pt;

	STEP("vIOMMU %u (ARM_SMMUV3) on HWPT_PAGING %u", self->viommu,
	     self->parent);
	s1_init(self, 0);
	s1_map(self, 0, S1_SRC, IPA(PG_A), true);
	s1_map(self, 0, S1_DST, IPA(PG_B), true);
	STEP("stage 1 (the guest's): CD at IPA %#llx, ASID %#x; IOVA %#llx -> IPA %#llx, IOVA %#llx -> IPA %#llx",
	     (unsigned long long)cd_ipa(0), ASID(0),
	     (unsigned long long)S1_SRC, (unsigned long long)IPA(PG_A),
	     (unsigned long long)S1_DST, (unsigned long long)IPA(PG_B));
	ASSERT_EQ(0, vdev_alloc(self->iommufd, self->viommu, self->devid, VSID,
				&self->vdev));
	STEP("vDEVICE %u: %s is vSID %#x on vIOMMU %u", self->vdev, self->bdf,
	     VSID, self->viommu);
	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, self->viommu,
				  vste0_s1(0), VSTE1_S1, &self->nested));
	STEP("HWPT_NESTED %u from the vSTE %#llx %#llx (S1 translate, S1ContextPtr = the CD's IPA)",
	     self->nested, (unsigned long long)vste0_s1(0),
	     (unsigned long long)VSTE1_S1);
	pt = self->nested;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	EXPECT_EQ(self->nested, pt);
	STEP("%s attached to HWPT_NESTED %u", self->bdf, self->nested);
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));
}

/* --- tests --------------------------------------------------------------- */

/*
 * The device's S1 IOVAs lead where the guest's tables say. The decoy at
 * IPA == IOVA holds other bytes: had the SMMU skipped stage 1, the device
 * would have read the decoy at S1_SRC and written the decoy at S1_DST.
 */
TEST_F_TIMEOUT(smmuv3, translate, 600)
{
	NEED_VIOMMU();
	nest_translate(_metadata, self);
	expect_ste(_metadata, self->bdf, self->viommu, VSID, CFG_NESTED,
		   cd_ipa(0));

	/* Both ways again, with the pages swapped in stage 1. */
	s1_map(self, 0, S1_SRC, IPA(PG_C), true);
	s1_map(self, 0, S1_DST, IPA(PG_A), true);
	STEP("stage 1 changed: IOVA %#llx -> IPA %#llx, IOVA %#llx -> IPA %#llx",
	     (unsigned long long)S1_SRC, (unsigned long long)IPA(PG_C),
	     (unsigned long long)S1_DST, (unsigned long long)IPA(PG_A));
	/* Those IOVAs were used: their old translations must go. */
	{
		struct cmd c[] = { tlbi_va(ASID(0), S1_SRC),
				   tlbi_va(ASID(0), S1_DST) };
		uint32_t done;

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 2,
					&done));
		EXPECT_EQ(2, done);
		STEP("IOMMU_HWPT_INVALIDATE on vIOMMU %u: TLBI_NH_VA %#llx %#llx, TLBI_NH_VA %#llx %#llx (%u done)",
		     self->viommu, (unsigned long long)c[0].w0,
		     (unsigned long long)c[0].w1,
		     (unsigned long long)c[1].w0,
		     (unsigned long long)c[1].w1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_C), S1_DST, IPA(PG_A));

	/* In use: the HWPT by the device, the vIOMMU and parent by it. */
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->nested));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->viommu));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->parent));
}

/*
 * A PTE changed by the guest takes effect once invalidated through the
 * vIOMMU, so does a CD; a bad command stops the array where it is.
 */
TEST_F_TIMEOUT(smmuv3, remap_and_invalidate, 600)
{
	const struct cmd sync = { CMD_SYNC, 0 };
	uint32_t done;

	NEED_VIOMMU();
	nest_translate(_metadata, self);	/* S1_DST -> B, now cached */

	/* TLBI_NH_VA: S1_DST -> C; B is left alone. */
	s1_map(self, 0, S1_DST, IPA(PG_C), true);
	{
		struct cmd c[] = { tlbi_va(ASID(0), S1_DST) };

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 1,
					&done));
		EXPECT_EQ(1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_C));

	/* TLBI_NH_ASID: back to B. */
	s1_map(self, 0, S1_DST, IPA(PG_B), true);
	{
		struct cmd c[] = {
			{ CMD_TLBI_NH_ASID | CMD0_ASID(ASID(0)), 0 },
		};

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 1,
					&done));
		EXPECT_EQ(1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));

	/* TLBI_NH_ALL: to C again. */
	s1_map(self, 0, S1_DST, IPA(PG_C), true);
	{
		struct cmd c[] = { { CMD_TLBI_NH_ALL, 0 } };

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 1,
					&done));
		EXPECT_EQ(1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_C));

	/*
	 * CFGI_CD: the CD now names context 1's tables (S1_DST -> D) and a
	 * new ASID, which has nothing cached: D once the CD is re-read.
	 */
	s1_init(self, 1);
	s1_map(self, 1, S1_SRC, IPA(PG_A), true);
	s1_map(self, 1, S1_DST, IPA(PG_D), true);
	s1_write_cd(self, 0, 1, ASID(1));
	{
		struct cmd c[] = {
			{ CMD_CFGI_CD | CMD0_SID(VSID), CMD1_LEAF },
		};

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 1,
					&done));
		EXPECT_EQ(1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_D));

	/* CFGI_CD_ALL: the original CD, whose ASID maps S1_DST -> C. */
	s1_write_cd(self, 0, 0, ASID(0));
	{
		struct cmd c[] = { { CMD_CFGI_CD_ALL | CMD0_SID(VSID), 0 } };

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 1,
					&done));
		EXPECT_EQ(1, done);
	}
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_C));

	/* Several in one call, all counted. */
	{
		struct cmd c[] = {
			tlbi_va(ASID(0), S1_SRC),
			{ CMD_TLBI_NH_ASID | CMD0_ASID(ASID(1)), 0 },
			{ CMD_TLBI_NH_ALL, 0 },
			{ CMD_CFGI_CD | CMD0_SID(VSID), CMD1_LEAF },
			{ CMD_CFGI_CD_ALL | CMD0_SID(VSID), 0 },
		};

		ASSERT_EQ(0, invalidate(self->iommufd, self->viommu, c, 5,
					&done));
		EXPECT_EQ(5, done);
	}

	/* CMD_SYNC is the kernel's: refused, after the one before it. */
	{
		struct cmd c[] = { tlbi_va(ASID(0), S1_DST), sync };

		EXPECT_ERRNO(EIO, invalidate(self->iommufd, self->viommu, c, 2,
					     &done));
		EXPECT_EQ(1, done);
		EXPECT_ERRNO(EIO, invalidate(self->iommufd, self->viommu,
					     &sync, 1, &done));
		EXPECT_EQ(0, done);
	}
	/* A vSID without a vDEVICE, a bit no opcode allows. */
	{
		struct cmd c[] = {
			{ CMD_CFGI_CD | CMD0_SID(0x99), CMD1_LEAF },
		};
		struct cmd r = tlbi_va(ASID(0), S1_DST);

		EXPECT_ERRNO(EIO, invalidate(self->iommufd, self->viommu, c, 1,
					     &done));
		EXPECT_EQ(0, done);
		r.w0 |= 1ULL << 8;
		EXPECT_ERRNO(EIO, invalidate(self->iommufd, self->viommu, &r, 1,
					     &done));
		EXPECT_EQ(0, done);
	}
	/* Entries of another format. */
	{
		struct cmd c[] = { tlbi_va(ASID(0), S1_DST) };

		EXPECT_ERRNO(EINVAL,
			     invalidate_type(self->iommufd, self->viommu,
					     IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
					     c, 1, &done));
		EXPECT_EQ(0, done);
	}
	/*
	 * More entries than one call may carry (upstream's bound, 2^19, keeps
	 * a call from pinning the CPU and the command array from outgrowing
	 * memory): EINVAL before the driver sees any.
	 */
	{
		struct iommu_viommu_arm_smmuv3_invalidate e = {};
		struct iommu_hwpt_invalidate cmd = {
			.size = sizeof(cmd),
			.hwpt_id = self->viommu,
			.data_uptr = (uintptr_t)&e,
			.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
			.entry_len = sizeof(e),
			.entry_num = (1U << 19) + 1,
		};

		EXPECT_ERRNO(EINVAL, ioctl(self->iommufd,
					   IOMMU_HWPT_INVALIDATE, &cmd));
		EXPECT_EQ(0, cmd.entry_num);
	}

	/* The refused commands changed nothing. */
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_C));
}

/*
 * A write through a hole in stage 1 reaches nothing and arrives as
 * F_TRANSLATION records with the vSID; through a read-only PTE the same as
 * F_PERMISSION, while reading that page works.
 */
TEST_F_TIMEOUT(smmuv3, fault_to_veventq, 600)
{
	struct rec r[REC_MAX];
	uint32_t q;
	int n, kfd;

	NEED_VIOMMU();
	nest_translate(_metadata, self);
	kfd = kmsg_open();
	ASSERT_LE(0, kfd);

	/*
	 * With nowhere to forward them, stage-1 events are the host's: the
	 * SMMU driver logs them. This shows the log check below can see them.
	 * The driver logs events under the kernel's default rate limit (10 in
	 * 5 s), which faults of an earlier suite may have used up: wait out
	 * one window first.
	 */
	sleep(EVENT_LOG_WINDOW_S);
	write_nowhere(_metadata, self, S1_HOLE, FAULT_LEN);
	usleep(EVENT_SETTLE_US);
	EXPECT_LT(0, kmsg_matching(_metadata, kfd, fault_line))
		TH_LOG("a stage-1 fault without a vEVENTQ was not logged");

	ASSERT_EQ(0, veventq_alloc(self->iommufd, self->viommu, REC_MAX, &q,
				   &self->qfd));
	EXPECT_EQ(0, readable(self->qfd, 0));

	write_nowhere(_metadata, self, S1_HOLE, FAULT_LEN);
	n = collect(self->qfd, r, REC_MAX);
	ASSERT_EQ(FAULT_EVENTS, n) TH_LOG("a write of %d bytes to a hole",
					  FAULT_LEN);
	expect_faults(_metadata, r, n, 0, EVT_F_TRANSLATION, S1_HOLE,
		      FAULT_LEN);
	STEP("edu wrote %d bytes to IOVA %#llx, a hole in stage 1: nothing written; vEVENTQ %u got %d F_TRANSLATION records, the first %016llx %016llx %016llx (vSID %#x in place of the SID)",
	     FAULT_LEN, (unsigned long long)S1_HOLE, q, n,
	     (unsigned long long)r[0].evt[0], (unsigned long long)r[0].evt[1],
	     (unsigned long long)r[0].evt[2], VSID);
	/* That was all of them, and they went to the guest, not the log. */
	usleep(EVENT_SETTLE_US);
	EXPECT_EQ(0, readable(self->qfd, 0));
	EXPECT_EQ(0, kmsg_matching(_metadata, kfd, fault_line))
		TH_LOG("forwarded stage-1 events were logged by the host");
	close(kfd);

	/* A read-only page: readable, not writable. */
	s1_map(self, 0, S1_RO, IPA(PG_D), false);
	write_nowhere(_metadata, self, S1_RO, FAULT_LEN);
	n = collect(self->qfd, r, REC_MAX);
	ASSERT_LE(1, n);
	EXPECT_GE(FAULT_EVENTS, n);
	expect_faults(_metadata, r, n, FAULT_EVENTS, EVT_F_PERMISSION, S1_RO,
		      FAULT_LEN);
	copy_check(_metadata, self, S1_RO, IPA(PG_D), S1_DST, IPA(PG_B));
	EXPECT_EQ(0, readable(self->qfd, 0));

	/* The queue holds the vIOMMU, its file holds the queue. */
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, q));
	close_fd(&self->qfd);
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, self->nested));
	EXPECT_EQ(0, destroy(self->iommufd, self->vdev));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->viommu));
	EXPECT_EQ(0, destroy(self->iommufd, q));
	EXPECT_EQ(0, destroy(self->iommufd, self->viommu));
}

/*
 * A queue of two and bursts of 16 faults. Every reported event takes the
 * next sequence number, queued or not; with the queue full a dropped event
 * moves the LOST_EVENTS header (no payload) to the end of the queue with its
 * number, so a reader gets the two queued events and then one header
 * numbered like the last dropped event. Once drained, the numbers go on
 * after it, and an event that fits is queued without a header.
 */
TEST_F_TIMEOUT(smmuv3, veventq_overflow, 600)
{
	const uint32_t depth = 2;
	struct rec r[REC_MAX];
	uint32_t q, seq = 0;
	int n;

	NEED_VIOMMU();
	nest_translate(_metadata, self);
	ASSERT_EQ(0, veventq_alloc(self->iommufd, self->viommu, depth, &q,
				   &self->qfd));

	for (int burst = 0; burst < 2; burst++) {
		write_nowhere(_metadata, self, S1_HOLE, FAULT_LEN);
		n = collect(self->qfd, r, REC_MAX);
		ASSERT_EQ(depth + 1, n) TH_LOG("burst %d", burst);
		expect_faults(_metadata, r, depth, seq, EVT_F_TRANSLATION,
			      S1_HOLE, FAULT_LEN);
		EXPECT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, r[depth].flags);
		EXPECT_FALSE(r[depth].data);
		EXPECT_EQ(seq + FAULT_EVENTS - 1, r[depth].seq);
		seq += FAULT_EVENTS;
		EXPECT_EQ(0, readable(self->qfd, 0));
	}

	/* One 4-byte write: one event, queued, numbered after the last drop. */
	write_nowhere(_metadata, self, S1_HOLE, 4);
	n = collect(self->qfd, r, REC_MAX);
	ASSERT_EQ(1, n);
	expect_faults(_metadata, r, 1, seq, EVT_F_TRANSLATION, S1_HOLE, 4);
}

/*
 * The other vSTE configurations: abort (nothing reaches memory, not even
 * with the IPA as address), bypass (stage 2 only: the IPA is the address,
 * and an S1 IOVA lands in the decoy at the same IPA), and a non-valid vSTE,
 * which is accepted and aborts.
 */
TEST_F_TIMEOUT(smmuv3, abort_and_bypass, 600)
{
	uint32_t abrt, bypass, invalid, s1, pt;

	NEED_VIOMMU();
	/* Stage 1 ready, so that only the vSTE decides. */
	s1_init(self, 0);
	s1_map(self, 0, S1_SRC, IPA(PG_A), true);
	s1_map(self, 0, S1_DST, IPA(PG_B), true);
	ASSERT_EQ(0, vdev_alloc(self->iommufd, self->viommu, self->devid, VSID,
				&self->vdev));

	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, self->viommu,
				  STE0_V | STE0_CFG(CFG_ABORT), 0, &abrt));
	pt = abrt;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	expect_ste(_metadata, self->bdf, self->viommu, VSID, CFG_ABORT, 0);
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_B), 0);
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, 0);

	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, self->viommu,
				  STE0_V | STE0_CFG(CFG_BYPASS), 0, &bypass));
	pt = bypass;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	EXPECT_EQ(0, destroy(self->iommufd, abrt));
	expect_ste(_metadata, self->bdf, self->viommu, VSID, CFG_S2, 0);
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_B),
		   IPA(PG_B));
	copy_check(_metadata, self, IPA(PG_C), IPA(PG_C), S1_DST, S1_DST);

	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, self->viommu, 0,
				  0, &invalid));
	pt = invalid;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	EXPECT_EQ(0, destroy(self->iommufd, bypass));
	expect_ste(_metadata, self->bdf, self->viommu, VSID, CFG_ABORT, 0);
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_B), 0);
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, 0);

	/* The same device translates through stage 1 again. */
	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, self->viommu,
				  vste0_s1(0), VSTE1_S1, &s1));
	pt = s1;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	EXPECT_EQ(0, destroy(self->iommufd, invalid));
	expect_ste(_metadata, self->bdf, self->viommu, VSID, CFG_NESTED,
		   cd_ipa(0));
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, s1));
}

/*
 * Two devices in their own groups on one vIOMMU share its VMID; moved to a
 * second vIOMMU on the same parent, the second device gets that one's VMID,
 * a different one. Each device translates through its own nested HWPT: the
 * same S1 IOVA leads to B for the first and to D for the second.
 */
TEST_F_TIMEOUT(smmuv3, vmid_sharing, 600)
{
	char bdf2[NAME_MAX + 1], cdev2[NAME_MAX + 32];
	struct edu_dev dev1, dev2 = { .fd = -1 };
	uint32_t devid2, vdev2, nested2, viommu2, pt;
	struct ste_line l1, l2;
	long vmid1, vmid2;
	int fd2;

	NEED_VIOMMU();
	for (int i = 0;; i++) {
		if (!find_edu_nth(i, bdf2, sizeof(bdf2)))
			SKIP(return, "no second edu device in a group of its own");
		if (strcmp(bdf2, self->bdf) && group_size(bdf2) == 1 &&
		    iommu_group_of(bdf2) != iommu_group_of(self->bdf))
			break;
	}
	ASSERT_EQ(0, bind_vfio_pci(bdf2));
	ASSERT_EQ(0, find_cdev(bdf2, cdev2, sizeof(cdev2)));

	/*
	 * Each device transfers right after its attach, before the next one
	 * is bound (QEMU can otherwise leave a device that has not done DMA
	 * yet translating nothing, see iommufd_vfio_edu).
	 */
	nest_translate(_metadata, self);

	s1_init(self, 1);
	s1_map(self, 1, S1_SRC, IPA(PG_A), true);
	s1_map(self, 1, S1_DST, IPA(PG_D), true);
	fd2 = open(cdev2, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, dev_bind(fd2, self->iommufd, &devid2));
	ASSERT_EQ(0, vdev_alloc(self->iommufd, self->viommu, devid2, VSID2,
				&vdev2));
	ASSERT_EQ(0, nested_alloc(self->iommufd, devid2, self->viommu,
				  vste0_s1(1), VSTE1_S1, &nested2));
	pt = nested2;
	ASSERT_EQ(0, dev_attach(fd2, &pt));
	edu_enable(_metadata, &dev2, fd2);
	/* The DMA helpers drive self->dev: the second device takes turns. */
	dev1 = self->dev;
	self->dev = dev2;
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_D));
	self->dev = dev1;
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));

	if (have_debugfs()) {
		vmid1 = dbg_vmid(self->viommu);
		ASSERT_LE(0, vmid1)
			TH_LOG("no viommu line for %u", self->viommu);
		ASSERT_TRUE(dbg_vdev(self->bdf, &l1));
		ASSERT_TRUE(dbg_vdev(bdf2, &l2));
		TH_LOG("vIOMMU %u: vmid %ld; %s sid %#x S2VMID %llu, %s sid %#x S2VMID %llu",
		       self->viommu, vmid1, self->bdf, l1.sid,
		       (unsigned long long)STE2_S2VMID(l1.ste[2]), bdf2, l2.sid,
		       (unsigned long long)STE2_S2VMID(l2.ste[2]));
		EXPECT_EQ(self->viommu, l1.viommu);
		EXPECT_EQ(self->viommu, l2.viommu);
		EXPECT_EQ(VSID, l1.vsid);
		EXPECT_EQ(VSID2, l2.vsid);
		EXPECT_NE(l1.sid, l2.sid);
		EXPECT_EQ(vmid1, (long)STE2_S2VMID(l1.ste[2]));
		EXPECT_EQ(vmid1, (long)STE2_S2VMID(l2.ste[2]));
		EXPECT_EQ(CFG_NESTED, STE0_CFG_OF(l1.ste[0]));
		EXPECT_EQ(CFG_NESTED, STE0_CFG_OF(l2.ste[0]));
		EXPECT_EQ(cd_ipa(0), STE0_CTXPTR(l1.ste[0]));
		EXPECT_EQ(cd_ipa(1), STE0_CTXPTR(l2.ste[0]));
	}

	/* The second device moves to a second vIOMMU of the same parent. */
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, nested2));
	ASSERT_EQ(0, dev_detach(fd2));
	ASSERT_EQ(0, destroy(self->iommufd, nested2));
	ASSERT_EQ(0, destroy(self->iommufd, vdev2));
	if (have_debugfs())
		EXPECT_FALSE(dbg_vdev(bdf2, &l2));
	ASSERT_EQ(0, viommu_alloc(self->iommufd, devid2, self->parent,
				  &viommu2));
	EXPECT_NE(self->viommu, viommu2);
	ASSERT_EQ(0, vdev_alloc(self->iommufd, viommu2, devid2, VSID2, &vdev2));
	ASSERT_EQ(0, nested_alloc(self->iommufd, devid2, viommu2, vste0_s1(1),
				  VSTE1_S1, &nested2));
	pt = nested2;
	ASSERT_EQ(0, dev_attach(fd2, &pt));
	self->dev = dev2;
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_D));
	self->dev = dev1;
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));

	if (have_debugfs()) {
		vmid1 = dbg_vmid(self->viommu);
		vmid2 = dbg_vmid(viommu2);
		ASSERT_LE(0, vmid2) TH_LOG("no viommu line for %u", viommu2);
		ASSERT_TRUE(dbg_vdev(self->bdf, &l1));
		ASSERT_TRUE(dbg_vdev(bdf2, &l2));
		TH_LOG("vIOMMU %u: vmid %ld, vIOMMU %u: vmid %ld", self->viommu,
		       vmid1, viommu2, vmid2);
		EXPECT_NE(vmid1, vmid2);
		EXPECT_EQ(viommu2, l2.viommu);
		EXPECT_EQ(vmid1, (long)STE2_S2VMID(l1.ste[2]));
		EXPECT_EQ(vmid2, (long)STE2_S2VMID(l2.ste[2]));
	}

	/*
	 * An IOAS unmap invalidates the parent's stage 2, and must reach the
	 * VMIDs of both vIOMMUs: each device reads a page through stage 1 (its
	 * VMID's TLB now holds the translation), the page's stage-2 backing is
	 * replaced, and each device must then read the new backing.
	 */
	{
		uint8_t *alt[2];
		uint64_t unmapped;

		for (int i = 0; i < 2; i++) {
			alt[i] = mmap(NULL, XFER, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			ASSERT_NE(MAP_FAILED, alt[i]);
			fill_pattern(alt[i], XFER);
		}
		ASSERT_EQ(0, map_fixed(self->iommufd, self->ioas, S2_SWAP_IPA,
				       alt[0], XFER));
		s1_map(self, 0, S1_SWAP, S2_SWAP_IPA, true);
		s1_map(self, 1, S1_SWAP, S2_SWAP_IPA, true);
		for (int round = 0; round < 2; round++) {
			if (round) {
				ASSERT_EQ(0, unmap_iova(self->iommufd,
							self->ioas,
							S2_SWAP_IPA, XFER,
							&unmapped));
				EXPECT_EQ(XFER, unmapped);
				ASSERT_EQ(0, map_fixed(self->iommufd,
						       self->ioas, S2_SWAP_IPA,
						       alt[1], XFER));
			}
			for (int d = 0; d < 2; d++) {
				uint64_t dst = IPA(d ? PG_D : PG_B);

				self->dev = d ? dev2 : dev1;
				memset(ptr_of(self, dst), 0, XFER);
				ASSERT_EQ(0, dma_in(&self->dev, S1_SWAP));
				ASSERT_EQ(0, dma_out(&self->dev, S1_DST, 0));
				EXPECT_EQ(0, memcmp(ptr_of(self, dst),
						    alt[round], XFER))
					TH_LOG("device %d (vIOMMU %u) read %s backing of IPA %#llx",
					       d + 1, d ? viommu2 : self->viommu,
					       round ? "a stale" : "the wrong",
					       S2_SWAP_IPA);
			}
		}
		self->dev = dev1;
		EXPECT_EQ(0, unmap_iova(self->iommufd, self->ioas, S2_SWAP_IPA,
					XFER, &unmapped));
		for (int i = 0; i < 2; i++)
			munmap(alt[i], XFER);
	}

	/* Both vIOMMUs hold the parent; the second goes with its objects. */
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, viommu2));
	ASSERT_EQ(0, dev_detach(fd2));
	EXPECT_EQ(0, destroy(self->iommufd, nested2));
	EXPECT_EQ(0, destroy(self->iommufd, vdev2));
	EXPECT_EQ(0, destroy(self->iommufd, viommu2));
	if (have_debugfs())
		EXPECT_EQ(-1, dbg_vmid(viommu2));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, self->parent));
	edu_unmap_bar(&dev2);
	close(fd2);

	if (!have_debugfs() && _metadata->exit_code == KSFT_PASS)
		SKIP(return, "both devices translated; the VMIDs are not checked without %s",
		     SMMU_DEBUGFS);
}

/*
 * What a vSTE may not hold is EIO: anything outside the stage-1 fields,
 * a Config other than abort, bypass and S1 translate, an EATS other than
 * abort and translate (upstream's rules). Data that is not a vSTE is refused by the
 * core's rules for driver data (EINVAL, or EOPNOTSUPP without any data).
 */
TEST_F_TIMEOUT(smmuv3, vste_refusals, 300)
{
	const uint64_t s0 = vste0_s1(0), s1 = VSTE1_S1;
	const struct {
		const char *what;
		uint64_t ste0, ste1;
	} bad[] = {
		{ "Config 0b001", STE0_V | STE0_CFG(1), 0 },
		{ "Config 0b010", STE0_V | STE0_CFG(2), 0 },
		{ "Config 0b011", STE0_V | STE0_CFG(3), 0 },
		{ "Config 0b110 (stage 2)", STE0_V | STE0_CFG(CFG_S2), 0 },
		{ "Config 0b111 (nested)", STE0_V | STE0_CFG(CFG_NESTED), 0 },
		{ "ste[0] bit 52", s0 | 1ULL << 52, s1 },
		{ "ste[0] bit 58", s0 | 1ULL << 58, s1 },
		{ "ste[1] bit 8", s0, s1 | 1ULL << 8 },
		{ "ste[1] MEV", s0, s1 | STE1_MEV },
		{ "ste[1] S2FWB", s0, s1 | STE1_S2FWB },
		{ "ste[1] SHCFG", s0, s1 | STE1_SHCFG(1) },
		{ "ste[1] bit 63", s0, s1 | 1ULL << 63 },
		{ "EATS 0b10", s0, s1 | STE1_EATS(2) },
		{ "EATS 0b11", s0, s1 | STE1_EATS(3) },
	};
	struct iommu_hwpt_arm_smmuv3 vste[2] = {
		{ .ste = { htole64(s0), htole64(s1) } },
	};
	uint32_t id;

	NEED_VIOMMU();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, nested_alloc(self->iommufd, self->devid,
					   self->viommu, bad[i].ste0,
					   bad[i].ste1, &id))
			TH_LOG("%s was accepted", bad[i].what);
		EXPECT_EQ(EIO, errno) TH_LOG("%s: %s", bad[i].what,
					     strerror(errno));
	}

	/* Not a vSTE: another type, no data, too short or too long. */
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0,
					     IOMMU_HWPT_DATA_VTD_S1, vste,
					     sizeof(vste[0]), &id));
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0, 0x7f, vste,
					     sizeof(vste[0]), &id));
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0,
					     IOMMU_HWPT_DATA_NONE, vste,
					     sizeof(vste[0]), &id));
	EXPECT_ERRNO(EOPNOTSUPP, hwpt_alloc_data(self->iommufd, self->devid,
						 self->viommu, 0,
						 IOMMU_HWPT_DATA_NONE, NULL, 0,
						 &id));
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0,
					     IOMMU_HWPT_DATA_ARM_SMMUV3, vste,
					     0, &id));
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0,
					     IOMMU_HWPT_DATA_ARM_SMMUV3, vste,
					     8, &id));
	EXPECT_ERRNO(EINVAL, hwpt_alloc_data(self->iommufd, self->devid,
					     self->viommu, 0,
					     IOMMU_HWPT_DATA_ARM_SMMUV3, vste,
					     sizeof(vste[0]) + 8, &id));
	/* A nested HWPT is no parent and tracks no dirt. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     hwpt_alloc_data(self->iommufd, self->devid, self->viommu,
				     IOMMU_HWPT_ALLOC_NEST_PARENT,
				     IOMMU_HWPT_DATA_ARM_SMMUV3, vste,
				     sizeof(vste[0]), &id));
	EXPECT_ERRNO(EOPNOTSUPP,
		     hwpt_alloc_data(self->iommufd, self->devid, self->viommu,
				     IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     IOMMU_HWPT_DATA_ARM_SMMUV3, vste,
				     sizeof(vste[0]), &id));
	/* The SMMUv3 makes nested HWPTs on a vIOMMU only. */
	EXPECT_ERRNO(EOPNOTSUPP, hwpt_alloc_data(self->iommufd, self->devid,
						 self->parent, 0,
						 IOMMU_HWPT_DATA_ARM_SMMUV3,
						 vste, sizeof(vste[0]), &id));

	/* What is allowed is still accepted. */
	{
		const uint64_t good[][2] = {
			{ s0, s1 },
			{ s0, 0 },
			/*
			 * Fields upstream's SMMUv3 driver lets through (QEMU
			 * only refuses them once it walks the STE): more CDs,
			 * stall disabled, ATS translated, and a vSTE without V
			 * whatever else it holds (it reads as zero).
			 */
			{ s0 | STE0_S1CDMAX(1), s1 },
			{ s0 | STE0_S1CDMAX(31), s1 },
			{ s0, s1 | STE1_S1STALLD },
			{ s0, s1 | STE1_EATS(1) },
			{ (s0 & ~STE0_V) | 1ULL << 52, 1ULL << 63 },
			{ STE0_V | STE0_CFG(CFG_ABORT), 0 },
			{ STE0_V | STE0_CFG(CFG_BYPASS), 0 },
			{ 0, 0 },
		};

		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid,
						  self->viommu, good[i][0],
						  good[i][1], &id))
				TH_LOG("vSTE %zu: %s", i, strerror(errno));
			EXPECT_EQ(0, destroy(self->iommufd, id));
		}
	}

	/* The refused allocations left nothing holding the vIOMMU. */
	EXPECT_EQ(0, destroy(self->iommufd, self->viommu));
	EXPECT_EQ(0, destroy(self->iommufd, self->parent));
	EXPECT_EQ(0, destroy(self->iommufd, self->ioas));
}

/* Everything of one nesting set-up, attached, with a vEVENTQ. */
struct stack {
	uint32_t ioas, parent, viommu, vdev, nested, q;
	int qfd;
};

static void stack_up(struct __test_metadata *_metadata,
		     FIXTURE_DATA(smmuv3) *self, struct stack *s)
{
	uint32_t pt;

	stage2(_metadata, self, &s->ioas, &s->parent);
	ASSERT_EQ(0, viommu_alloc(self->iommufd, self->devid, s->parent,
				  &s->viommu));
	ASSERT_EQ(0, vdev_alloc(self->iommufd, s->viommu, self->devid, VSID,
				&s->vdev));
	ASSERT_EQ(0, nested_alloc(self->iommufd, self->devid, s->viommu,
				  vste0_s1(0), VSTE1_S1, &s->nested));
	ASSERT_EQ(0, veventq_alloc(self->iommufd, s->viommu, 8, &s->q,
				   &s->qfd));
	pt = s->nested;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST, IPA(PG_B));
}

/* While the device uses the stack, nothing under it can go. */
static void expect_busy(struct __test_metadata *_metadata,
			FIXTURE_DATA(smmuv3) *self, const struct stack *s)
{
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->nested));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->viommu));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->parent));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->ioas));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->q));
}

static void close_queue(struct __test_metadata *_metadata,
			FIXTURE_DATA(smmuv3) *self, struct stack *s)
{
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s->q));
	close_fd(&s->qfd);
	EXPECT_EQ(0, destroy(self->iommufd, s->q));
}

TEST_F_TIMEOUT(smmuv3, destroy_orders, 900)
{
	struct stack s;
	uint32_t ioas, pt;

	NEED_VIOMMU();
	s1_init(self, 0);
	s1_map(self, 0, S1_SRC, IPA(PG_A), true);
	s1_map(self, 0, S1_DST, IPA(PG_B), true);
	/* The fixture's own objects are not needed here. */
	ASSERT_EQ(0, destroy(self->iommufd, self->viommu));
	ASSERT_EQ(0, destroy(self->iommufd, self->parent));
	ASSERT_EQ(0, destroy(self->iommufd, self->ioas));

	/* 1: detach; nested HWPT, vDEVICE, vEVENTQ, vIOMMU, parent, IOAS. */
	stack_up(_metadata, self, &s);
	expect_busy(_metadata, self, &s);
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, s.nested));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.viommu));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.parent));
	EXPECT_EQ(0, destroy(self->iommufd, s.vdev));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.viommu));	/* the queue */
	close_queue(_metadata, self, &s);
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.ioas));
	EXPECT_EQ(0, destroy(self->iommufd, s.viommu));
	EXPECT_EQ(0, destroy(self->iommufd, s.parent));
	EXPECT_EQ(0, destroy(self->iommufd, s.ioas));

	/* 2: vEVENTQ while attached; detach; vDEVICE before the HWPT. */
	stack_up(_metadata, self, &s);
	close_queue(_metadata, self, &s);
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, s.vdev));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.viommu));	/* the HWPT */
	EXPECT_EQ(0, destroy(self->iommufd, s.nested));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.ioas));
	EXPECT_EQ(0, destroy(self->iommufd, s.viommu));
	EXPECT_EQ(0, destroy(self->iommufd, s.parent));
	EXPECT_EQ(0, destroy(self->iommufd, s.ioas));

	/*
	 * 3: replaced onto the parent itself (stage 2 only, the IPA is the
	 * address); the vIOMMU side goes first, the parent once detached.
	 */
	stack_up(_metadata, self, &s);
	pt = s.parent;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_C),
		   IPA(PG_C));
	EXPECT_EQ(0, destroy(self->iommufd, s.nested));
	EXPECT_EQ(0, destroy(self->iommufd, s.vdev));
	close_queue(_metadata, self, &s);
	EXPECT_EQ(0, destroy(self->iommufd, s.viommu));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.parent));	/* attached */
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, s.parent));
	EXPECT_EQ(0, destroy(self->iommufd, s.ioas));

	/*
	 * 4: replaced onto the IOAS (an automatic HWPT): the whole nesting
	 * stack goes, the IOAS only after the detach.
	 */
	stack_up(_metadata, self, &s);
	pt = s.ioas;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_D),
		   IPA(PG_D));
	close_queue(_metadata, self, &s);
	EXPECT_EQ(0, destroy(self->iommufd, s.vdev));
	EXPECT_EQ(0, destroy(self->iommufd, s.nested));
	EXPECT_EQ(0, destroy(self->iommufd, s.viommu));
	EXPECT_EQ(0, destroy(self->iommufd, s.parent));
	EXPECT_ERRNO(EBUSY, destroy(self->iommufd, s.ioas));
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, s.ioas));

	/*
	 * 5 and 6: the files closed with everything alive and faults queued,
	 * the iommufd first (the device and the queue keep the context, the
	 * translation keeps working), or the device first.
	 */
	for (int round = 0; round < 2; round++) {
		stack_up(_metadata, self, &s);
		write_nowhere(_metadata, self, S1_HOLE, FAULT_LEN);
		ASSERT_EQ(1, readable(s.qfd, EVENT_TIMEOUT_MS));
		if (round == 0) {
			close_fd(&self->iommufd);
			copy_check(_metadata, self, S1_SRC, IPA(PG_A), S1_DST,
				   IPA(PG_B));
			edu_unmap_bar(&self->dev);
			close_fd(&self->devfd);
			close_fd(&s.qfd);
		} else {
			edu_unmap_bar(&self->dev);
			close_fd(&self->devfd);
			close_fd(&s.qfd);
			close_fd(&self->iommufd);
		}
		EXPECT_EQ(0, vm_pin_kb()) TH_LOG("round %d", round);

		/* A fresh open: the device does plain paging DMA again. */
		self->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->iommufd);
		self->devfd = open(self->cdev, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->devfd);
		ASSERT_EQ(0, dev_bind(self->devfd, self->iommufd,
				      &self->devid));
		ASSERT_EQ(0, ioas_alloc(self->iommufd, &ioas));
		ASSERT_EQ(0, map_fixed(self->iommufd, ioas, IPA_BASE,
				       self->region, self->region_len));
		ASSERT_EQ(0, map_fixed(self->iommufd, ioas, DECOY_IPA,
				       self->decoy, self->decoy_len));
		pt = ioas;
		ASSERT_EQ(0, dev_attach(self->devfd, &pt));
		edu_enable(_metadata, &self->dev, self->devfd);
		copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_C),
			   IPA(PG_C));
		ASSERT_EQ(0, dev_detach(self->devfd));
		EXPECT_EQ(0, destroy(self->iommufd, ioas));
	}
}

/*
 * Where nesting must be refused (no S2FWB, no CANWBS, no opt-in): the
 * parent is made and works as a plain stage 2, the vIOMMU is EOPNOTSUPP and
 * leaves nothing behind.
 */
TEST_F_TIMEOUT(smmuv3, refusal, 300)
{
	uint32_t id, pt;

	if (self->viommu)
		SKIP(return, "the vIOMMU was allocated (%s): nothing to refuse",
		     optin_on() ? "allow_noncoherent_nesting=1" :
				  "the SMMU has S2FWB");
	TH_LOG("%s", self->refused);
	EXPECT_ERRNO(EOPNOTSUPP, viommu_alloc(self->iommufd, self->devid,
					      self->parent, &id));
	/* No vIOMMU id: a vDEVICE has nothing to go on. */
	EXPECT_ERRNO(ENOENT, vdev_alloc(self->iommufd, self->parent + 1000,
					self->devid, VSID, &id));

	pt = self->parent;
	ASSERT_EQ(0, dev_attach(self->devfd, &pt));
	copy_check(_metadata, self, IPA(PG_A), IPA(PG_A), IPA(PG_B),
		   IPA(PG_B));
	ASSERT_EQ(0, dev_detach(self->devfd));
	EXPECT_EQ(0, destroy(self->iommufd, self->parent));
	EXPECT_EQ(0, destroy(self->iommufd, self->ioas));
}

TEST_HARNESS_MAIN
