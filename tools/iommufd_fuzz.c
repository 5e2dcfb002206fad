// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_fuzz: a structure-aware, seeded fuzzer of /dev/iommu.
 *
 * Every call is built from the uAPI: each ioctl's fields are chosen from
 * pools of live object ids and fds (what earlier calls returned), random ids
 * and boundary values; flags from the valid bits, extra bits and random
 * words; the size word exact, short, zero-tailed, dirty-tailed or huge; and
 * every user pointer (the argument itself and the buffers it points to)
 * valid, NULL, unmapped, read-only, in the kernel half or straddling the end
 * of a page. The selftest ops of IOMMU_TEST_CMD (the mock IOMMU) are part
 * of the uAPI fuzzed. Fault and vEVENTQ files are read, written (page
 * responses, from the cookies read), polled and closed; the vIOMMU's mmap
 * region is mapped; now and then /dev/iommu is replaced (dup2 over the
 * descriptor) with everything live.
 *
 * A run is deterministic per seed: user memory sits at fixed addresses and
 * every choice comes from the seed and from what the kernel answered.
 * Single-threaded, --trace writes one line per call (index, call, result),
 * and --compare A B reads two traces (the same seed against two
 * implementations) and reports the first difference. --threads N runs N
 * threads on the one shared file, each with its own generator.
 *
 * --no-self-map never passes /dev/iommu itself to IOMMU_IOAS_MAP_FILE (the
 * C iommufd takes it, and the mapping keeps its own context alive: a cycle);
 * --portable also leaves out the other inputs on which the implementations
 * are documented to differ (Documentation/testing.md), and those whose
 * result depends on where memory happens to be (a HW queue of more than one
 * page must be physically contiguous), for --compare.
 * --verbose-from N prints every call from the Nth on, with its bytes.
 *
 * At the end everything is closed and the process's VmPin and VmLck must be
 * 0 (nothing still pinned or locked on its behalf). Output is TAP.
 *
 * Usage: iommufd_fuzz [--seed S] [--count N] [--time SEC] [--threads N]
 *                     [--trace FILE] [--verbose-from N] [--no-self-map]
 *                     [--portable]
 *        iommufd_fuzz --compare TRACE_A TRACE_B
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "../../../drivers/iommu/iommufd/iommufd_test.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Fixed user addresses (1 GiB aligned, below 2^46) keep runs reproducible. */
#define BASE_ADDR	0x3e0000000000UL
#define DMA_LEN		(8UL << 20)	/* anonymous memory to map */
#define MFD_LEN		(4UL << 20)	/* a memfd, mapped and passed to MAP_FILE */
#define ARG_LEN		(64UL << 10)	/* per-thread argument area */
#define MAX_THREADS	16
#define POOL_MAX	512
#define COOKIE_MAX	64

enum kind {
	K_IOAS,
	K_HWPT,		/* paging HWPT */
	K_PARENT,	/* paging HWPT allocated as a nest parent */
	K_NESTED,
	K_IDEV,
	K_STDEV,
	K_VIOMMU,
	K_VDEV,
	K_FAULT,	/* id and fd */
	K_VEVENTQ,	/* id and fd */
	K_HWQ,
	K_ACCESS,	/* fd only: an access of the selftest */
	K_APAGES,	/* access_pages id, fd of its access */
	K_DMABUF,	/* fd */
	K_MAPPING,	/* id: IOAS; iova, len */
	K_NR,
};

#define M(k) (1u << (k))
#define M_HWPTS (M(K_HWPT) | M(K_PARENT) | M(K_NESTED))
#define M_PT (M(K_IOAS) | M_HWPTS)
#define M_ANY ((1u << K_MAPPING) - 1)

static const char *const kind_name[K_NR] = {
	"ioas", "hwpt", "parent", "nested", "idev", "stdev", "viommu", "vdev",
	"fault", "veventq", "hwq", "access", "apages", "dmabuf", "mapping",
};

struct entry {
	enum kind kind;
	uint32_t id;
	int fd;
	int busy;	/* threads using fd right now; closed only when 0 */
	uint64_t iova, len;
};

static struct {
	pthread_mutex_t lock;
	struct entry e[POOL_MAX];
	int n;
	uint32_t cookies[COOKIE_MAX];
	int ncookies;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int iommufd = -1;
static int memfd = -1;
static long page;
static int nthreads = 1;
static bool no_self_map;
static bool portable;
static uint64_t verbose_from = UINT64_MAX;
static FILE *trace;
static unsigned char *dma_mem, *mfd_mem, *ro_mem, *none_mem, *strad_mem;
static struct timespec t_start;
static double time_limit = 1e9;
static volatile int stop;
static uint64_t ncalls_total;
static pthread_mutex_t stat_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t errno_hist[256];
static uint64_t n_success;

struct th {
	int tid;
	uint64_t rng;
	uint64_t idx;
	uint64_t count;
	unsigned char *arg;	/* ARG_LEN bytes of this thread */
	unsigned char *ro_rw;	/* this thread's read-only page, writable alias */
	unsigned char *ro;	/* ... and its read-only mapping */
	unsigned char *strad;	/* a page followed by an unmapped one */
};

/* --- random choices --------------------------------------------------- */

static uint64_t rnd(struct th *t)
{
	/* splitmix64 */
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t below(struct th *t, uint32_t n)
{
	return n ? rnd(t) % n : 0;
}

/* True with probability pct percent. */
static bool chance(struct th *t, unsigned int pct)
{
	return below(t, 100) < pct;
}

static uint64_t boundary64(struct th *t)
{
	static const uint64_t v[] = {
		0, 1, 0x7ff, 0x800, 0xfff, 0x1000, 0x1001, 0xffffffffULL,
		0x100000000ULL, 1ULL << 47, 1ULL << 63, ~0ULL, ~0ULL - 0xfff,
		~0ULL - 0x7ff, 0x7fffffffffffffffULL, MOCK_APERTURE_START - 0x1000,
		MOCK_APERTURE_LAST, MOCK_APERTURE_LAST + 1ULL,
	};
	if (chance(t, 20))
		return rnd(t);
	return v[below(t, ARRAY_SIZE(v))];
}

static uint32_t boundary32(struct th *t)
{
	static const uint32_t v[] = {
		0, 1, 2, 3, 4, 7, 8, 16, 0x7f, 0xff, 0x100, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	};
	if (chance(t, 20))
		return rnd(t);
	return v[below(t, ARRAY_SIZE(v))];
}

/* Flags: mostly valid bits, sometimes one extra bit or a random word. */
static uint32_t pick_flags(struct th *t, uint32_t valid)
{
	uint32_t f = valid ? (uint32_t)rnd(t) & valid : 0;

	if (chance(t, 8))
		f |= 1u << below(t, 32);
	if (chance(t, 2))
		f = rnd(t);
	return f;
}

/* A reserved field: mostly zero. */
static uint32_t pick_zero(struct th *t)
{
	return chance(t, 96) ? 0 : boundary32(t);
}

/*
 * With --verbose-from, the lowest free object id after each call (an IOAS is
 * made and destroyed again: both implementations hand out the lowest free
 * id, so this leaves the id space as it was), to find where two
 * implementations' ids part.
 */
static void print_next_id(void)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	struct iommu_destroy d = { .size = sizeof(d) };

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &a)) {
		printf("#   next id: -%d\n", errno);
		return;
	}
	d.id = a.out_ioas_id;
	ioctl(iommufd, IOMMU_DESTROY, &d);
	printf("#   next id: %#x\n", a.out_ioas_id);
}

/* --- pools ------------------------------------------------------------- */

static void pool_add(enum kind k, uint32_t id, int fd, uint64_t iova, uint64_t len)
{
	/* With --verbose-from, every object the run makes, to follow ids by. */
	if (verbose_from != UINT64_MAX)
		printf("# pool + %s id %#x fd %d\n", kind_name[k], id, fd);
	pthread_mutex_lock(&pool.lock);
	if (pool.n < POOL_MAX) {
		pool.e[pool.n++] = (struct entry){
			.kind = k, .id = id, .fd = fd, .iova = iova, .len = len,
		};
	} else if (fd >= 0) {
		close(fd);
	}
	pthread_mutex_unlock(&pool.lock);
}

