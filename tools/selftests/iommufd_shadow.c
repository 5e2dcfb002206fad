// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow nesting on the selftest mock IOMMU: a nested HWPT of type
 * IOMMU_HWPT_DATA_VTD_S1 on a mock nest parent, which the mock cannot serve
 * itself, is served by the core's shadow engine when iommufd_rs is loaded
 * with shadow_nesting=1 (the environment says so: SHADOW_NESTING=1).
 * Without the opt-in the allocation is EOPNOTSUPP, as with the C iommufd.
 *
 * The program plays the guest. Its "guest memory" is a buffer mapped into
 * the IOAS in 1 MiB chunks at guest physical addresses (GPAs, the IOAS's
 * IOVAs) from 16 MiB (the mock aperture's start); its stage-1 table is an
 * x86-64 4-level table in that memory. The shadow's translation of an IOVA
 * is read with this module's test op SHADOW_XLATE, which compares the
 * shadow's records and its mock domain with the page of a user address.
 *
 *  - vtd_s1_on_mock: the refusal without the opt-in, the allocation with it;
 *  - bad_input: descriptions and invalidations that are refused, with
 *    the driver's errnos;
 *  - translate: caching-mode semantics, stage-2 unmap and map under live
 *    leaves, read-only stage 1 and stage 2, 2 MiB and 1 GiB leaves;
 *  - table_leaves_ioas: a table page unmapped from the IOAS empties what
 *    is under it at the next walk;
 *  - limits: a walk past the table or leaf limit fails (E2BIG, ENOSPC) and
 *    leaves the shadow as it was;
 *  - model: seeded random sequences of stage-1 changes, invalidations and
 *    IOAS map/unmap; after every step a reference walker's translation of
 *    sampled IOVAs equals the shadow's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "iommu/iommufd_utils.h"

/* The module's own test op (drivers/selftest.rs). */
#define TEST_OP_SHADOW_XLATE	1000
#define XLATE_NONE		0
#define XLATE_UPTR		1
#define XLATE_OTHER		2
#define XLATE_INCONSISTENT	3
#define PROT_R			1
#define PROT_W			2

struct xlate_cmd {
	__u32 size;
	__u32 op;
	__u32 id;
	__u32 reserved;
	__u64 iova;
	__u64 uptr;
	__u32 out_state;
	__u32 out_prot;
	__u8 rest[48 - 24];
	__u32 last;
	__u32 pad;
};
_Static_assert(sizeof(struct xlate_cmd) == sizeof(struct iommu_test_cmd),
	       "the test command's size");

#define KB		1024ULL
#define MB		(1024 * KB)
#define GB		(1024 * MB)
#define PG		(4 * KB)
#define G_BASE		(16 * MB)	/* first GPA */
#define CHUNK		MB
#define NCHUNK		32		/* GPAs [16 MiB, 48 MiB) */
#define NSLICE		(2 * NCHUNK)	/* buffer slices a chunk may map */
#define W4K		(64 * MB)	/* the 4 KiB / 2 MiB leaf window */
#define W4K_LEN		(64 * MB)
#define W1G		GB		/* the 1 GiB leaf: PDPT entry 1 */

#define PTE_P		(1ULL << 0)
#define PTE_RW		(1ULL << 1)
#define PTE_US		(1ULL << 2)
#define PTE_PS		(1ULL << 7)
#define PTE_ADDR	0x000ffffffffff000ULL

struct leaf {
	uint64_t iova, last, gpa;
	bool w;
};

#define MAX_REF		20000

FIXTURE(shadow)
{
	int fd;
	bool optin;
	__u32 ioas, stdev, hwpt, idev, parent, nested;
	uint8_t *buf;
	/* chunk -> slice (or -1), and whether it is writable */
	int slice[NCHUNK];
	bool chunk_w[NCHUNK];
	bool slice_used[NSLICE];
	/* the table pool: pages of chunk 0 */
	uint64_t root;
	int pool_next;
	uint64_t pool_free[256];
	int nfree;
	/* the reference cache: what the last invalidations saw */
	struct leaf *ref;
	int nref;
	uint64_t rng;
};

static uint64_t rnd(FIXTURE_DATA(shadow) *self)
{
	uint64_t x = self->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	self->rng = x;
	return x;
}

static bool optin_on(void)
{
	const char *v = getenv("SHADOW_NESTING");

	return v && !strcmp(v, "1");
}

/* The user address of a GPA, NULL where the IOAS maps nothing. */
static uint8_t *va_of(FIXTURE_DATA(shadow) *self, uint64_t gpa)
{
	uint64_t c;

	if (gpa < G_BASE || gpa >= G_BASE + NCHUNK * CHUNK)
		return NULL;
	c = (gpa - G_BASE) / CHUNK;
	if (self->slice[c] < 0)
		return NULL;
	return self->buf + self->slice[c] * CHUNK + (gpa - G_BASE) % CHUNK;
}

static int chunk_map(FIXTURE_DATA(shadow) *self, int c, int s, bool w)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 (w ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = self->ioas,
		.user_va = (uintptr_t)(self->buf + s * CHUNK),
		.length = CHUNK,
		.iova = G_BASE + c * CHUNK,
	};
	int rc = ioctl(self->fd, IOMMU_IOAS_MAP, &cmd);

	if (!rc) {
		self->slice[c] = s;
		self->slice_used[s] = true;
		self->chunk_w[c] = w;
	}
	return rc;
}

