// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmarks of an iommufd implementation, run in the bench VM
 * against the C iommufd and the Rust one in turn (scripts/bench.sh takes
 * the medians and prints the table). Each result line is
 *   bench NAME ns_per_op=N ops=N
 *
 * `iommufd_bench` measures /dev/iommu, whichever implementation provides
 * it. `iommufd_bench --limit` measures the physical limit instead: the same
 * rows' bare kernel operations, timed by the limit module
 * (tools/bench/limit, /dev/iommufd_limit), plus two null ioctls per map and
 * unmap (the two ioctls the map rows make).
 *
 * Mock devices come from the selftest command IOMMU_TEST_CMD; its ABI is
 * the upstream test header's, read from the downloaded kernel source.
 * Where a row has N devices, each sits on its own paging domain (a
 * HWPT_ALLOC'd on the IOAS), so that a map reaches N domains.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "../../../drivers/iommu/iommufd/iommufd_test.h"
#include "iommufd_limit.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)

#define SZ_4K (4096UL)
#define SZ_64K (64UL << 10)
#define SZ_2M (2UL << 20)
#define SZ_128M (128UL << 20)
#define SZ_1G (1UL << 30)

/* Measured IOVAs: inside the mock aperture (16 MiB to 2 GiB). */
#define IOVA_SMALL MOCK_APERTURE_START
#define IOVA_1G SZ_1G

static int limit_mode;
static int limit_fd = -1;
static uint64_t null_ioctl_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "iommufd_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void report(const char *name, uint64_t ns, unsigned long ops)
{
	printf("bench %s ns_per_op=%llu ops=%lu\n", name,
	       (unsigned long long)(ns / ops), ops);
	fflush(stdout);
}

static int dev_open(void)
{
	int fd = open("/dev/iommu", O_RDWR);

	if (fd < 0)
		die("open /dev/iommu");
	return fd;
}

static uint32_t ioas_alloc(int fd)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	if (ioctl(fd, IOMMU_IOAS_ALLOC, &cmd))
		die("IOMMU_IOAS_ALLOC");
	return cmd.out_ioas_id;
}

struct mock_dev {
	uint32_t stdev_id, hwpt_id, idev_id;
};

static struct mock_dev mock_domain(int fd, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = pt_id,
	};
	struct mock_dev d;

	if (ioctl(fd, IOMMU_TEST_CMD, &cmd))
		die("IOMMU_TEST_CMD MOCK_DOMAIN");
	d.stdev_id = cmd.mock_domain.out_stdev_id;
	d.hwpt_id = cmd.mock_domain.out_hwpt_id;
	d.idev_id = cmd.mock_domain.out_idev_id;
	return d;
}

static void mock_replace(int fd, uint32_t stdev_id, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	if (ioctl(fd, IOMMU_TEST_CMD, &cmd))
		die("IOMMU_TEST_CMD MOCK_DOMAIN_REPLACE");
}

static uint32_t hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id,
			   uint32_t flags, uint32_t fault_id,
			   uint32_t data_type, void *data, uint32_t data_len)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
		.fault_id = fault_id,
	};

	if (ioctl(fd, IOMMU_HWPT_ALLOC, &cmd))
		die("IOMMU_HWPT_ALLOC");
	return cmd.out_hwpt_id;
}

/* `n` mock devices on `ioas`, each on a paging domain of its own. */
static void devices_own_domains(int fd, uint32_t ioas, unsigned int n,
				uint32_t hwpt_flags, uint32_t *hwpts)
{
	unsigned int i;

	for (i = 0; i != n; i++) {
		struct mock_dev d = mock_domain(fd, ioas);
		uint32_t hwpt = hwpt_alloc(fd, d.idev_id, ioas, hwpt_flags, 0,
					   IOMMU_HWPT_DATA_NONE, NULL, 0);

		/* The automatic domain goes when its last device leaves. */
		mock_replace(fd, d.stdev_id, hwpt);
		if (hwpts)
			hwpts[i] = hwpt;
	}
}

static int map_fixed_ret(int fd, uint32_t ioas, void *p, size_t len,
			 uint64_t iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)p,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &cmd);
}

static void map_fixed(int fd, uint32_t ioas, void *p, size_t len, uint64_t iova)
{
	if (map_fixed_ret(fd, ioas, p, len, iova))
		die("IOMMU_IOAS_MAP");
}