static void pool_del_at(int i)
{
	pool.e[i] = pool.e[--pool.n];
}

/* Forgets the objects with this id (a DESTROY succeeded). */
static void pool_forget_id(uint32_t id)
{
	pthread_mutex_lock(&pool.lock);
	for (int i = pool.n - 1; i >= 0; i--) {
		struct entry *e = &pool.e[i];

		if (e->kind == K_MAPPING || e->kind == K_ACCESS || e->kind == K_DMABUF)
			continue;
		if (e->id != id || e->fd >= 0)
			continue;
		pool_del_at(i);
	}
	pthread_mutex_unlock(&pool.lock);
}

/* Picks an entry of a kind in mask (index), or -1. Lock held. */
static int pool_pick_locked(struct th *t, uint32_t mask)
{
	int cand[POOL_MAX], n = 0;

	for (int i = 0; i < pool.n; i++)
		if (mask & M(pool.e[i].kind))
			cand[n++] = i;
	return n ? cand[below(t, n)] : -1;
}

static uint32_t pick_id(struct th *t, uint32_t mask)
{
	uint32_t id = 0;
	int i;

	switch (below(t, 100)) {
	case 0 ... 77:
		break;
	case 78 ... 85:
		mask = M_ANY;
		break;
	case 86 ... 89:
		return 0;
	case 90 ... 93:
		return 0xffffffff;
	case 94 ... 96:
		return 1 + below(t, 64);
	default:
		return rnd(t);
	}
	pthread_mutex_lock(&pool.lock);
	i = pool_pick_locked(t, mask);
	if (i >= 0)
		id = pool.e[i].id;
	else
		id = 1 + below(t, 32);
	pthread_mutex_unlock(&pool.lock);
	return id;
}

/*
 * Picks a pooled fd of a kind in mask, marking it busy; unbusy() after use.
 * Sometimes -1 or a number no file has.
 */
static int pick_fd(struct th *t, uint32_t mask, int *slot_fd)
{
	int fd = -1, i;

	*slot_fd = -1;
	if (chance(t, 6))
		return chance(t, 50) ? -1 : 900 + below(t, 100);
	pthread_mutex_lock(&pool.lock);
	i = pool_pick_locked(t, mask);
	if (i >= 0 && pool.e[i].fd >= 0) {
		fd = pool.e[i].fd;
		pool.e[i].busy++;
		*slot_fd = fd;
	}
	pthread_mutex_unlock(&pool.lock);
	return fd;
}

static void unbusy(int slot_fd)
{
	if (slot_fd < 0)
		return;
	pthread_mutex_lock(&pool.lock);
	for (int i = 0; i < pool.n; i++)
		if (pool.e[i].fd == slot_fd && pool.e[i].busy) {
			pool.e[i].busy--;
			break;
		}
	pthread_mutex_unlock(&pool.lock);
}

/* --- addresses ----------------------------------------------------------- */

static uint64_t pick_iova(struct th *t)
{
	int i;

	switch (below(t, 10)) {
	case 0 ... 3:
		pthread_mutex_lock(&pool.lock);
		i = pool_pick_locked(t, M(K_MAPPING));
		if (i >= 0) {
			uint64_t iova = pool.e[i].iova;
			uint64_t pages = pool.e[i].len / page;

			if (pages && chance(t, 30))
				iova += (uint64_t)below(t, pages) * page;
			pthread_mutex_unlock(&pool.lock);
			return iova;
		}
		pthread_mutex_unlock(&pool.lock);
		/* fall through */
	case 4 ... 7:
		return MOCK_APERTURE_START + (uint64_t)below(t, 4096) * page;
	case 8:
		return MOCK_APERTURE_START + (uint64_t)below(t, 4096) * MOCK_PAGE_SIZE;
	default:
		return boundary64(t);
	}
}

static uint64_t pick_len(struct th *t)
{
	switch (below(t, 10)) {
	case 0 ... 6:
		return (uint64_t)(1 + below(t, chance(t, 80) ? 16 : 512)) * page;
	case 7:
		return MOCK_PAGE_SIZE * (uint64_t)(1 + below(t, 8));
	default:
		return boundary64(t);
	}
}

/* A user virtual address to map: mostly inside the anonymous area. */
static uint64_t pick_uva(struct th *t, uint64_t *len)
{
	uint64_t pages = DMA_LEN / page;

	switch (below(t, 20)) {
	case 0 ... 13: {
		uint64_t p = below(t, pages);
		uint64_t maxlen = (pages - p) * page;

		if (*len > maxlen && chance(t, 80))
			*len = maxlen;
		return (uint64_t)(uintptr_t)dma_mem + p * page;
	}
	case 14 ... 15:
		return (uint64_t)(uintptr_t)mfd_mem + (uint64_t)below(t, MFD_LEN / page) * page;
	case 16:
		return (uint64_t)(uintptr_t)t->ro;
	case 17:
		return (uint64_t)(uintptr_t)none_mem;
	case 18:
		return (uint64_t)(uintptr_t)dma_mem + below(t, 4096);
	default:
		return boundary64(t);
	}
}

/*
 * A user buffer of len bytes for a pointer field. The content (if any) is
 * copied in. Returns its address (mostly valid).
 */
static uint64_t pick_buf(struct th *t, const void *content, size_t len, void **where)
{
	unsigned char *p;

	*where = NULL;
	switch (below(t, 100)) {
	case 0 ... 85:
		/* Valid, in the upper half of the thread's area. */
		if (len > ARG_LEN / 2)
			len = ARG_LEN / 2;
		p = t->arg + ARG_LEN / 2 + (chance(t, 90) ? 0 : below(t, 8));
		if (p + len > t->arg + ARG_LEN)
			p = t->arg + ARG_LEN - len;
		if (content)
			memcpy(p, content, len);
		else
			memset(p, 0, len);
		*where = p;
		return (uint64_t)(uintptr_t)p;
	case 86 ... 88:
		return 0;
	case 89 ... 91:
		return (uint64_t)(uintptr_t)none_mem;
	case 92 ... 94:
		if (content)
			memcpy(t->ro_rw, content, len < (size_t)page ? len : (size_t)page);
		return (uint64_t)(uintptr_t)t->ro;
	case 95 ... 97: {
		size_t head = len > 1 ? 1 + below(t, len - 1) : 0;

		p = t->strad + page - head;
		if (content)
			memcpy(p, content, head);
		return (uint64_t)(uintptr_t)p;
	}
	default:
		return chance(t, 50) ? 0xffff800000000000ULL : boundary64(t);
	}
}

/* --- calls ----------------------------------------------------------------- */

static const char *const test_name[] = {
	"?", "ADD_RESERVED", "MOCK_DOMAIN", "MD_CHECK_MAP", "MD_CHECK_REFS",
	"CREATE_ACCESS", "DESTROY_ACCESS_PAGES", "ACCESS_PAGES", "ACCESS_RW",
	"SET_TEMP_MEMORY_LIMIT", "MOCK_DOMAIN_REPLACE", "ACCESS_REPLACE_IOAS",
	"MOCK_DOMAIN_FLAGS", "DIRTY", "MD_CHECK_IOTLB", "TRIGGER_IOPF",
	"DEV_CHECK_CACHE", "TRIGGER_VEVENT", "PASID_ATTACH", "PASID_REPLACE",
	"PASID_DETACH", "PASID_CHECK_HWPT", "DMABUF_GET", "DMABUF_REVOKE",
};

static void record(struct th *t, const char *what, const char *sub, long rc)
{
	int e = rc < 0 ? (int)-rc : 0;

	pthread_mutex_lock(&stat_lock);
	if (rc >= 0)
		n_success++;
	errno_hist[e < 256 ? e : 255]++;
	ncalls_total++;
	pthread_mutex_unlock(&stat_lock);
	if (t->idx >= verbose_from)
		printf("#   -> %ld\n", rc);
	if (trace)
		fprintf(trace, "%llu %s%s%s %ld\n", (unsigned long long)t->idx, what,
			sub ? "." : "", sub ? sub : "", rc);
}