static int chunk_unmap(FIXTURE_DATA(shadow) *self, int c)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas,
		.iova = G_BASE + c * CHUNK,
		.length = CHUNK,
	};
	int rc = ioctl(self->fd, IOMMU_IOAS_UNMAP, &cmd);

	if (!rc) {
		self->slice_used[self->slice[c]] = false;
		self->slice[c] = -1;
	}
	return rc;
}

static uint64_t *entry(FIXTURE_DATA(shadow) *self, uint64_t table, int i)
{
	return (uint64_t *)va_of(self, table) + i;
}

static uint64_t table_alloc(FIXTURE_DATA(shadow) *self)
{
	uint64_t t;

	if (self->nfree)
		t = self->pool_free[--self->nfree];
	else if (self->pool_next < 256)
		t = G_BASE + PG * self->pool_next++;
	else
		return 0;
	memset(va_of(self, t), 0, PG);
	return t;
}

/* The table of the next level under entry i of table t, made if needed. */
static uint64_t next_table(FIXTURE_DATA(shadow) *self, uint64_t t, int i)
{
	uint64_t *e = entry(self, t, i), n;

	if ((*e & PTE_P) && !(*e & PTE_PS))
		return *e & PTE_ADDR;
	n = table_alloc(self);
	if (n)
		*e = n | PTE_P | PTE_RW | PTE_US;
	return n;
}

/* The leaf for iova of 4 KiB (level 0), 2 MiB (1) or 1 GiB (2). */
static int s1_set(FIXTURE_DATA(shadow) *self, uint64_t iova, int level,
		  uint64_t gpa, bool w)
{
	uint64_t t = self->root;

	for (int l = 3; l > level; l--) {
		t = next_table(self, t, (iova >> (12 + 9 * l)) & 511);
		if (!t)
			return -1;
	}
	/* A leaf in place of a table: the table page goes back to the pool. */
	{
		int i = (iova >> (12 + 9 * level)) & 511;
		uint64_t *e = entry(self, t, i);

		if (level > 0 && (*e & PTE_P) && !(*e & PTE_PS) &&
		    self->nfree < 256)
			self->pool_free[self->nfree++] = *e & PTE_ADDR;
		*e = gpa | PTE_P | PTE_US | (w ? PTE_RW : 0) |
		     (level ? PTE_PS : 0);
	}
	return 0;
}

/* Clears the entry that maps iova at its leaf's level, if any. */
static void s1_clear(FIXTURE_DATA(shadow) *self, uint64_t iova)
{
	uint64_t t = self->root;

	for (int l = 3; l >= 0; l--) {
		uint64_t *e = entry(self, t, (iova >> (12 + 9 * l)) & 511);

		if (!(*e & PTE_P))
			return;
		if (l == 0 || (*e & PTE_PS)) {
			*e = 0;
			return;
		}
		t = *e & PTE_ADDR;
		if (!va_of(self, t))
			return;
	}
}

