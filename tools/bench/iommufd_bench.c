// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmarks of an iommufd implementation, run in the test VM against
 * the C iommufd and the Rust one in turn (scripts/bench.sh prints the
 * ratios). Each line of output is
 *   bench NAME ns_per_op=N ops=N
 *
 * Mock domains are created with the selftest command IOMMU_TEST_CMD
 * (op MOCK_DOMAIN), whose ABI is defined here from the facts of the
 * upstream test header.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>

/* IOMMU_TEST_CMD: _IO(';', 0x80 + 32), op 2 = MOCK_DOMAIN. */
#define TEST_CMD _IO(IOMMUFD_TYPE, 0x80 + 32)
#define TEST_OP_MOCK_DOMAIN 2
/* The mock domains' aperture starts at 16 MiB. */
#define MOCK_APERTURE_START (1ULL << 24)

struct test_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t reserved;
	union {
		struct {
			uint32_t out_stdev_id;
			uint32_t out_hwpt_id;
			uint32_t out_idev_id;
		} mock_domain;
		uint8_t raw[48];
	};
	uint32_t last;
	uint32_t pad;
};

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

static uint32_t ioas_alloc(int fd)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	if (ioctl(fd, IOMMU_IOAS_ALLOC, &cmd))
		die("IOMMU_IOAS_ALLOC");
	return cmd.out_ioas_id;
}

static void mock_domain(int fd, uint32_t ioas)
{
	struct test_cmd cmd = {
		.size = sizeof(cmd),
		.op = TEST_OP_MOCK_DOMAIN,
		.id = ioas,
	};

	if (ioctl(fd, TEST_CMD, &cmd))
		die("IOMMU_TEST_CMD MOCK_DOMAIN");
}

static void map_fixed(int fd, uint32_t ioas, void *p, size_t len, uint64_t iova)
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

	if (ioctl(fd, IOMMU_IOAS_MAP, &cmd))
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

static void report(const char *name, uint64_t ns, unsigned long ops)
{
	printf("bench %s ns_per_op=%llu ops=%lu\n", name,
	       (unsigned long long)(ns / ops), ops);
	fflush(stdout);
}

/*
 * Map and unmap `len` bytes of `buf`, `ops` times, with `ndomains` mock
 * devices and `nareas` other one-page areas mapped below the measured one.
 */
static void bench_map_unmap(const char *name, void *buf, size_t len,
			    unsigned int ndomains, unsigned long nareas,
			    unsigned long ops)
{
	int fd = open("/dev/iommu", O_RDWR);
	uint64_t t0, t;
	unsigned long i;
	uint32_t ioas;

	if (fd < 0)
		die("open /dev/iommu");
	ioas = ioas_alloc(fd);
	for (i = 0; i != ndomains; i++)
		mock_domain(fd, ioas);
	for (i = 0; i != nareas; i++)
		map_fixed(fd, ioas, buf, 4096,
			  MOCK_APERTURE_START + (1ULL << 30) + i * 8192);
	/* Warm up (first-touch costs are not what is measured). */
	map_fixed(fd, ioas, buf, len, MOCK_APERTURE_START);
	unmap(fd, ioas, MOCK_APERTURE_START, len);
	t0 = now_ns();
	for (i = 0; i != ops; i++) {
		map_fixed(fd, ioas, buf, len, MOCK_APERTURE_START);
		unmap(fd, ioas, MOCK_APERTURE_START, len);
	}
	t = now_ns() - t0;
	report(name, t, ops);
	close(fd);
}

static void bench_ioctl_round_trip(unsigned long ops)
{
	struct iommu_ioas_iova_ranges cmd = { .size = sizeof(cmd) };
	int fd = open("/dev/iommu", O_RDWR);
	uint64_t t0;
	unsigned long i;

	if (fd < 0)
		die("open /dev/iommu");
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

int main(void)
{
	size_t huge = 2UL << 20;
	void *small, *big;
	char name[64];
	unsigned int nd;

	small = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (small == MAP_FAILED)
		die("mmap 4 KiB");
	big = mmap(NULL, huge, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1,
		   0);
	if (big == MAP_FAILED)
		die("mmap 2 MiB huge page");

	bench_ioctl_round_trip(20000);
	for (nd = 0; nd <= 4; nd = nd ? nd * 2 : 1) {
		snprintf(name, sizeof(name), "map_unmap_4k_%udev", nd);
		bench_map_unmap(name, small, 4096, nd, 0, 2000);
		snprintf(name, sizeof(name), "map_unmap_2m_%udev", nd);
		bench_map_unmap(name, big, huge, nd, 0, 200);
	}
	bench_map_unmap("map_unmap_4k_0dev_4096areas", small, 4096, 0, 4096,
			2000);
	return 0;
}