static void dump(struct th *t, const char *what, const void *p, size_t len, uint32_t size)
{
	const unsigned char *b = p;

	if (t->idx < verbose_from)
		return;
	printf("# %llu %s size %u:", (unsigned long long)t->idx, what, size);
	for (size_t i = 0; i < len && i < 96; i++)
		printf("%s%02x", i % 4 ? "" : " ", b[i]);
	printf("\n");
}

/*
 * Issues one ioctl whose argument struct (len bytes, size word first) is in
 * arg: the size word and the placement of the struct are chosen here. On
 * return *out is the struct as the kernel left it when it was placed where
 * it can be read back, else NULL. Returns 0 or -errno.
 */
static long do_ioctl(struct th *t, unsigned long nr, void *arg, size_t len, void **out,
		     const char *name, const char *sub)
{
	uint32_t size = len;
	size_t copy = len;
	unsigned char *p;
	long rc;
	int fd = iommufd;

	*out = NULL;
	switch (below(t, 100)) {
	case 0 ... 74:
		break;
	case 75 ... 77:
		size = 0;
		break;
	case 78 ... 83:
		size = 1 + below(t, len - 1);
		break;
	case 84 ... 91:
		size = len + 8 * (1 + below(t, 4));
		break;
	case 92 ... 95:
		size = len + 8 * (1 + below(t, 4));
		break;
	case 96 ... 97:
		size = chance(t, 50) ? 0xffffffff : (uint32_t)page + 8;
		break;
	default:
		size = boundary32(t);
		break;
	}
	memcpy(arg, &size, sizeof(size));
	switch (below(t, 100)) {
	case 0 ... 91: {
		size_t room = size > len && size <= 512 ? size : len;

		p = t->arg + (chance(t, 95) ? 0 : below(t, 8));
		memset(p, 0, room + 8);
		memcpy(p, arg, copy);
		if (room > len && (size & 8))
			/* A dirty tail for some of the long sizes. */
			p[len + below(t, room - len)] = 1 + below(t, 255);
		*out = p;
		break;
	}
	case 92 ... 93:
		p = NULL;
		break;
	case 94 ... 95:
		memcpy(t->ro_rw, arg, copy < (size_t)page ? copy : (size_t)page);
		p = t->ro;
		break;
	case 96 ... 97: {
		size_t head = 1 + below(t, len);

		p = t->strad + page - head;
		memcpy(p, arg, head);
		/* All of it before the unmapped page: the kernel may answer there. */
		if (head == len)
			*out = p;
		break;
	}
	default:
		p = (unsigned char *)none_mem;
		break;
	}
	dump(t, sub ? sub : name, arg, len, size);
	rc = ioctl(fd, nr, p);
	rc = rc < 0 ? -errno : rc;
	record(t, name, sub, rc);
	return rc;
}

/* Shorthand for the common case: build in 'a', issue, get the result in 'o'. */
#define CALL(nr, a, o, sub)							\
	({									\
		void *_o;							\
		long _r = do_ioctl(t, nr, &(a), sizeof(a), &_o, #nr + 6, sub);	\
									\
		if (_o)							\
			memcpy(&(o), _o, sizeof(o));			\
		_r;							\
	})

static void op_destroy(struct th *t)
{
	struct iommu_destroy a = { .id = pick_id(t, M_ANY) }, o = {};

	if (CALL(IOMMU_DESTROY, a, o, NULL) == 0)
		pool_forget_id(a.id);
}

static void op_ioas_alloc(struct th *t)
{
	struct iommu_ioas_alloc a = { .flags = pick_flags(t, 0) }, o = {};

	if (CALL(IOMMU_IOAS_ALLOC, a, o, NULL) == 0)
		pool_add(K_IOAS, o.out_ioas_id, -1, 0, 0);
}

static void fill_ranges(struct th *t, struct iommu_iova_range *r, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t s = pick_iova(t);

		r[i].start = s;
		r[i].last = chance(t, 80) ? s + pick_len(t) - 1 : boundary64(t);
	}
}

static void op_ioas_iova_ranges(struct th *t)
{
	struct iommu_ioas_iova_ranges a = {
		.ioas_id = pick_id(t, M(K_IOAS)),
		.num_iovas = chance(t, 80) ? below(t, 6) : boundary32(t),
		.__reserved = pick_zero(t),
	}, o = {};
	void *w;

	a.allowed_iovas = pick_buf(t, NULL, 8 * sizeof(struct iommu_iova_range), &w);
	CALL(IOMMU_IOAS_IOVA_RANGES, a, o, NULL);
}

static void op_ioas_allow_iovas(struct th *t)
{
	struct iommu_iova_range r[8];
	int n = below(t, 4);
	struct iommu_ioas_allow_iovas a = {
		.ioas_id = pick_id(t, M(K_IOAS)),
		.num_iovas = chance(t, 90) ? n : boundary32(t),
		.__reserved = pick_zero(t),
	}, o = {};
	void *w;

	fill_ranges(t, r, 8);
	a.allowed_iovas = pick_buf(t, r, sizeof(r), &w);
	CALL(IOMMU_IOAS_ALLOW_IOVAS, a, o, NULL);
}

static void op_ioas_map(struct th *t)
{
	uint64_t len = pick_len(t);
	struct iommu_ioas_map a = {
		.flags = pick_flags(t, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
					   IOMMU_IOAS_MAP_READABLE),
		.ioas_id = pick_id(t, M(K_IOAS)),
		.__reserved = pick_zero(t),
	}, o = {};

	if (chance(t, 70))
		a.flags |= IOMMU_IOAS_MAP_READABLE;
	a.user_va = pick_uva(t, &len);
	a.length = len;
	a.iova = pick_iova(t);
	if (CALL(IOMMU_IOAS_MAP, a, o, NULL) == 0)
		pool_add(K_MAPPING, a.ioas_id, -1, o.iova, a.length);
}

static void op_ioas_map_file(struct th *t)
{
	int slot = -1, efd = -1;
	struct iommu_ioas_map_file a = {
		.flags = pick_flags(t, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
					   IOMMU_IOAS_MAP_READABLE),
		.ioas_id = pick_id(t, M(K_IOAS)),
	}, o = {};

	const char *fk;

	switch (below(t, 10)) {
	case 0 ... 5:
		a.fd = memfd, fk = "memfd";
		break;
	case 6:
		a.fd = pick_fd(t, M(K_DMABUF), &slot), fk = "dmabuf";
		break;
	case 7:
		/* Documentation/testing.md: "Where the two differ". */
		if (no_self_map || portable)
			a.fd = memfd, fk = "memfd";
		else
			a.fd = iommufd, fk = "self";
		break;
	case 8:
		if (portable)
			a.fd = memfd, fk = "memfd";
		else
			a.fd = efd = eventfd(0, 0), fk = "eventfd";
		break;
	default:
		a.fd = chance(t, 50) ? -1 : 999, fk = "badfd";
		break;
	}
	a.start = chance(t, 85) ? (uint64_t)below(t, MFD_LEN / page) * page : boundary64(t);
	a.length = pick_len(t);
	if (a.fd == memfd && a.start < MFD_LEN && a.length > MFD_LEN - a.start && chance(t, 80))
		a.length = MFD_LEN - a.start;
	a.iova = pick_iova(t);
	if (CALL(IOMMU_IOAS_MAP_FILE, a, o, fk) == 0)
		pool_add(K_MAPPING, a.ioas_id, -1, o.iova, a.length);
	unbusy(slot);
	if (efd >= 0)
		close(efd);
}

/*
 * With probability pct, a pooled mapping (its IOAS, IOVA and length), which is
 * then forgotten with probability forget_pct. Returns whether one was taken.
 * Take it before pick_iova(), which takes the pool's lock itself.
 */
static bool pick_mapping(struct th *t, unsigned int pct, unsigned int forget_pct,
			 __u32 *ioas, __u64 *iova, __u64 *len)
{
	bool taken;
	int i;

	pthread_mutex_lock(&pool.lock);
	i = pool_pick_locked(t, M(K_MAPPING));
	taken = i >= 0 && chance(t, pct);
	if (taken) {
		*ioas = pool.e[i].id;
		*iova = pool.e[i].iova;
		*len = pool.e[i].len;
		if (forget_pct && chance(t, forget_pct))
			pool_del_at(i);
	}
	pthread_mutex_unlock(&pool.lock);
	return taken;
}