/* --- the reference walker and cache -------------------------------------- */

static void ref_walk_table(FIXTURE_DATA(shadow) *self, uint64_t t, int level,
			   uint64_t base, uint64_t first, uint64_t last, bool w,
			   struct leaf *out, int *n, int max)
{
	int shift = 12 + 9 * level;
	int i0 = (first - base) >> shift, i1 = (last - base) >> shift;
	uint64_t *tab = (uint64_t *)va_of(self, t);

	if (!tab)
		return;		/* not readable: nothing under it */
	for (int i = i0; i <= i1; i++) {
		uint64_t e = tab[i], ef = base + ((uint64_t)i << shift);
		uint64_t el = ef + (1ULL << shift) - 1;

		if (!(e & PTE_P))
			continue;
		if (level == 3 && (e & PTE_PS))
			continue;
		if (level > 0 && !(e & PTE_PS)) {
			ref_walk_table(self, e & PTE_ADDR, level - 1, ef,
				       first > ef ? first : ef,
				       last < el ? last : el,
				       w && (e & PTE_RW), out, n, max);
			continue;
		}
		if (*n < max)
			out[(*n)++] = (struct leaf){
				.iova = ef,
				.last = el,
				.gpa = e & PTE_ADDR & ~((1ULL << shift) - 1),
				.w = w && (e & PTE_RW),
			};
	}
}

static bool meets(const struct leaf *l, uint64_t f, uint64_t la)
{
	return l->iova <= la && l->last >= f;
}

/* What the shadow does on an invalidation of [f, l] (design.md). */
static void ref_invalidate(FIXTURE_DATA(shadow) *self, uint64_t f, uint64_t l)
{
	static struct leaf fresh[MAX_REF];
	uint64_t top = (1ULL << 48) - 1, rf, rl;
	int n = 0, k = 0;

	if (l > top)
		l = top;
	for (int i = 0; i < self->nref; i++) {
		if (meets(&self->ref[i], f, l)) {
			if (self->ref[i].iova < f)
				f = self->ref[i].iova;
			if (self->ref[i].last > l)
				l = self->ref[i].last;
		}
	}
	ref_walk_table(self, self->root, 3, 0, f, l, true, fresh, &n, MAX_REF);
	rf = n && fresh[0].iova < f ? fresh[0].iova : f;
	rl = n && fresh[n - 1].last > l ? fresh[n - 1].last : l;
	for (int i = 0; i < self->nref; i++)
		if (!meets(&self->ref[i], rf, rl))
			self->ref[k++] = self->ref[i];
	self->nref = k;
	for (int i = 0; i < n && self->nref < MAX_REF; i++)
		self->ref[self->nref++] = fresh[i];
}

static int shadow_xlate(FIXTURE_DATA(shadow) *self, uint64_t iova, void *uptr,
			__u32 *state, __u32 *prot)
{
	struct xlate_cmd cmd = {
		.size = sizeof(cmd),
		.op = TEST_OP_SHADOW_XLATE,
		.id = self->nested,
		.iova = iova,
		.uptr = (uintptr_t)uptr,
	};
	int rc = ioctl(self->fd, IOMMU_TEST_CMD, &cmd);

	*state = cmd.out_state;
	*prot = cmd.out_prot;
	return rc;
}

/* The reference translation of iova: the user address and permissions. */
static uint8_t *ref_xlate(FIXTURE_DATA(shadow) *self, uint64_t iova,
			  __u32 *prot)
{
	for (int i = 0; i < self->nref; i++) {
		struct leaf *l = &self->ref[i];
		uint64_t gpa, c;
		uint8_t *va;

		if (iova < l->iova || iova > l->last)
			continue;
		gpa = l->gpa + (iova - l->iova);
		va = va_of(self, gpa);
		if (!va || iova < G_BASE || iova >= 2 * GB)
			return NULL;
		c = (gpa - G_BASE) / CHUNK;
		*prot = PROT_R | (l->w && self->chunk_w[c] ? PROT_W : 0);
		return va;
	}
	return NULL;
}