static void unmap(int fd, uint32_t ioas, uint64_t iova, size_t len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	if (ioctl(fd, IOMMU_IOAS_UNMAP, &cmd))
		die("IOMMU_IOAS_UNMAP");
}

/* --- the limit ---------------------------------------------------------- */

static void limit_open(void)
{
	unsigned long i, ops = 20000;
	uint64_t t0;

	limit_fd = open("/dev/iommufd_limit", O_RDWR);
	if (limit_fd < 0)
		die("open /dev/iommufd_limit (is iommufd_limit.ko loaded?)");
	t0 = now_ns();
	for (i = 0; i != ops; i++)
		ioctl(limit_fd, IOMMUFD_LIMIT_NULL, 0);
	null_ioctl_ns = (now_ns() - t0) / ops;
}

/* The limit of a map + unmap row: the bare operations and two ioctls. */
static void limit_map_row(const char *name, void *buf, size_t len,
			  unsigned int ndomains, unsigned long ops)
{
	struct iommufd_limit_map arg = {
		.uaddr = (uintptr_t)buf,
		.length = len,
		.ndomains = ndomains,
		.ops = ops,
	};

	/*
	 * Without a domain neither implementation pins at map time: the
	 * limit is the two ioctls.
	 */
	if (ndomains && ioctl(limit_fd, IOMMUFD_LIMIT_MAP, &arg))
		die("IOMMUFD_LIMIT_MAP");
	report(name, (arg.out_ns + 2 * null_ioctl_ns) * ops, ops);
}

/* The limit of the access row: pin and unpin, and two ioctls. */
static void limit_pin_row(const char *name, void *buf, size_t len,
			  unsigned long ops)
{
	struct iommufd_limit_map arg = {
		.uaddr = (uintptr_t)buf,
		.length = len,
		.ops = ops,
	};

	if (ioctl(limit_fd, IOMMUFD_LIMIT_MAP, &arg))
		die("IOMMUFD_LIMIT_MAP");
	report(name, (arg.out_ns + 2 * null_ioctl_ns) * ops, ops);
}

/* --- rows --------------------------------------------------------------- */

static void bench_ioctl_round_trip(unsigned long ops)
{
	struct iommu_ioas_iova_ranges cmd = { .size = sizeof(cmd) };
	unsigned long i;
	uint64_t t0;
	int fd;

	if (limit_mode) {
		report("ioctl_round_trip", null_ioctl_ns * ops, ops);
		return;
	}
	fd = dev_open();
	cmd.ioas_id = ioas_alloc(fd);
	t0 = now_ns();
	for (i = 0; i != ops; i++) {
		cmd.num_iovas = 0;
		/* EMSGSIZE is the answer: one range, room for none. */
		ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
	}
	report("ioctl_round_trip", now_ns() - t0, ops);
	close(fd);
}

/*
 * Map and unmap `len` bytes of `buf` at `iova`, `ops` times, with
 * `ndomains` mock devices on domains of their own and `nareas` other
 * one-page areas mapped beside the measured one.
 */
static void bench_map_unmap(const char *name, void *buf, size_t len,
			    uint64_t iova, unsigned int ndomains,
			    unsigned long nareas, unsigned long ops)
{
	uint64_t t0, t;
	unsigned long i;
	uint32_t ioas;
	int fd;

	if (limit_mode) {
		if (!nareas)
			limit_map_row(name, buf, len, ndomains, ops);
		return;
	}
	fd = dev_open();
	ioas = ioas_alloc(fd);
	devices_own_domains(fd, ioas, ndomains, 0, NULL);
	for (i = 0; i != nareas; i++)
		map_fixed(fd, ioas, buf, SZ_4K, IOVA_1G + i * 8192);
	/* Warm up (first-touch costs are not what is measured). */
	map_fixed(fd, ioas, buf, len, iova);
	unmap(fd, ioas, iova, len);
	t0 = now_ns();
	for (i = 0; i != ops; i++) {
		map_fixed(fd, ioas, buf, len, iova);
		unmap(fd, ioas, iova, len);
	}
	t = now_ns() - t0;
	report(name, t, ops);
	close(fd);
}

struct thread_arg {
	int fd;
	uint32_t ioas;
	void *buf;
	uint64_t iova;
	unsigned long ops;
	pthread_barrier_t *barrier;
};

