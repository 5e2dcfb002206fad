// SPDX-License-Identifier: GPL-2.0
/*
 * The cost of shadow nesting (iommufd_rs shadow_nesting=1) on the emulated
 * VT-d with first-stage tables only, with an edu device behind vfio-pci: the
 * shadow rebuild of a 4-level table of N 4 KiB leaves (at allocation and on
 * the all-ones invalidation), one invalidation of K pages, and an IOAS unmap
 * plus map of 1 MiB under N recorded leaves (which visits every leaf).
 * Not a test: it prints "bench <row> ns=<median> ..." lines (medians of
 * ROUNDS), run by the VM job shadow_bench. The C iommufd has no shadow
 * nesting, so there is no C column.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#define PG		4096ULL
#define MB		(1024 * 1024ULL)
#define GPA_TABLES	0x04000000ULL	/* 64 MiB: the tables (64 pages) */
#define GPA_DATA	0x10000000ULL	/* 256 MiB: the data the leaves map */
#define DATA_LEN	(64 * MB)
#define IOVA_BASE	0x40000000ULL	/* 1 GiB: the leaves */
#define ROUNDS		5
#define PTE		(1ULL | 2ULL | 4ULL)	/* P, RW, US */

static int iommufd;
static uint32_t devid, ioas, parent;
static uint8_t *tables, *data;

static void die(const char *what)
{
	fprintf(stderr, "iommufd_shadow_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v)
{
	qsort(v, ROUNDS, sizeof(*v), cmp_u64);
	return v[ROUNDS / 2];
}

/* The /dev/vfio/devices node of the first edu bound to vfio-pci. */
static int open_edu(char *cdev, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices"), *v;
	struct dirent *e, *f;
	char path[512], buf[16];
	int fd;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		buf[read(fd, buf, sizeof(buf) - 1) > 0 ? 6 : 0] = 0;
		close(fd);
		if (strcmp(buf, "0x11e8"))
			continue;
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/%s/vfio-dev", e->d_name);
		v = opendir(path);
		if (!v)
			continue;
		while ((f = readdir(v)))
			if (!strncmp(f->d_name, "vfio", 4)) {
				snprintf(cdev, len, "/dev/vfio/devices/%s",
					 f->d_name);
				closedir(v);
				closedir(d);
				return 0;
			}
		closedir(v);
	}
	closedir(d);
	return -1;
}

static void map_fixed(uint64_t iova, void *p, size_t len)
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

	if (ioctl(iommufd, IOMMU_IOAS_MAP, &cmd))
		die("IOMMU_IOAS_MAP");
}

static void unmap(uint64_t iova, size_t len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &cmd))
		die("IOMMU_IOAS_UNMAP");
}

static uint64_t *tab(int pg)
{
	return (uint64_t *)(tables + pg * PG);
}

/* n leaves from IOVA_BASE, page i -> data page i (n <= 16384: 32 PTs). */
static void build(unsigned int n)
{
	memset(tables, 0, 64 * PG);
	tab(0)[(IOVA_BASE >> 39) & 511] = (GPA_TABLES + 1 * PG) | PTE;
	tab(1)[(IOVA_BASE >> 30) & 511] = (GPA_TABLES + 2 * PG) | PTE;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t iova = IOVA_BASE + i * PG;
		int pt = 3 + ((iova >> 21) & 511);

		tab(2)[(iova >> 21) & 511] = (GPA_TABLES + pt * PG) | PTE;
		tab(pt)[(iova >> 12) & 511] = (GPA_DATA + i * PG) | PTE;
	}
}

static uint32_t nested_alloc(void)
{
	struct iommu_hwpt_vtd_s1 s1 = {
		.pgtbl_addr = GPA_TABLES,
		.addr_width = 48,
	};
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = devid,
		.pt_id = parent,
		.data_type = IOMMU_HWPT_DATA_VTD_S1,
		.data_len = sizeof(s1),
		.data_uptr = (uintptr_t)&s1,
	};

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd))
		die("IOMMU_HWPT_ALLOC VTD_S1");
	return cmd.out_hwpt_id;
}

static void destroy(uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	if (ioctl(iommufd, IOMMU_DESTROY, &cmd))
		die("IOMMU_DESTROY");
}