/* The shadow translates iova as the reference does; false (logged) if not. */
static bool check_iova(struct __test_metadata *_metadata,
		       FIXTURE_DATA(shadow) *self, uint64_t iova)
{
	__u32 want_prot = 0, state, prot;
	uint8_t *want = ref_xlate(self, iova, &want_prot);

	if (shadow_xlate(self, iova, want, &state, &prot)) {
		TH_LOG("SHADOW_XLATE %#llx: %s", (unsigned long long)iova,
		       strerror(errno));
		return false;
	}
	if (want ? state == XLATE_UPTR && prot == want_prot :
		   state == XLATE_NONE)
		return true;
	TH_LOG("IOVA %#llx: shadow state %u prot %u, reference %s prot %u",
	       (unsigned long long)iova, state, prot,
	       want ? "mapped" : "unmapped", want_prot);
	return false;
}

#define CHECK(iova) ASSERT_TRUE(check_iova(_metadata, self, iova))

static int nested_alloc(FIXTURE_DATA(shadow) *self, uint64_t pgtbl,
			uint32_t aw, uint64_t flags, __u32 *id)
{
	struct iommu_hwpt_vtd_s1 s1 = {
		.flags = flags,
		.pgtbl_addr = pgtbl,
		.addr_width = aw,
	};

	return _test_cmd_hwpt_alloc(self->fd, self->idev, self->parent, 0, 0,
				    id, IOMMU_HWPT_DATA_VTD_S1, &s1,
				    sizeof(s1));
}

static int inv(FIXTURE_DATA(shadow) *self, __u32 id, uint64_t addr,
	       uint64_t npages, __u32 flags, __u32 data_type, __u32 *done)
{
	struct iommu_hwpt_vtd_s1_invalidate e = {
		.addr = addr,
		.npages = npages,
		.flags = flags,
	};
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = id,
		.data_uptr = (uintptr_t)&e,
		.data_type = data_type,
		.entry_len = sizeof(e),
		.entry_num = 1,
	};
	int rc = ioctl(self->fd, IOMMU_HWPT_INVALIDATE, &cmd);

	if (done)
		*done = cmd.entry_num;
	return rc;
}

/* Invalidates [addr, addr + npages pages) and follows in the reference. */
static void invalidate(struct __test_metadata *_metadata,
		       FIXTURE_DATA(shadow) *self, uint64_t addr,
		       uint64_t npages)
{
	__u32 done;

	ASSERT_EQ(0, inv(self, self->nested, addr, npages, 0,
			 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done))
		TH_LOG("invalidate %#llx + %llu pages: %s",
		       (unsigned long long)addr, (unsigned long long)npages,
		       strerror(errno));
	ASSERT_EQ(1, done);
	if (npages == UINT64_MAX)
		ref_invalidate(self, 0, UINT64_MAX);
	else
		ref_invalidate(self, addr, addr + npages * PG - 1);
}

FIXTURE_SETUP(shadow)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	(void)buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	self->optin = optin_on();
	self->ref = calloc(MAX_REF, sizeof(*self->ref));
	ASSERT_NE(NULL, self->ref);
	self->buf = mmap(NULL, NSLICE * CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	test_ioctl_ioas_alloc(&self->ioas);
	ASSERT_EQ(0, _test_cmd_mock_domain(self->fd, self->ioas, &self->stdev,
					   &self->hwpt, &self->idev));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(self->fd, self->idev, self->ioas, 0,
					  IOMMU_HWPT_ALLOC_NEST_PARENT,
					  &self->parent, IOMMU_HWPT_DATA_NONE,
					  NULL, 0));
	for (int c = 0; c < NCHUNK; c++)
		self->slice[c] = -1;
	/* Chunk 0 holds the tables; the even chunks start mapped. */
	for (int c = 0; c < NCHUNK; c += 2)
		ASSERT_EQ(0, chunk_map(self, c, c, true));
	self->root = table_alloc(self);
	ASSERT_NE(0, self->root);
	self->rng = 0x9e3779b97f4a7c15ULL;
}

FIXTURE_TEARDOWN(shadow)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, NSLICE * CHUNK);
	free(self->ref);
}

/* The shadow needs the opt-in; without it the test checks the refusal. */
#define NEED_OPTIN()                                                    \
	do {                                                            \
		if (!self->optin)                                       \
			SKIP(return, "iommufd_rs without shadow_nesting=1 " \
				     "(vtd_s1_on_mock checks the refusal)"); \
	} while (0)