static void *map_thread(void *p)
{
	struct thread_arg *a = p;
	unsigned long i;

	pthread_barrier_wait(a->barrier);
	for (i = 0; i != a->ops; i++) {
		map_fixed(a->fd, a->ioas, a->buf, SZ_64K, a->iova);
		unmap(a->fd, a->ioas, a->iova, SZ_64K);
	}
	return NULL;
}

/*
 * Four threads map and unmap 64 KiB each, disjoint ranges of one IOAS with
 * one device; the time is the wall time over all the threads' operations.
 */
static void bench_threads(void *buf, unsigned long ops)
{
	struct thread_arg args[4];
	pthread_barrier_t barrier;
	pthread_t th[4];
	uint64_t t0, t;
	uint32_t ioas;
	unsigned int i;
	int fd;

	if (limit_mode)
		return;
	fd = dev_open();
	ioas = ioas_alloc(fd);
	devices_own_domains(fd, ioas, 1, 0, NULL);
	pthread_barrier_init(&barrier, NULL, 5);
	for (i = 0; i != 4; i++) {
		args[i] = (struct thread_arg){
			.fd = fd,
			.ioas = ioas,
			.buf = (char *)buf + i * SZ_64K,
			.iova = IOVA_SMALL + i * SZ_2M,
			.ops = ops,
			.barrier = &barrier,
		};
		if (pthread_create(&th[i], NULL, map_thread, &args[i]))
			die("pthread_create");
	}
	pthread_barrier_wait(&barrier);
	t0 = now_ns();
	for (i = 0; i != 4; i++)
		pthread_join(th[i], NULL);
	t = now_ns() - t0;
	pthread_barrier_destroy(&barrier);
	report("map_unmap_64k_1dev_4threads", t, 4 * ops);
	close(fd);
}

/* IOMMU_IOAS_COPY of a 2 MiB huge page into an IOAS with one device. */
static void bench_copy(void *huge, unsigned long ops)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = SZ_2M,
		.dst_iova = IOVA_SMALL,
		.src_iova = IOVA_SMALL,
	};
	uint64_t t0, t;
	unsigned long i;
	int fd;

	if (limit_mode)
		return;
	fd = dev_open();
	cmd.src_ioas_id = ioas_alloc(fd);
	cmd.dst_ioas_id = ioas_alloc(fd);
	devices_own_domains(fd, cmd.src_ioas_id, 1, 0, NULL);
	devices_own_domains(fd, cmd.dst_ioas_id, 1, 0, NULL);
	map_fixed(fd, cmd.src_ioas_id, huge, SZ_2M, IOVA_SMALL);
	t0 = 0;
	for (i = 0; i <= ops; i++) {
		/* The first round is the warm-up. */
		if (i == 1)
			t0 = now_ns();
		if (ioctl(fd, IOMMU_IOAS_COPY, &cmd))
			die("IOMMU_IOAS_COPY");
		unmap(fd, cmd.dst_ioas_id, IOVA_SMALL, SZ_2M);
	}
	t = now_ns() - t0;
	report("ioas_copy_unmap_2m_huge_1dev", t, ops);
	close(fd);
}

/* An access (an emulated device's path) pins and unpins 64 KiB. */
static void bench_access(void *buf, unsigned long ops)
{
	struct iommu_test_cmd create = {
		.size = sizeof(create),
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.create_access = { .flags = MOCK_FLAGS_ACCESS_WRITE },
	};
	uint64_t t0 = 0, t;
	unsigned long i;
	uint32_t ioas;
	int fd;

	if (limit_mode) {
		limit_pin_row("access_pin_unpin_64k", buf, SZ_64K, ops);
		return;
	}
	fd = dev_open();
	ioas = ioas_alloc(fd);
	map_fixed(fd, ioas, buf, SZ_64K, IOVA_SMALL);
	create.id = ioas;
	if (ioctl(fd, IOMMU_TEST_CMD, &create))
		die("IOMMU_TEST_CMD CREATE_ACCESS");
	for (i = 0; i <= ops; i++) {
		struct iommu_test_cmd pages = {
			.size = sizeof(pages),
			.op = IOMMU_TEST_OP_ACCESS_PAGES,
			.id = create.create_access.out_access_fd,
			.access_pages = {
				.flags = MOCK_FLAGS_ACCESS_WRITE,
				.iova = IOVA_SMALL,
				.length = SZ_64K,
				.uptr = (uintptr_t)buf,
			},
		};
		struct iommu_test_cmd destroy = {
			.size = sizeof(destroy),
			.op = IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
			.id = create.create_access.out_access_fd,
		};

		if (i == 1)
			t0 = now_ns();
		if (ioctl(fd, IOMMU_TEST_CMD, &pages))
			die("IOMMU_TEST_CMD ACCESS_PAGES");
		destroy.destroy_access_pages.access_pages_id =
			pages.access_pages.out_access_pages_id;
		if (ioctl(fd, IOMMU_TEST_CMD, &destroy))
			die("IOMMU_TEST_CMD DESTROY_ACCESS_PAGES");
	}
	t = now_ns() - t0;
	report("access_pin_unpin_64k", t, ops);
	close(create.create_access.out_access_fd);
	close(fd);
}