static void op_ioas_copy(struct th *t)
{
	struct iommu_ioas_copy a = {
		.flags = pick_flags(t, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
					   IOMMU_IOAS_MAP_READABLE),
		.dst_ioas_id = pick_id(t, M(K_IOAS)),
		.src_ioas_id = pick_id(t, M(K_IOAS)),
	}, o = {};
	bool from_pool = pick_mapping(t, 80, 0, &a.src_ioas_id, &a.src_iova, &a.length);

	if (!from_pool) {
		a.src_iova = pick_iova(t);
		a.length = pick_len(t);
	}
	a.dst_iova = pick_iova(t);
	if (CALL(IOMMU_IOAS_COPY, a, o, NULL) == 0)
		pool_add(K_MAPPING, a.dst_ioas_id, -1, o.dst_iova, a.length);
}

static void op_ioas_unmap(struct th *t)
{
	struct iommu_ioas_unmap a = { .ioas_id = pick_id(t, M(K_IOAS)) }, o = {};
	bool from_pool = pick_mapping(t, 70, 70, &a.ioas_id, &a.iova, &a.length);

	if (!from_pool && chance(t, 30)) {
		a.iova = 0;
		a.length = chance(t, 50) ? 0 : ~0ULL;
	} else if (!from_pool) {
		a.iova = pick_iova(t);
		a.length = pick_len(t);
	}
	CALL(IOMMU_IOAS_UNMAP, a, o, NULL);
}

static void op_option(struct th *t)
{
	struct iommu_option a = {
		.option_id = chance(t, 90) ? below(t, 2) : boundary32(t),
		.op = chance(t, 90) ? below(t, 2) : boundary32(t),
		.__reserved = pick_zero(t),
		.object_id = pick_id(t, M(K_IOAS)),
		.val64 = chance(t, 85) ? below(t, 2) : boundary64(t),
	}, o = {};

	if (a.option_id == IOMMU_OPTION_RLIMIT_MODE && chance(t, 80))
		a.object_id = 0;
	CALL(IOMMU_OPTION, a, o, NULL);
}

static void op_vfio_ioas(struct th *t)
{
	struct iommu_vfio_ioas a = {
		.ioas_id = pick_id(t, M(K_IOAS)),
		.op = chance(t, 92) ? below(t, 3) : boundary32(t),
		.__reserved = pick_zero(t),
	}, o = {};

	CALL(IOMMU_VFIO_IOAS, a, o, NULL);
}

static uint32_t pick_data_type(struct th *t, uint32_t selftest)
{
	switch (below(t, 10)) {
	case 0 ... 6:
		return selftest;
	case 7:
		return below(t, 4);
	default:
		return boundary32(t);
	}
}

static void op_hwpt_alloc(struct th *t)
{
	struct iommu_hwpt_selftest data = {
		.iotlb = chance(t, 90) ? IOMMU_TEST_IOTLB_DEFAULT : boundary32(t),
		.pagetable_type = chance(t, 90) ? below(t, 2) : boundary32(t),
	};
	struct iommu_hwpt_alloc a = {
		.flags = pick_flags(t, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
					   IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID),
		.dev_id = pick_id(t, M(K_IDEV)),
		.__reserved = pick_zero(t),
		.__reserved2 = pick_zero(t),
	}, o = {};
	bool nested = chance(t, 45);
	void *w;
	long rc;

	if (nested) {
		a.pt_id = pick_id(t, M(K_PARENT) | M(K_VIOMMU));
		a.data_type = pick_data_type(t, IOMMU_HWPT_DATA_SELFTEST);
		a.data_len = chance(t, 85) ? sizeof(data) : boundary32(t) & 0xff;
		a.data_uptr = pick_buf(t, &data, sizeof(data), &w);
		a.flags &= ~(chance(t, 80) ? IOMMU_HWPT_ALLOC_NEST_PARENT : 0);
	} else {
		a.pt_id = pick_id(t, M_PT);
		a.data_type = chance(t, 90) ? IOMMU_HWPT_DATA_NONE : pick_data_type(t, 0);
		if (chance(t, 10)) {
			a.data_len = sizeof(data);
			a.data_uptr = pick_buf(t, &data, sizeof(data), &w);
		}
	}
	if (a.flags & IOMMU_HWPT_FAULT_ID_VALID || chance(t, 5))
		a.fault_id = pick_id(t, M(K_FAULT));
	rc = CALL(IOMMU_HWPT_ALLOC, a, o, nested ? "nested" : "paging");
	if (rc == 0) {
		enum kind k = K_HWPT;

		if (a.data_type != IOMMU_HWPT_DATA_NONE)
			k = K_NESTED;
		else if (a.flags & IOMMU_HWPT_ALLOC_NEST_PARENT)
			k = K_PARENT;
		pool_add(k, o.out_hwpt_id, -1, 0, 0);
	}
}

static void op_get_hw_info(struct th *t)
{
	struct iommu_hw_info a = {
		.flags = pick_flags(t, IOMMU_HW_INFO_FLAG_INPUT_TYPE),
		.dev_id = pick_id(t, M(K_IDEV)),
		.data_len = chance(t, 80) ? sizeof(struct iommu_test_hw_info) + 8 * below(t, 3) :
					    boundary32(t) & 0xfff,
	}, o = {};
	void *w;

	a.data_uptr = pick_buf(t, NULL, 64, &w);
	if (a.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE || chance(t, 5))
		a.in_data_type = chance(t, 60) ? IOMMU_HW_INFO_TYPE_SELFTEST : boundary32(t);
	if (chance(t, 4))
		a.__reserved[below(t, 3)] = 1;
	CALL(IOMMU_GET_HW_INFO, a, o, NULL);
}

static void op_set_dirty(struct th *t)
{
	struct iommu_hwpt_set_dirty_tracking a = {
		.flags = pick_flags(t, IOMMU_HWPT_DIRTY_TRACKING_ENABLE),
		.hwpt_id = pick_id(t, M_HWPTS),
		.__reserved = pick_zero(t),
	}, o = {};

	CALL(IOMMU_HWPT_SET_DIRTY_TRACKING, a, o, NULL);
}

static void op_get_dirty(struct th *t)
{
	struct iommu_hwpt_get_dirty_bitmap a = {
		.hwpt_id = pick_id(t, M_HWPTS),
		.flags = pick_flags(t, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR),
		.__reserved = pick_zero(t),
		.iova = pick_iova(t),
		.length = pick_len(t),
		.page_size = chance(t, 85) ? (chance(t, 50) ? page : MOCK_PAGE_SIZE) : boundary64(t),
	}, o = {};
	void *w;

	a.data = pick_buf(t, NULL, 4096, &w);
	CALL(IOMMU_HWPT_GET_DIRTY_BITMAP, a, o, NULL);
}

static void op_invalidate(struct th *t)
{
	union {
		struct iommu_hwpt_invalidate_selftest h;
		struct iommu_viommu_invalidate_selftest v;
		unsigned char raw[32];
	} ent[8];
	bool viommu = chance(t, 40);
	struct iommu_hwpt_invalidate a = {
		.hwpt_id = pick_id(t, viommu ? M(K_VIOMMU) : M(K_NESTED)),
		.entry_num = chance(t, 85) ? below(t, 5) : boundary32(t),
		.__reserved = pick_zero(t),
	}, o = {};
	void *w;

	memset(ent, 0, sizeof(ent));
	for (unsigned int i = 0; i < ARRAY_SIZE(ent); i++) {
		if (viommu) {
			ent[i].v.flags = pick_flags(t, IOMMU_TEST_INVALIDATE_FLAG_ALL);
			ent[i].v.vdev_id = chance(t, 80) ? 0x42 + below(t, 4) : boundary32(t);
			ent[i].v.cache_id = chance(t, 85) ? below(t, MOCK_DEV_CACHE_NUM) : boundary32(t);
		} else {
			ent[i].h.flags = pick_flags(t, IOMMU_TEST_INVALIDATE_FLAG_ALL);
			ent[i].h.iotlb_id = chance(t, 85) ? below(t, MOCK_NESTED_DOMAIN_IOTLB_NUM) :
							    boundary32(t);
		}
	}
	a.data_type = chance(t, 85) ? IOMMU_HWPT_INVALIDATE_DATA_SELFTEST :
		      chance(t, 50) ? IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID : boundary32(t);
	a.entry_len = chance(t, 85) ? (viommu ? sizeof(ent[0].v) : sizeof(ent[0].h)) :
				      boundary32(t) & 0x3f;
	if (a.entry_len && a.entry_len <= sizeof(ent[0]))
		for (unsigned int i = 0; i < ARRAY_SIZE(ent); i++) {
			/* Entries are packed at entry_len. */
			memmove((unsigned char *)ent + i * a.entry_len, &ent[i], a.entry_len);
		}
	a.data_uptr = pick_buf(t, ent, sizeof(ent), &w);
	CALL(IOMMU_HWPT_INVALIDATE, a, o, viommu ? "viommu" : "hwpt");
}