static void invalidate(uint32_t id, uint64_t addr, uint64_t npages)
{
	struct iommu_hwpt_vtd_s1_invalidate e = {
		.addr = addr,
		.npages = npages,
	};
	struct iommu_hwpt_invalidate cmd = {
		.size = sizeof(cmd),
		.hwpt_id = id,
		.data_uptr = (uintptr_t)&e,
		.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
		.entry_len = sizeof(e),
		.entry_num = 1,
	};

	if (ioctl(iommufd, IOMMU_HWPT_INVALIDATE, &cmd))
		die("IOMMU_HWPT_INVALIDATE");
}

int main(void)
{
	static const unsigned int ns[] = { 512, 4096, 16384 };
	static const unsigned int ks[] = { 1, 16, 512 };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc ia = { .size = sizeof(ia) };
	struct iommu_hwpt_alloc pa = {
		.size = sizeof(pa),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
	};
	uint64_t t[ROUNDS], t2[ROUNDS], t3[ROUNDS];
	char cdev[300];
	int devfd;

	if (open_edu(cdev, sizeof(cdev)))
		die("no edu bound to vfio-pci");
	iommufd = open("/dev/iommu", O_RDWR);
	devfd = open(cdev, O_RDWR);
	if (iommufd < 0 || devfd < 0)
		die("open");
	bind.iommufd = iommufd;
	if (ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	devid = bind.out_devid;
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &ia))
		die("IOMMU_IOAS_ALLOC");
	ioas = ia.out_ioas_id;
	tables = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	data = mmap(NULL, DATA_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (tables == MAP_FAILED || data == MAP_FAILED)
		die("mmap");
	map_fixed(GPA_TABLES, tables, 64 * PG);
	for (uint64_t off = 0; off < DATA_LEN; off += MB)
		map_fixed(GPA_DATA + off, data + off, MB);
	pa.dev_id = devid;
	pa.pt_id = ioas;
	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &pa))
		die("NEST_PARENT (is iommufd_rs loaded with shadow_nesting=1?)");
	parent = pa.out_hwpt_id;

	for (unsigned int a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
		unsigned int n = ns[a];
		uint32_t id;

		build(n);
		for (int r = 0; r < ROUNDS; r++) {
			uint64_t t0 = now_ns();

			id = nested_alloc();
			t[r] = now_ns() - t0;
			t0 = now_ns();
			invalidate(id, 0, UINT64_MAX);
			t2[r] = now_ns() - t0;
			/* 1 MiB of stage 2 out and back under n leaves. */
			t0 = now_ns();
			unmap(GPA_DATA + 32 * MB, MB);
			map_fixed(GPA_DATA + 32 * MB, data + 32 * MB, MB);
			t3[r] = now_ns() - t0;
			destroy(id);
		}
		printf("bench shadow_alloc_%u_leaves ns=%llu ns_per_leaf=%llu\n",
		       n, (unsigned long long)median(t),
		       (unsigned long long)(t[ROUNDS / 2] / n));
		printf("bench shadow_rebuild_%u_leaves ns=%llu ns_per_leaf=%llu\n",
		       n, (unsigned long long)median(t2),
		       (unsigned long long)(t2[ROUNDS / 2] / n));
		printf("bench shadow_s2_unmap_map_1M_under_%u_leaves ns=%llu\n", n,
		       (unsigned long long)median(t3));
	}
	/* One invalidation of k pages in a table of 16384 leaves. */
	{
		uint32_t id = nested_alloc();

		for (unsigned int a = 0; a < sizeof(ks) / sizeof(ks[0]); a++) {
			unsigned int k = ks[a];

			for (int r = 0; r < ROUNDS; r++) {
				uint64_t t0 = now_ns();

				invalidate(id, IOVA_BASE + 1024 * PG, k);
				t[r] = now_ns() - t0;
			}
			printf("bench shadow_invalidate_%u_pages ns=%llu ns_per_page=%llu\n",
			       k, (unsigned long long)median(t),
			       (unsigned long long)(t[ROUNDS / 2] / k));
		}
		destroy(id);
	}
	printf("bench shadow done\n");
	return 0;
}