/* Reading the dirty bitmap of a 128 MiB range, every page dirty. */
static void bench_dirty(void *buf, unsigned long ops)
{
	static uint64_t bitmap[SZ_128M / SZ_4K / 64];
	struct iommu_hwpt_get_dirty_bitmap get = {
		.size = sizeof(get),
		.flags = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
		.iova = IOVA_SMALL,
		.length = SZ_128M,
		.page_size = SZ_4K,
		.data = (uintptr_t)bitmap,
	};
	struct iommu_hwpt_set_dirty_tracking track = {
		.size = sizeof(track),
		.flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
	};
	struct iommu_test_cmd mark = {
		.size = sizeof(mark),
		.op = IOMMU_TEST_OP_DIRTY,
		.dirty = {
			.iova = IOVA_SMALL,
			.length = SZ_128M,
			.page_size = SZ_4K,
			.uptr = (uintptr_t)bitmap,
		},
	};
	uint64_t t0 = 0, t;
	unsigned long i;
	uint32_t ioas, hwpt;
	int fd;

	if (limit_mode)
		return;
	fd = dev_open();
	ioas = ioas_alloc(fd);
	devices_own_domains(fd, ioas, 1, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
			    &hwpt);
	map_fixed(fd, ioas, buf, SZ_128M, IOVA_SMALL);
	track.hwpt_id = hwpt;
	if (ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &track))
		die("IOMMU_HWPT_SET_DIRTY_TRACKING");
	memset(bitmap, 0xff, sizeof(bitmap));
	mark.id = hwpt;
	if (ioctl(fd, IOMMU_TEST_CMD, &mark))
		die("IOMMU_TEST_CMD DIRTY");
	get.hwpt_id = hwpt;
	for (i = 0; i <= ops; i++) {
		if (i == 1)
			t0 = now_ns();
		if (ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &get))
			die("IOMMU_HWPT_GET_DIRTY_BITMAP");
	}
	t = now_ns() - t0;
	/* Every page was marked, and NO_CLEAR keeps them marked. */
	for (i = 0; i != sizeof(bitmap) / sizeof(bitmap[0]); i++)
		if (bitmap[i] != ~0ULL) {
			errno = EIO;
			die("dirty bitmap lost bits");
		}
	report("dirty_bitmap_128m", t, ops);
	close(fd);
}

/*
 * The nesting objects of the mock: a NEST_PARENT paging HWPT, a selftest
 * vIOMMU over it, a device's vDEVICE, and the device attached to a nested
 * HWPT of the vIOMMU.
 */
struct nest {
	int fd;
	struct mock_dev dev;
	uint32_t ioas, parent, viommu, vdev, nested;
};

static struct nest nest_setup(void)
{
	struct iommu_viommu_alloc viommu = {
		.size = sizeof(viommu),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
	};
	struct iommu_vdevice_alloc vdev = {
		.size = sizeof(vdev),
		.virt_id = 0x99,
	};
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct nest n;