static void op_fault_alloc(struct th *t)
{
	struct iommu_fault_alloc a = { .flags = pick_flags(t, 0) }, o = {};

	if (CALL(IOMMU_FAULT_QUEUE_ALLOC, a, o, NULL) == 0) {
		fcntl(o.out_fault_fd, F_SETFL, O_NONBLOCK);
		pool_add(K_FAULT, o.out_fault_id, o.out_fault_fd, 0, 0);
	}
}

static void op_viommu_alloc(struct th *t)
{
	struct iommu_viommu_selftest data = { .in_data = rnd(t) };
	struct iommu_viommu_alloc a = {
		.flags = pick_flags(t, 0),
		.type = chance(t, 85) ? IOMMU_VIOMMU_TYPE_SELFTEST : boundary32(t),
		.dev_id = pick_id(t, M(K_IDEV)),
		.hwpt_id = pick_id(t, M(K_PARENT)),
		.__reserved = pick_zero(t),
	}, o = {};
	void *w = NULL;

	if (chance(t, 60)) {
		a.data_len = chance(t, 85) ? sizeof(data) : boundary32(t) & 0xff;
		a.data_uptr = pick_buf(t, &data, sizeof(data), &w);
	}
	if (CALL(IOMMU_VIOMMU_ALLOC, a, o, NULL) != 0)
		return;
	pool_add(K_VIOMMU, o.out_viommu_id, -1, 0, 0);
	if (w && a.data_len >= sizeof(data) && chance(t, 50)) {
		/* Map the vIOMMU's region through /dev/iommu, touch it, unmap. */
		struct iommu_viommu_selftest *d = w;
		void *m = mmap(NULL, d->out_mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED,
			       iommufd, d->out_mmap_offset);
		long rc = m == MAP_FAILED ? -errno : 0;

		if (!rc) {
			(void)*(volatile unsigned char *)m;
			munmap(m, d->out_mmap_length);
		}
		record(t, "mmap", "viommu", rc);
	}
}

static void op_vdevice_alloc(struct th *t)
{
	struct iommu_vdevice_alloc a = {
		.viommu_id = pick_id(t, M(K_VIOMMU)),
		.dev_id = pick_id(t, M(K_IDEV)),
		.virt_id = chance(t, 85) ? 0x42 + below(t, 4) : boundary64(t),
	}, o = {};

	if (CALL(IOMMU_VDEVICE_ALLOC, a, o, NULL) == 0)
		pool_add(K_VDEV, o.out_vdevice_id, -1, 0, 0);
}

static void op_change_process(struct th *t)
{
	struct iommu_ioas_change_process a = { .__reserved = pick_zero(t) }, o = {};

	CALL(IOMMU_IOAS_CHANGE_PROCESS, a, o, NULL);
}

static void op_veventq_alloc(struct th *t)
{
	struct iommu_veventq_alloc a = {
		.flags = pick_flags(t, 0),
		.viommu_id = pick_id(t, M(K_VIOMMU)),
		.type = chance(t, 85) ? IOMMU_VEVENTQ_TYPE_SELFTEST : boundary32(t),
		.veventq_depth = chance(t, 85) ? below(t, 4) : boundary32(t),
		.__reserved = pick_zero(t),
	}, o = {};

	if (CALL(IOMMU_VEVENTQ_ALLOC, a, o, NULL) == 0) {
		fcntl(o.out_veventq_fd, F_SETFL, O_NONBLOCK);
		pool_add(K_VEVENTQ, o.out_veventq_id, o.out_veventq_fd, 0, 0);
	}
}

static void op_hw_queue_alloc(struct th *t)
{
	struct iommu_hw_queue_alloc a = {
		.flags = pick_flags(t, 0),
		.viommu_id = pick_id(t, M(K_VIOMMU)),
		.type = chance(t, 85) ? IOMMU_HW_QUEUE_TYPE_SELFTEST : boundary32(t),
		.index = chance(t, 85) ? below(t, IOMMU_TEST_HW_QUEUE_MAX + 1) : boundary32(t),
		.nesting_parent_iova = pick_iova(t),
		.length = pick_len(t),
	}, o = {};
	uint64_t in_page = a.nesting_parent_iova % page;

	/*
	 * Whether a queue of more than one page is physically contiguous
	 * (else EFAULT) depends on where the pages happen to be, which
	 * differs from run to run: --portable keeps queues in one page.
	 */
	if (portable && a.length > page - in_page)
		a.length = page - in_page;
	if (CALL(IOMMU_HW_QUEUE_ALLOC, a, o, NULL) == 0)
		pool_add(K_HWQ, o.out_hw_queue_id, -1, 0, 0);
}

static void op_noiommu_get_pa(struct th *t)
{
	struct iommu_ioas_noiommu_get_pa a = {
		.flags = pick_flags(t, 0),
		.ioas_id = pick_id(t, M(K_IOAS)),
		.__reserved = pick_zero(t),
		.iova = pick_iova(t),
		.length = pick_len(t),
	}, o = {};

	CALL(IOMMU_IOAS_NOIOMMU_GET_PA, a, o, NULL);
}

/* Random ioctl numbers: holes, the test command's neighbours, other types. */
static void op_raw(struct th *t)
{
	/*
	 * The 64 bytes end where this thread's unmapped page starts: a
	 * command that believes a size word larger than that (VFIO's
	 * IOMMU_GET_INFO on the compat path writes up to argsz) faults
	 * there with EFAULT instead of writing over the fuzzer's memory.
	 */
	const size_t len = 16 * sizeof(uint32_t);
	uint32_t *buf = (uint32_t *)(t->strad + page - len);
	unsigned long nr;
	char name[24];
	long rc;

	for (unsigned int i = 0; i < 16; i++)
		buf[i] = chance(t, 70) ? 0 : boundary32(t);
	buf[0] = chance(t, 50) ? len : boundary32(t);
	switch (below(t, 4)) {
	case 0:
		nr = _IO(IOMMUFD_TYPE, 0x96 + below(t, 0x0a));
		break;
	case 1:
		nr = _IO(IOMMUFD_TYPE, below(t, 0x100));
		break;
	case 2:
		nr = _IOWR(IOMMUFD_TYPE, 0x80 + below(t, 0x22), uint32_t[16]);
		break;
	default:
		nr = _IO(below(t, 0x100), 0x80 + below(t, 0x22));
		break;
	}
	if (t->idx >= verbose_from) {
		snprintf(name, sizeof(name), "raw %#lx", nr);
		dump(t, name, buf, len, buf[0]);
	}
	rc = ioctl(iommufd, nr, chance(t, 90) ? buf : NULL);
	rc = rc < 0 ? -errno : rc;
	record(t, "raw", NULL, rc);
}

/* --- IOMMU_TEST_CMD -------------------------------------------------------- */