TEST_F(shadow, vtd_s1_on_mock)
{
	struct iommu_hwpt_selftest data = {
		.iotlb = IOMMU_TEST_IOTLB_DEFAULT,
	};
	__u32 id, state, prot;
	int rc = nested_alloc(self, self->root, 48, 0, &self->nested);

	if (!self->optin) {
		/* As the C iommufd: the mock has no VT-d stage 1. */
		ASSERT_EQ(-1, rc);
		ASSERT_EQ(EOPNOTSUPP, errno);
		return;
	}
	ASSERT_EQ(0, rc) TH_LOG("VTD_S1 on the mock: %s", strerror(errno));
	/* The device attaches to it and back; it is in use while attached. */
	test_cmd_mock_domain_replace(self->stdev, self->nested);
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->nested));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->parent));
	test_cmd_mock_domain_replace(self->stdev, self->ioas);
	ASSERT_EQ(0, _test_ioctl_destroy(self->fd, self->nested));
	/* A native mock nested HWPT on the same parent still is the mock's. */
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(self->fd, self->idev, self->parent,
					  0, 0, &id, IOMMU_HWPT_DATA_SELFTEST,
					  &data, sizeof(data)));
	self->nested = id;
	EXPECT_ERRNO(EINVAL, shadow_xlate(self, W4K, NULL, &state, &prot));
}