	n.fd = dev_open();
	n.ioas = ioas_alloc(n.fd);
	n.dev = mock_domain(n.fd, n.ioas);
	n.parent = hwpt_alloc(n.fd, n.dev.idev_id, n.ioas,
			      IOMMU_HWPT_ALLOC_NEST_PARENT, 0,
			      IOMMU_HWPT_DATA_NONE, NULL, 0);
	mock_replace(n.fd, n.dev.stdev_id, n.parent);
	viommu.dev_id = n.dev.idev_id;
	viommu.hwpt_id = n.parent;
	if (ioctl(n.fd, IOMMU_VIOMMU_ALLOC, &viommu))
		die("IOMMU_VIOMMU_ALLOC");
	n.viommu = viommu.out_viommu_id;
	vdev.viommu_id = n.viommu;
	vdev.dev_id = n.dev.idev_id;
	if (ioctl(n.fd, IOMMU_VDEVICE_ALLOC, &vdev))
		die("IOMMU_VDEVICE_ALLOC");
	n.vdev = vdev.out_vdevice_id;
	n.nested = hwpt_alloc(n.fd, n.dev.idev_id, n.viommu, 0, 0,
			      IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data));
	mock_replace(n.fd, n.dev.stdev_id, n.nested);
	return n;
}

/* HWPT_INVALIDATE of a nested HWPT, 64 entries a call; time per entry. */
static void bench_invalidate(unsigned long ops)
{
	struct iommu_hwpt_invalidate_selftest inv[64];
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.data_uptr = (uintptr_t)inv,
		.data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
		.entry_len = sizeof(inv[0]),
	};
	uint64_t t0 = 0, t;
	unsigned long i;
	struct nest n;

	if (limit_mode)
		return;
	n = nest_setup();
	cmd.hwpt_id = n.nested;
	for (i = 0; i != 64; i++)
		inv[i] = (struct iommu_hwpt_invalidate_selftest){
			.iotlb_id = i % (MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1),
		};
	for (i = 0; i <= ops; i++) {
		if (i == 1)
			t0 = now_ns();
		cmd.entry_num = 64;
		if (ioctl(n.fd, IOMMU_HWPT_INVALIDATE, &cmd) ||
		    cmd.entry_num != 64)
			die("IOMMU_HWPT_INVALIDATE");
	}
	t = now_ns() - t0;
	report("hwpt_invalidate_per_entry", t, ops * 64);
	close(n.fd);
}

/* vEVENTs: 32 triggered, then read in one read(); time per event. */
static void bench_vevent(unsigned long ops)
{
	struct iommu_veventq_alloc alloc = {
		.size = sizeof(alloc),
		.type = IOMMU_VEVENTQ_TYPE_SELFTEST,
		.veventq_depth = 64,
	};
	struct iommu_test_cmd trigger = {
		.size = sizeof(trigger),
		.op = IOMMU_TEST_OP_TRIGGER_VEVENT,
	};
	size_t one = sizeof(struct iommufd_vevent_header) +
		     sizeof(struct iommu_viommu_event_selftest);
	static char buf[64 * 64];
	uint64_t t0 = 0, t;
	unsigned long i, j;
	struct nest n;
	ssize_t got;

	if (limit_mode)
		return;
	n = nest_setup();
	alloc.viommu_id = n.viommu;
	if (ioctl(n.fd, IOMMU_VEVENTQ_ALLOC, &alloc))
		die("IOMMU_VEVENTQ_ALLOC");
	trigger.trigger_vevent.dev_id = n.dev.idev_id;
	for (i = 0; i <= ops; i++) {
		if (i == 1)
			t0 = now_ns();
		for (j = 0; j != 32; j++)
			if (ioctl(n.fd, IOMMU_TEST_CMD, &trigger))
				die("IOMMU_TEST_CMD TRIGGER_VEVENT");
		got = read(alloc.out_veventq_fd, buf, sizeof(buf));
		if (got != (ssize_t)(32 * one)) {
			errno = got < 0 ? errno : EIO;
			die("read vEVENTQ");
		}
	}
	t = now_ns() - t0;
	report("vevent_trigger_read_per_event", t, ops * 32);
	close(alloc.out_veventq_fd);
	close(n.fd);
}