static void op_test(struct th *t)
{
	static const uint8_t weights[] = {
		[IOMMU_TEST_OP_ADD_RESERVED] = 2,
		[IOMMU_TEST_OP_MOCK_DOMAIN] = 8,
		[IOMMU_TEST_OP_MD_CHECK_MAP] = 2,
		[IOMMU_TEST_OP_MD_CHECK_REFS] = 2,
		[IOMMU_TEST_OP_CREATE_ACCESS] = 4,
		[IOMMU_TEST_OP_DESTROY_ACCESS_PAGES] = 3,
		[IOMMU_TEST_OP_ACCESS_PAGES] = 5,
		[IOMMU_TEST_OP_ACCESS_RW] = 4,
		[IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT] = 1,
		[IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE] = 5,
		[IOMMU_TEST_OP_ACCESS_REPLACE_IOAS] = 3,
		[IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS] = 4,
		[IOMMU_TEST_OP_DIRTY] = 2,
		[IOMMU_TEST_OP_MD_CHECK_IOTLB] = 2,
		[IOMMU_TEST_OP_TRIGGER_IOPF] = 5,
		[IOMMU_TEST_OP_DEV_CHECK_CACHE] = 2,
		[IOMMU_TEST_OP_TRIGGER_VEVENT] = 5,
		[IOMMU_TEST_OP_PASID_ATTACH] = 3,
		[IOMMU_TEST_OP_PASID_REPLACE] = 3,
		[IOMMU_TEST_OP_PASID_DETACH] = 3,
		[IOMMU_TEST_OP_PASID_CHECK_HWPT] = 2,
		[IOMMU_TEST_OP_DMABUF_GET] = 2,
		[IOMMU_TEST_OP_DMABUF_REVOKE] = 2,
	};
	struct iommu_test_cmd a = { .__reserved = pick_zero(t) }, o = {};
	unsigned int total = 0, r, op;
	int slot = -1;
	void *w;
	long rc;

	for (op = 0; op < ARRAY_SIZE(weights); op++)
		total += weights[op];
	r = below(t, total);
	for (op = 0; r >= weights[op]; op++)
		r -= weights[op];
	a.op = chance(t, 98) ? op : boundary32(t);

	switch (a.op) {
	case IOMMU_TEST_OP_ADD_RESERVED:
		a.id = pick_id(t, M(K_IOAS));
		a.add_reserved.start = pick_iova(t);
		a.add_reserved.length = pick_len(t);
		break;
	case IOMMU_TEST_OP_MOCK_DOMAIN:
		a.id = pick_id(t, M_PT);
		break;
	case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
		a.id = pick_id(t, M_PT);
		a.mock_domain_flags.dev_flags =
			pick_flags(t, MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID);
		break;
	case IOMMU_TEST_OP_MD_CHECK_MAP:
	case IOMMU_TEST_OP_MD_CHECK_REFS: {
		uint64_t len = pick_len(t);

		a.id = pick_id(t, M_HWPTS);
		a.check_map.iova = pick_iova(t);
		a.check_map.uptr = pick_uva(t, &len);
		a.check_map.length = len;
		if (a.op == IOMMU_TEST_OP_MD_CHECK_REFS) {
			a.check_refs.length = len;
			a.check_refs.uptr = pick_uva(t, &len);
			a.check_refs.refs = below(t, 3);
		}
		break;
	}
	case IOMMU_TEST_OP_CREATE_ACCESS:
		a.id = pick_id(t, M(K_IOAS));
		a.create_access.flags = pick_flags(t, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
		break;
	case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
		a.id = pick_fd(t, M(K_ACCESS) | M(K_APAGES), &slot);
		a.destroy_access_pages.access_pages_id = pick_id(t, M(K_APAGES));
		break;
	case IOMMU_TEST_OP_ACCESS_PAGES: {
		uint64_t len = pick_len(t);

		a.id = pick_fd(t, M(K_ACCESS), &slot);
		a.access_pages.flags = pick_flags(t, MOCK_FLAGS_ACCESS_WRITE);
		a.access_pages.iova = pick_iova(t);
		a.access_pages.uptr = pick_uva(t, &len);
		a.access_pages.length = len;
		break;
	}
	case IOMMU_TEST_OP_ACCESS_RW:
		a.id = pick_fd(t, M(K_ACCESS), &slot);
		a.access_rw.iova = pick_iova(t);
		a.access_rw.length = chance(t, 85) ? 1 + below(t, 3 * page) : boundary64(t);
		a.access_rw.uptr = pick_buf(t, NULL, 3 * page, &w);
		a.access_rw.flags = pick_flags(t, MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH);
		break;
	case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
		a.memory_limit.limit = chance(t, 80) ? 1 + below(t, 64) : 65536;
		break;
	case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
		a.id = pick_id(t, M(K_STDEV));
		a.mock_domain_replace.pt_id = pick_id(t, M_PT);
		break;
	case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
		a.id = pick_fd(t, M(K_ACCESS), &slot);
		a.access_replace_ioas.ioas_id = pick_id(t, M(K_IOAS));
		break;
	case IOMMU_TEST_OP_DIRTY:
		a.id = pick_id(t, M_HWPTS);
		a.dirty.flags = pick_flags(t, 0);
		a.dirty.iova = pick_iova(t);
		a.dirty.length = pick_len(t);
		a.dirty.page_size = chance(t, 85) ? MOCK_PAGE_SIZE : boundary64(t);
		a.dirty.uptr = pick_buf(t, NULL, 4096, &w);
		break;
	case IOMMU_TEST_OP_MD_CHECK_IOTLB:
		a.id = pick_id(t, M(K_NESTED));
		a.check_iotlb.id = chance(t, 85) ? below(t, MOCK_NESTED_DOMAIN_IOTLB_NUM) : boundary32(t);
		a.check_iotlb.iotlb = chance(t, 70) ? IOMMU_TEST_IOTLB_DEFAULT : boundary32(t);
		break;
	case IOMMU_TEST_OP_TRIGGER_IOPF:
		a.trigger_iopf.dev_id = pick_id(t, M(K_IDEV));
		a.trigger_iopf.pasid = chance(t, 70) ? 0 : boundary32(t) & 0xfffff;
		a.trigger_iopf.grpid = below(t, 4);
		a.trigger_iopf.perm = pick_flags(t, 0xf);
		a.trigger_iopf.addr = pick_iova(t);
		break;
	case IOMMU_TEST_OP_DEV_CHECK_CACHE:
		a.id = pick_id(t, M(K_IDEV));
		a.check_dev_cache.id = chance(t, 85) ? below(t, MOCK_DEV_CACHE_NUM) : boundary32(t);
		a.check_dev_cache.cache = chance(t, 70) ? IOMMU_TEST_DEV_CACHE_DEFAULT : boundary32(t);
		break;
	case IOMMU_TEST_OP_TRIGGER_VEVENT:
		a.trigger_vevent.dev_id = pick_id(t, M(K_IDEV));
		break;
	case IOMMU_TEST_OP_PASID_ATTACH:
	case IOMMU_TEST_OP_PASID_REPLACE:
	case IOMMU_TEST_OP_PASID_DETACH:
	case IOMMU_TEST_OP_PASID_CHECK_HWPT:
		a.id = pick_id(t, M(K_STDEV));
		a.pasid_attach.pasid = chance(t, 85) ? below(t, 4) : boundary32(t) & 0xfffff;
		a.pasid_attach.pt_id = pick_id(t, M_PT);
		break;
	case IOMMU_TEST_OP_DMABUF_GET:
		a.dmabuf_get.length = chance(t, 85) ? (1 + below(t, 16)) * page : boundary32(t);
		a.dmabuf_get.open_flags = chance(t, 85) ? O_CLOEXEC : boundary32(t);
		break;
	case IOMMU_TEST_OP_DMABUF_REVOKE:
		a.dmabuf_revoke.dmabuf_fd = pick_fd(t, M(K_DMABUF), &slot);
		a.dmabuf_revoke.revoked = chance(t, 85) ? below(t, 2) : boundary32(t);
		break;
	default:
		a.id = pick_id(t, M_ANY);
		break;
	}
	rc = do_ioctl(t, IOMMU_TEST_CMD, &a, sizeof(a), &w, "TEST",
		      a.op < ARRAY_SIZE(test_name) ? test_name[a.op] : "bad_op");
	unbusy(slot);
	if (w)
		memcpy(&o, w, sizeof(o));
	if (rc < 0 && !(rc >= 0 && a.op == IOMMU_TEST_OP_DMABUF_GET))
		return;
	switch (a.op) {
	case IOMMU_TEST_OP_MOCK_DOMAIN:
	case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
		if (!w)
			break;
		pool_add(K_STDEV, o.mock_domain.out_stdev_id, -1, 0, 0);
		pool_add(K_HWPT, o.mock_domain.out_hwpt_id, -1, 0, 0);
		pool_add(K_IDEV, o.mock_domain.out_idev_id, -1, 0, 0);
		break;
	case IOMMU_TEST_OP_CREATE_ACCESS:
		if (w)
			pool_add(K_ACCESS, 0, o.create_access.out_access_fd, 0, 0);
		break;
	case IOMMU_TEST_OP_ACCESS_PAGES:
		if (w)
			pool_add(K_APAGES, o.access_pages.out_access_pages_id, -1, 0, 0);
		break;
	case IOMMU_TEST_OP_DMABUF_GET:
		/* The dma-buf fd is the return value. */
		if (rc > 0)
			pool_add(K_DMABUF, 0, rc, 0, 0);
		break;
	}
}

/* --- files --------------------------------------------------------------------- */

static void op_file(struct th *t)
{
	unsigned char buf[1024];
	int slot, fd, what = below(t, 10);
	uint32_t mask = chance(t, 60) ? M(K_FAULT) : M(K_VEVENTQ);
	const char *kn = mask == M(K_FAULT) ? "fault" : "veventq";
	long rc;

	if (what == 9)
		mask = M(K_ACCESS) | M(K_DMABUF), kn = "other";
	fd = pick_fd(t, mask, &slot);
	if (t->idx >= verbose_from)
		printf("# %llu file op %d on %s fd %d\n", (unsigned long long)t->idx, what, kn, fd);
	if (slot < 0) {
		/* No such file yet (or an fd number no file has). */
		rc = read(fd, buf, 8) < 0 ? -errno : 0;
		record(t, "read", "nofile", rc);
		return;
	}
	switch (what) {
	case 0 ... 3: {
		size_t n = chance(t, 80) ? sizeof(struct iommu_hwpt_pgfault) * (1 + below(t, 4)) :
					   below(t, sizeof(buf));
		void *dst = chance(t, 92) ? buf : chance(t, 50) ? NULL : (void *)t->ro;

		rc = read(fd, dst, n);
		rc = rc < 0 ? -errno : rc;
		record(t, "read", kn, rc);
		if (mask == M(K_FAULT) && dst == buf && rc > 0) {
			pthread_mutex_lock(&pool.lock);
			for (long off = 0; off + (long)sizeof(struct iommu_hwpt_pgfault) <= rc;
			     off += sizeof(struct iommu_hwpt_pgfault)) {
				struct iommu_hwpt_pgfault *f = (void *)(buf + off);

				if (pool.ncookies < COOKIE_MAX)
					pool.cookies[pool.ncookies++] = f->cookie;
			}
			pthread_mutex_unlock(&pool.lock);
		}
		break;
	}
	case 4 ... 5: {
		struct iommu_hwpt_page_response r[4];
		int n = 1 + below(t, 4);
		size_t len;

		pthread_mutex_lock(&pool.lock);
		for (int i = 0; i < n; i++) {
			if (pool.ncookies && chance(t, 80)) {
				int c = below(t, pool.ncookies);

				r[i].cookie = pool.cookies[c];
				pool.cookies[c] = pool.cookies[--pool.ncookies];
			} else {
				r[i].cookie = boundary32(t);
			}
			r[i].code = chance(t, 85) ? below(t, 2) : boundary32(t);
		}
		pthread_mutex_unlock(&pool.lock);
		len = chance(t, 85) ? n * sizeof(r[0]) : below(t, sizeof(r) + 1);
		rc = write(fd, chance(t, 95) ? (void *)r : NULL, len);
		rc = rc < 0 ? -errno : rc;
		record(t, "write", kn, rc);
		break;
	}
	case 6 ... 7: {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

		rc = poll(&p, 1, 0);
		rc = rc < 0 ? -errno : p.revents;
		record(t, "poll", kn, rc);
		break;
	}
	default:
		/* Close it, unless another thread is using it right now. */
		unbusy(slot);
		slot = -1;
		rc = 1;
		pthread_mutex_lock(&pool.lock);
		for (int i = 0; i < pool.n; i++)
			if (pool.e[i].fd == fd && !pool.e[i].busy) {
				pool_del_at(i);
				rc = close(fd) < 0 ? -errno : 0;
				break;
			}
		pthread_mutex_unlock(&pool.lock);
		record(t, "close", kn, rc);
		break;
	}
	unbusy(slot);
}

/*
 * A new /dev/iommu in place of the old one (dup2 is atomic, so other threads'
 * calls go to one or the other). The old context lives on while its access,
 * fault and vEVENTQ files are open; its object ids are forgotten.
 */
static void op_reopen(struct th *t)
{
	int fd = open("/dev/iommu", O_RDWR);
	long rc = fd < 0 ? -errno : 0;

	if (fd >= 0) {
		rc = dup2(fd, iommufd) < 0 ? -errno : 0;
		close(fd);
	}
	pthread_mutex_lock(&pool.lock);
	for (int i = pool.n - 1; i >= 0; i--)
		if (pool.e[i].fd < 0)
			pool_del_at(i);
	pthread_mutex_unlock(&pool.lock);
	record(t, "reopen", NULL, rc);
}

struct op {
	void (*fn)(struct th *t);
	unsigned int weight;
};

static const struct op ops[] = {
	{ op_destroy, 6 }, { op_ioas_alloc, 4 }, { op_ioas_iova_ranges, 2 },
	{ op_ioas_allow_iovas, 2 }, { op_ioas_map, 8 }, { op_ioas_map_file, 3 },
	{ op_ioas_copy, 3 }, { op_ioas_unmap, 6 }, { op_option, 2 },
	{ op_vfio_ioas, 2 }, { op_hwpt_alloc, 8 }, { op_get_hw_info, 2 },
	{ op_set_dirty, 2 }, { op_get_dirty, 2 }, { op_invalidate, 4 },
	{ op_fault_alloc, 3 }, { op_viommu_alloc, 4 }, { op_vdevice_alloc, 4 },
	{ op_change_process, 1 }, { op_veventq_alloc, 3 }, { op_hw_queue_alloc, 3 },
	{ op_noiommu_get_pa, 1 }, { op_raw, 1 }, { op_test, 30 }, { op_file, 8 },
	/* op_reopen: see run(). */
};

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t_start.tv_sec) + (now.tv_nsec - t_start.tv_nsec) / 1e9;
}