TEST_F(shadow, bad_input)
{
	__u32 id, done;

	NEED_OPTIN();
	EXPECT_ERRNO(EINVAL, nested_alloc(self, self->root, 39, 0, &id));
	EXPECT_ERRNO(EINVAL, nested_alloc(self, self->root, 56, 0, &id));
	EXPECT_ERRNO(EINVAL, nested_alloc(self, self->root + 8, 48, 0, &id));
	/* IOMMU_VTD_S1_EAFE: the shadow sets no accessed flags. */
	EXPECT_ERRNO(EINVAL, nested_alloc(self, self->root, 48, 1 << 1, &id));
	/* A paging HWPT that is no nest parent is EINVAL, as upstream. */
	{
		struct iommu_hwpt_vtd_s1 s1 = { .pgtbl_addr = self->root,
						.addr_width = 48 };

		EXPECT_ERRNO(EINVAL,
			     _test_cmd_hwpt_alloc(self->fd, self->idev,
						  self->hwpt, 0, 0, &id,
						  IOMMU_HWPT_DATA_VTD_S1, &s1,
						  sizeof(s1)));
	}
	ASSERT_EQ(0, nested_alloc(self, self->root, 48, 0, &self->nested));
	EXPECT_ERRNO(EINVAL, inv(self, self->nested, 0, 1, 0,
				 IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, &done));
	EXPECT_EQ(0, done);
	EXPECT_ERRNO(EOPNOTSUPP,
		     inv(self, self->nested, 0, 1, 1 << 1,
			 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_EQ(0, done);
	EXPECT_ERRNO(EINVAL, inv(self, self->nested, 0x800, 1, 0,
				 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_ERRNO(EINVAL, inv(self, self->nested, PG, UINT64_MAX, 0,
				 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	/* Zero pages is nothing to do; the leaf hint is accepted. */
	EXPECT_EQ(0, inv(self, self->nested, PG, 0, 0,
			 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_EQ(1, done);
	EXPECT_EQ(0, inv(self, self->nested, PG, 1, 1,
			 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_EQ(1, done);
}

TEST_F(shadow, translate)
{
	uint64_t a = W4K + 5 * PG, b = W4K + 9 * PG;
	__u32 state, prot;

	NEED_OPTIN();
	ASSERT_EQ(0, s1_set(self, a, 0, G_BASE + 2 * CHUNK + 3 * PG, true));
	ASSERT_EQ(0, nested_alloc(self, self->root, 48, 0, &self->nested));
	ref_invalidate(self, 0, UINT64_MAX);
	test_cmd_mock_domain_replace(self->stdev, self->nested);
	CHECK(a);
	CHECK(b);

	/* Caching mode: a new leaf counts after its invalidation only. */
	ASSERT_EQ(0, s1_set(self, b, 0, G_BASE + 4 * CHUNK, false));
	CHECK(b);
	ASSERT_EQ(0, shadow_xlate(self, b, NULL, &state, &prot));
	EXPECT_EQ(XLATE_NONE, state);
	invalidate(_metadata, self, b, 1);
	CHECK(b);
	CHECK(a);

	/* Stage-2 unmap under a live leaf: gone at once; map: back at once. */
	ASSERT_EQ(0, chunk_unmap(self, 2));
	CHECK(a);
	ASSERT_EQ(0, chunk_map(self, 2, 40, true));
	CHECK(a);
	/* Read-only stage 2 takes the write permission away. */
	ASSERT_EQ(0, chunk_unmap(self, 2));
	ASSERT_EQ(0, chunk_map(self, 2, 41, false));
	CHECK(a);

	/* A 2 MiB leaf over half-mapped GPAs; then a 1 GiB one. */
	ASSERT_EQ(0, s1_set(self, W4K + 6 * MB, 1, G_BASE + 2 * MB, true));
	invalidate(_metadata, self, W4K + 6 * MB, 512);
	for (uint64_t o = 0; o < 2 * MB; o += 64 * KB)
		CHECK(W4K + 6 * MB + o);
	ASSERT_EQ(0, s1_set(self, W1G, 2, 0, true));
	invalidate(_metadata, self, W1G, 1);
	for (uint64_t o = 0; o < 64 * MB; o += 256 * KB)
		CHECK(W1G + o);
	CHECK(W1G + GB - PG);

	/* Clearing leaves, then the all-ones form. */
	s1_clear(self, a);
	s1_clear(self, W1G);
	CHECK(a);
	invalidate(_metadata, self, 0, UINT64_MAX);
	CHECK(a);
	CHECK(W1G + G_BASE);
	CHECK(b);
	test_cmd_mock_domain_replace(self->stdev, self->ioas);
}

/*
 * A 5-level table: PML5 entry 0 -> the 4-level root, so the IOVAs below
 * 2^48 are those of the 4-level table; PML5 entry 1 -> the same root puts
 * them again at 2^48 up, beyond the mock's aperture: nothing there.
 */
TEST_F(shadow, five_level)
{
	uint64_t pml5, a = W4K + 11 * PG;
	__u32 state, prot;

	NEED_OPTIN();
	pml5 = table_alloc(self);
	ASSERT_NE(0, pml5);
	*entry(self, pml5, 0) = self->root | PTE_P | PTE_RW | PTE_US;
	*entry(self, pml5, 1) = self->root | PTE_P | PTE_RW | PTE_US;
	ASSERT_EQ(0, s1_set(self, a, 0, G_BASE + 2 * CHUNK + 7 * PG, true));
	ASSERT_EQ(0, s1_set(self, W1G, 2, 0, false));
	ASSERT_EQ(0, nested_alloc(self, pml5, 57, 0, &self->nested));
	ref_invalidate(self, 0, UINT64_MAX);
	test_cmd_mock_domain_replace(self->stdev, self->nested);
	CHECK(a);
	CHECK(W1G + G_BASE + 3 * PG);
	ASSERT_EQ(0, shadow_xlate(self, (1ULL << 48) + a, NULL, &state, &prot));
	EXPECT_EQ(XLATE_NONE, state);
	s1_clear(self, a);
	ASSERT_EQ(0, inv(self, self->nested, a, 1, 0,
			 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, NULL));
	ASSERT_EQ(0, shadow_xlate(self, a, NULL, &state, &prot));
	EXPECT_EQ(XLATE_NONE, state);
	test_cmd_mock_domain_replace(self->stdev, self->ioas);
}

TEST_F(shadow, table_leaves_ioas)
{
	uint64_t pd, pt, iova = W4K + 3 * MB;
	__u32 state, prot;

	NEED_OPTIN();
	/* The page table of iova's 2 MiB lives in chunk 4, not the pool. */
	pd = next_table(self, next_table(self, self->root, 0), 0);
	ASSERT_NE(0, pd);
	pt = G_BASE + 4 * CHUNK;
	memset(va_of(self, pt), 0, PG);
	*entry(self, pd, (iova >> 21) & 511) = pt | PTE_P | PTE_RW | PTE_US;
	ASSERT_EQ(0, s1_set(self, iova, 0, G_BASE + 6 * CHUNK, true));
	ASSERT_EQ(0, nested_alloc(self, self->root, 48, 0, &self->nested));
	ref_invalidate(self, 0, UINT64_MAX);
	CHECK(iova);
	/* Still cached after the table page left; gone after the walk. */
	ASSERT_EQ(0, chunk_unmap(self, 4));
	CHECK(iova);
	invalidate(_metadata, self, iova, 1);
	CHECK(iova);
	ASSERT_EQ(0, shadow_xlate(self, iova, NULL, &state, &prot));
	EXPECT_EQ(XLATE_NONE, state);
}

TEST_F(shadow, limits)
{
	uint64_t pdpt, pd, pt, keep = W4K;
	__u32 done, state, prot;

	NEED_OPTIN();
	ASSERT_EQ(0, s1_set(self, keep, 0, G_BASE + 2 * CHUNK, true));
	ASSERT_EQ(0, nested_alloc(self, self->root, 48, 0, &self->nested));
	ref_invalidate(self, 0, UINT64_MAX);
	CHECK(keep);

	/*
	 * Too many table pages: every PML4 entry (but 0) -> one PDPT whose
	 * entries -> one PD whose entries -> one empty PT: 1 + 511 * 512 ...
	 * pages to read, past the walk's limit (65536).
	 */
	pdpt = table_alloc(self);
	pd = table_alloc(self);
	pt = table_alloc(self);
	for (int i = 0; i < 512; i++) {
		*entry(self, pdpt, i) = pd | PTE_P | PTE_RW | PTE_US;
		*entry(self, pd, i) = pt | PTE_P | PTE_RW | PTE_US;
	}
	for (int i = 1; i < 512; i++)
		*entry(self, self->root, i) = pdpt | PTE_P | PTE_RW | PTE_US;
	EXPECT_ERRNO(E2BIG, inv(self, self->nested, 0, UINT64_MAX, 0,
				IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_EQ(0, done);
	CHECK(keep);

	/*
	 * Too many leaves: two PDPT entries -> one PD of 512 PTs of 512 leaves
	 * (2^19 leaves, past the limit of 2^18).
	 */
	for (int i = 1; i < 512; i++)
		*entry(self, self->root, i) = 0;
	for (int i = 0; i < 512; i++)
		*entry(self, pt, i) = (G_BASE + 2 * CHUNK) | PTE_P | PTE_US;
	for (int i = 0; i < 512; i++)
		*entry(self, pdpt, i) = i < 2 ? pd | PTE_P | PTE_RW | PTE_US : 0;
	*entry(self, self->root, 1) = pdpt | PTE_P | PTE_RW | PTE_US;
	EXPECT_ERRNO(ENOSPC, inv(self, self->nested, 0, UINT64_MAX, 0,
				 IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, &done));
	EXPECT_EQ(0, done);
	CHECK(keep);
	ASSERT_EQ(0, shadow_xlate(self, (1ULL << 39) + PG, NULL, &state,
				  &prot));
	EXPECT_EQ(XLATE_NONE, state);
	/* Smaller, the same table walks. */
	*entry(self, pdpt, 1) = 0;
	for (int i = 8; i < 512; i++)
		*entry(self, pd, i) = 0;
	invalidate(_metadata, self, 0, UINT64_MAX);
	CHECK(keep);
	CHECK((1ULL << 39) + 7 * 2 * MB + 511 * PG);
}

/* One random step of the model. */
static void model_step(struct __test_metadata *_metadata,
		       FIXTURE_DATA(shadow) *self)
{
	int op = rnd(self) % 100;

	if (op < 45) {
		uint64_t iova = W4K + (rnd(self) % (W4K_LEN / PG)) * PG;
		uint64_t gpa = G_BASE + (rnd(self) % (NCHUNK * CHUNK / PG)) * PG;

		s1_set(self, iova, 0, gpa, rnd(self) & 1);
	} else if (op < 52) {
		uint64_t iova = W4K + (rnd(self) % (W4K_LEN / (2 * MB))) * 2 * MB;
		uint64_t gpa = G_BASE + (rnd(self) % (NCHUNK / 2)) * 2 * MB;

		s1_set(self, iova, 1, gpa, rnd(self) & 1);
	} else if (op < 54) {
		s1_set(self, W1G, 2, 0, rnd(self) & 1);
	} else if (op < 66) {
		if (self->nref) {
			struct leaf *l = &self->ref[rnd(self) % self->nref];

			s1_clear(self, l->iova);
		}
	} else if (op < 84) {
		uint64_t r = rnd(self) % 20;

		if (r == 0) {
			invalidate(_metadata, self, 0, UINT64_MAX);
		} else if (r < 3) {
			invalidate(_metadata, self, W1G, 1 + rnd(self) % 64);
		} else {
			uint64_t at = W4K + (rnd(self) % (W4K_LEN / PG)) * PG;

			invalidate(_metadata, self, at, 1 + rnd(self) % 1024);
		}
	} else if (op < 92) {
		int c = 1 + rnd(self) % (NCHUNK - 1);

		if (self->slice[c] >= 0)
			ASSERT_EQ(0, chunk_unmap(self, c));
	} else {
		int c = 1 + rnd(self) % (NCHUNK - 1), s;

		if (self->slice[c] < 0) {
			do {
				s = 1 + rnd(self) % (NSLICE - 1);
			} while (self->slice_used[s]);
			ASSERT_EQ(0, chunk_map(self, c, s, rnd(self) % 3 != 0));
		}
	}
}

/* IOVAs to sample: in recorded leaves (mostly) and anywhere in the windows. */
static uint64_t sample(FIXTURE_DATA(shadow) *self)
{
	uint64_t r = rnd(self) % 4;

	if (r < 2 && self->nref) {
		struct leaf *l = &self->ref[rnd(self) % self->nref];
		uint64_t pages = (l->last - l->iova + 1) / PG;

		if (l->iova == W1G)
			return W1G + G_BASE + (rnd(self) % (NCHUNK * CHUNK / PG)) * PG;
		return l->iova + (rnd(self) % pages) * PG;
	}
	if (r == 2)
		return W1G + G_BASE + (rnd(self) % (NCHUNK * CHUNK / PG)) * PG;
	return W4K + (rnd(self) % (W4K_LEN / PG)) * PG;
}

static void model(struct __test_metadata *_metadata,
		  FIXTURE_DATA(shadow) *self, uint64_t seed, int steps)
{
	self->rng = seed;
	ASSERT_EQ(0, nested_alloc(self, self->root, 48, 0, &self->nested));
	ref_invalidate(self, 0, UINT64_MAX);
	test_cmd_mock_domain_replace(self->stdev, self->nested);
	for (int i = 0; i < steps; i++) {
		model_step(_metadata, self);
		for (int k = 0; k < 12; k++) {
			uint64_t iova = sample(self);

			if (!check_iova(_metadata, self, iova)) {
				TH_LOG("seed %#llx, step %d",
				       (unsigned long long)seed, i);
				ASSERT_TRUE(false);
			}
		}
	}
	/* Everything checked once more, after a full walk. */
	invalidate(_metadata, self, 0, UINT64_MAX);
	for (uint64_t o = 0; o < W4K_LEN; o += 16 * KB)
		CHECK(W4K + o);
	test_cmd_mock_domain_replace(self->stdev, self->ioas);
	TH_LOG("seed %#llx: %d steps, %d leaves recorded at the end",
	       (unsigned long long)seed, steps, self->nref);
}

TEST_F_TIMEOUT(shadow, model_seed1, 600)
{
	NEED_OPTIN();
	model(_metadata, self, 0x1234567887654321ULL, 2000);
}

TEST_F_TIMEOUT(shadow, model_seed2, 600)
{
	NEED_OPTIN();
	model(_metadata, self, 0xdeadbeefcafef00dULL, 2000);
}

TEST_F_TIMEOUT(shadow, model_seed3, 600)
{
	NEED_OPTIN();
	model(_metadata, self, 0x0badc0ffee15600dULL, 2000);
}

TEST_HARNESS_MAIN