/* A fault: triggered, read from the FAULT fd, answered by a response. */
static void bench_fault(unsigned long ops)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_fault_alloc falloc = { .size = sizeof(falloc) };
	struct iommu_test_cmd trigger = {
		.size = sizeof(trigger),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {
			.pasid = 0x1,
			.grpid = 0x2,
			.perm = IOMMU_PGFAULT_PERM_READ |
				IOMMU_PGFAULT_PERM_WRITE,
			.addr = 0xdeadb000,
		},
	};
	struct iommu_hwpt_page_response resp = {
		.code = IOMMUFD_PAGE_RESP_SUCCESS,
	};
	struct iommu_hwpt_pgfault fault;
	uint64_t t0 = 0, t;
	uint32_t hwpt;
	unsigned long i;
	struct nest n;

	if (limit_mode)
		return;
	n = nest_setup();
	if (ioctl(n.fd, IOMMU_FAULT_QUEUE_ALLOC, &falloc))
		die("IOMMU_FAULT_QUEUE_ALLOC");
	hwpt = hwpt_alloc(n.fd, n.dev.idev_id, n.viommu,
			  IOMMU_HWPT_FAULT_ID_VALID, falloc.out_fault_id,
			  IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data));
	mock_replace(n.fd, n.dev.stdev_id, hwpt);
	trigger.trigger_iopf.dev_id = n.dev.idev_id;
	for (i = 0; i <= ops; i++) {
		if (i == 1)
			t0 = now_ns();
		if (ioctl(n.fd, IOMMU_TEST_CMD, &trigger))
			die("IOMMU_TEST_CMD TRIGGER_IOPF");
		if (read(falloc.out_fault_fd, &fault, sizeof(fault)) !=
		    sizeof(fault))
			die("read FAULT");
		resp.cookie = fault.cookie;
		if (write(falloc.out_fault_fd, &resp, sizeof(resp)) !=
		    sizeof(resp))
			die("write FAULT response");
	}
	t = now_ns() - t0;
	report("fault_read_respond", t, ops);
	close(falloc.out_fault_fd);
	close(n.fd);
}

static void *map_anon(size_t len, int flags, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | flags, -1,
		       0);

	if (p == MAP_FAILED)
		die(what);
	return p;
}

/* 2 MiB of anonymous memory in a transparent huge page. */
static void *map_thp(void)
{
	char *p = map_anon(2 * SZ_2M, MAP_NORESERVE, "mmap THP");
	char *a = (char *)(((uintptr_t)p + SZ_2M - 1) & ~(SZ_2M - 1));

	if (madvise(a, SZ_2M, MADV_HUGEPAGE))
		die("madvise MADV_HUGEPAGE");
	memset(a, 1, SZ_2M);
	return a;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		size_t len;
		uint64_t iova;
		unsigned long ops;
	} sizes[] = {
		{ "4k", SZ_4K, IOVA_SMALL, 2000 },
		{ "64k", SZ_64K, IOVA_SMALL, 1000 },
		{ "2m_thp", SZ_2M, IOVA_SMALL, 200 },
		{ "2m_huge", SZ_2M, IOVA_SMALL, 200 },
		{ "1g_huge", SZ_1G, IOVA_1G, 3 },
	};
	void *buf[5], *small, *dirty;
	unsigned int s, nd;
	char name[64];

	if (argc > 1 && !strcmp(argv[1], "--limit")) {
		limit_mode = 1;
		limit_open();
	}
	small = map_anon(4 * SZ_64K, 0, "mmap 256 KiB");
	buf[0] = small;
	buf[1] = small;
	buf[2] = map_thp();
	buf[3] = map_anon(SZ_2M, MAP_HUGETLB | MAP_HUGE_2MB, "mmap 2 MiB huge page");
	buf[4] = map_anon(SZ_1G, MAP_HUGETLB | MAP_HUGE_1GB, "mmap 1 GiB huge page");

	bench_ioctl_round_trip(20000);
	for (s = 0; s != sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (nd = 0; nd <= 4; nd = nd ? nd * 2 : 1) {
			snprintf(name, sizeof(name), "map_unmap_%s_%udev",
				 sizes[s].name, nd);
			/*
			 * Without a device nothing is pinned: the cost does
			 * not grow with the size, so every size gets the ops
			 * of the smallest (3 ops of 1 GiB would measure
			 * one-off costs).
			 */
			bench_map_unmap(name, buf[s], sizes[s].len,
					sizes[s].iova, nd, 0,
					nd ? sizes[s].ops : sizes[0].ops);
		}
	}
	bench_map_unmap("map_unmap_4k_0dev_4096areas", small, SZ_4K,
			IOVA_SMALL, 0, 4096, 2000);
	bench_threads(small, 500);
	bench_copy(buf[3], 200);
	bench_access(small, 1000);
	munmap(buf[4], SZ_1G);
	dirty = map_anon(SZ_128M, 0, "mmap 128 MiB");
	bench_dirty(dirty, 20);
	bench_invalidate(500);
	bench_vevent(100);
	bench_fault(1000);
	return 0;
}