static void *run(void *arg)
{
	struct th *t = arg;
	unsigned int total = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(ops); i++)
		total += ops[i].weight;
	for (t->idx = 0; t->idx < t->count && !stop; t->idx++) {
		unsigned int r;
		unsigned int i;

		if ((t->idx & 255) == 0 && elapsed() > time_limit)
			stop = 1;
		/* About once in 4000 calls, a new /dev/iommu. */
		if (below(t, 4000) == 0) {
			if (t->idx >= verbose_from)
				printf("# %llu reopen\n", (unsigned long long)t->idx);
			op_reopen(t);
			continue;
		}
		r = below(t, total);
		for (i = 0; r >= ops[i].weight; i++)
			r -= ops[i].weight;
		if (t->idx >= verbose_from)
			printf("# %llu op %u\n", (unsigned long long)t->idx, i);
		ops[i].fn(t);
		if (t->idx >= verbose_from)
			print_next_id();
	}
	return NULL;
}

/* --- set-up, the end check, and comparing traces ------------------------ */

static void *map_fixed(uint64_t addr, size_t len, int prot, int flags, int fd)
{
	void *p = mmap((void *)addr, len, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);

	if (p == MAP_FAILED || p != (void *)addr) {
		fprintf(stderr, "iommufd_fuzz: cannot map %#llx: %m\n", (unsigned long long)addr);
		exit(2);
	}
	return p;
}

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

static int compare(const char *pa, const char *pb)
{
	FILE *a = fopen(pa, "r"), *b = fopen(pb, "r");
	char la[256], lb[256], prev[4][256];
	uint64_t n = 0, diffs = 0, first = UINT64_MAX;
	int np = 0;

	printf("TAP version 13\n1..1\n");
	if (!a || !b) {
		printf("not ok 1 open the traces %s and %s\n", pa, pb);
		return 1;
	}
	for (;;) {
		char *ra = fgets(la, sizeof(la), a), *rb = fgets(lb, sizeof(lb), b);

		if (!ra && !rb)
			break;
		/*
		 * A run bounded by --time ends where its clock says: the
		 * shorter trace is a prefix of the other's run, and only the
		 * lines both have are compared.
		 */
		if ((!ra || !rb) && first == UINT64_MAX) {
			printf("# %s ends after %llu lines, %s goes on (the time bound)\n",
			       ra ? pb : pa, (unsigned long long)n, ra ? pa : pb);
			break;
		}
		if (!ra || !rb || strcmp(la, lb)) {
			if (first == UINT64_MAX) {
				first = n;
				for (int i = np > 4 ? np - 4 : 0; i < np; i++)
					printf("#   both: %s", prev[i % 4]);
				printf("# first difference at line %llu:\n#   %s: %s#   %s: %s",
				       (unsigned long long)n + 1, pa, ra ? la : "(end)\n", pb,
				       rb ? lb : "(end)\n");
			}
			diffs++;
			if (!ra || !rb)
				break;
		} else if (first == UINT64_MAX) {
			strcpy(prev[np++ % 4], la);
		}
		n++;
	}
	if (first == UINT64_MAX)
		printf("ok 1 the two traces agree on all %llu results\n", (unsigned long long)n);
	else
		printf("not ok 1 the traces differ from line %llu on (%llu of %llu lines differ)\n",
		       (unsigned long long)first + 1, (unsigned long long)diffs,
		       (unsigned long long)n);
	return first != UINT64_MAX;
}

int main(int argc, char **argv)
{
	uint64_t seed = 1, count = 10000;
	const char *trace_path = NULL;
	struct th th[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	unsigned char *arg_mem, *ro_rw_mem;
	int rofd, nerr = 0, fails = 0;
	long pin, lck;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(argv[i], "--compare") && i + 2 < argc)
			return compare(argv[i + 1], argv[i + 2]);
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(v, NULL, 0), i++;
		else if (!strcmp(argv[i], "--count"))
			count = strtoull(v, NULL, 0), i++;
		else if (!strcmp(argv[i], "--time"))
			time_limit = atof(v), i++;
		else if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(v), i++;
		else if (!strcmp(argv[i], "--trace"))
			trace_path = v, i++;
		else if (!strcmp(argv[i], "--verbose-from"))
			verbose_from = strtoull(v, NULL, 0), i++;
		else if (!strcmp(argv[i], "--no-self-map"))
			no_self_map = true;
		else if (!strcmp(argv[i], "--portable"))
			portable = true;
		else {
			fprintf(stderr, "usage: see the comment at the top of iommufd_fuzz.c\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "iommufd_fuzz: 1 to %d threads\n", MAX_THREADS);
		return 2;
	}
	if (trace_path && nthreads > 1) {
		fprintf(stderr, "iommufd_fuzz: a trace needs one thread\n");
		return 2;
	}
	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..2\n");

	iommufd = open("/dev/iommu", O_RDWR);
	memfd = memfd_create("fuzz", 0);
	rofd = memfd_create("fuzz-ro", 0);
	if (iommufd < 0 || memfd < 0 || rofd < 0 || ftruncate(memfd, MFD_LEN) ||
	    ftruncate(rofd, MAX_THREADS * page)) {
		printf("not ok 1 open /dev/iommu and create the memfds: %m\n");
		return 1;
	}
	dma_mem = map_fixed(BASE_ADDR, DMA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1);
	memset(dma_mem, 0x5a, DMA_LEN);
	mfd_mem = map_fixed(BASE_ADDR + (1UL << 30), MFD_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
			    memfd);
	ro_rw_mem = map_fixed(BASE_ADDR + (2UL << 30), MAX_THREADS * page, PROT_READ | PROT_WRITE,
			      MAP_SHARED, rofd);
	ro_mem = map_fixed(BASE_ADDR + (3UL << 30), MAX_THREADS * page, PROT_READ, MAP_SHARED, rofd);
	none_mem = map_fixed(BASE_ADDR + (4UL << 30), 2 * page, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1);
	strad_mem = map_fixed(BASE_ADDR + (5UL << 30), 2 * MAX_THREADS * page,
			      PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	for (int i = 0; i < MAX_THREADS; i++)
		mprotect(strad_mem + (2 * i + 1) * page, page, PROT_NONE);
	arg_mem = map_fixed(BASE_ADDR + (6UL << 30), MAX_THREADS * ARG_LEN,
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (trace_path && !(trace = fopen(trace_path, "w"))) {
		printf("not ok 1 open the trace %s: %m\n", trace_path);
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &t_start);
	for (int i = 0; i < nthreads; i++) {
		th[i] = (struct th){
			.tid = i,
			.rng = seed * 0x100000001b3ULL + i,
			.count = count / nthreads + (i < (int)(count % nthreads)),
			.arg = arg_mem + i * ARG_LEN,
			.ro_rw = ro_rw_mem + i * page,
			.ro = ro_mem + i * page,
			.strad = strad_mem + 2 * i * page,
		};
		if (nthreads == 1)
			run(&th[0]);
		else
			pthread_create(&tid[i], NULL, run, &th[i]);
	}
	if (nthreads > 1)
		for (int i = 0; i < nthreads; i++)
			pthread_join(tid[i], NULL);

	for (int e = 1; e < 256; e++)
		if (errno_hist[e]) {
			nerr++;
			printf("#   %-16s %llu\n", e < 255 ? strerrorname_np(e) : "other",
			       (unsigned long long)errno_hist[e]);
		}
	printf("ok 1 seed %llu, %d thread%s: %llu calls in %.1f s, %llu succeeded, %d distinct errnos%s\n",
	       (unsigned long long)seed, nthreads, nthreads > 1 ? "s" : "",
	       (unsigned long long)ncalls_total, elapsed(), (unsigned long long)n_success, nerr,
	       stop ? " (stopped by the time limit)" : "");

	/* Close everything; then nothing may remain pinned or locked. */
	{
		struct iommu_test_cmd lim = {
			.size = sizeof(lim),
			.op = IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
			.memory_limit.limit = 65536,
		};
		ioctl(iommufd, IOMMU_TEST_CMD, &lim);
	}
	if (verbose_from != UINT64_MAX)
		for (int i = 0; i < pool.n; i++)
			printf("# pool: %s id %#x fd %d iova %#llx len %#llx\n",
			       kind_name[pool.e[i].kind], pool.e[i].id, pool.e[i].fd,
			       (unsigned long long)pool.e[i].iova, (unsigned long long)pool.e[i].len);
	for (int i = 0; i < pool.n; i++) {
		if (pool.e[i].fd < 0)
			continue;
		close(pool.e[i].fd);
		if (verbose_from != UINT64_MAX)
			printf("# closed %s fd %d: VmPin %ld kB\n", kind_name[pool.e[i].kind],
			       pool.e[i].fd, status_kb("VmPin:"));
	}
	pool.n = 0;
	close(iommufd);
	if (verbose_from != UINT64_MAX) {
		printf("# closed /dev/iommu: VmPin %ld kB; still open:\n", status_kb("VmPin:"));
		for (int fd = 0; fd < 1024; fd++) {
			char path[64], target[256];
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			n = readlink(path, target, sizeof(target) - 1);
			if (n > 0) {
				target[n] = 0;
				printf("#   fd %d: %s\n", fd, target);
			}
		}
	}
	pin = status_kb("VmPin:");
	lck = status_kb("VmLck:");
	if (pin == 0 && lck == 0) {
		printf("ok 2 nothing pinned or locked after closing everything (VmPin 0 kB, VmLck 0 kB)\n");
	} else {
		printf("not ok 2 after closing everything: VmPin %ld kB, VmLck %ld kB\n", pin, lck);
		fails++;
	}
	if (trace)
		fclose(trace);
	return fails ? 1 : 0;
}
