// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-demo: opens /dev/iommu and runs a short ioctl sequence on it,
 * printing each step: allocate an IOAS, map 1 MiB of anonymous memory at a
 * fixed IOVA, read the allowed IOVA ranges, unmap, destroy, and send an
 * ioctl number that does not exist.
 *
 * A step answered with ENOTTY is reported as "not implemented" (the
 * implementation does not know that ioctl yet). With --require-all such a
 * step counts as a failure. Exit status: 0 when no step failed, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>

#define MAP_LEN (1UL << 20)
#define MAP_IOVA (1UL << 24)

static int n_ok, n_unimpl, n_fail, require_all;

/* Records the outcome of one step; returns 1 when the step succeeded. */
static int step(const char *what, int rc, int want_errno)
{
	int err = rc ? errno : 0;

	if (err == want_errno) {
		printf("  %-44s ok%s%s\n", what, want_errno ? ", errno " : "",
		       want_errno ? strerror(want_errno) : "");
		n_ok++;
		return 1;
	}
	if (err == ENOTTY && !require_all) {
		printf("  %-44s not implemented (ENOTTY)\n", what);
		n_unimpl++;
		return 0;
	}
	printf("  %-44s FAILED: %s (wanted %s)\n", what, err ? strerror(err) : "success",
	       want_errno ? strerror(want_errno) : "success");
	n_fail++;
	return 0;
}

int main(int argc, char **argv)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct iommu_iova_range ranges[8];
	struct iommu_ioas_iova_ranges query = {
		.size = sizeof(query),
		.num_iovas = 8,
		.allowed_iovas = (uintptr_t)ranges,
	};
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = MAP_LEN,
		.iova = MAP_IOVA,
	};
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.iova = MAP_IOVA,
		.length = MAP_LEN,
	};
	struct iommu_destroy destroy = { .size = sizeof(destroy) };
	void *buf;
	int fd;

	require_all = argc > 1 && !strcmp(argv[1], "--require-all");

	printf("iommufd-demo: open /dev/iommu\n");
	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0) {
		printf("iommufd-demo: cannot open /dev/iommu: %s\n", strerror(errno));
		return 1;
	}
	buf = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 0x5a, MAP_LEN);
	map.user_va = (uintptr_t)buf;

	if (step("IOMMU_IOAS_ALLOC", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc), 0)) {
		printf("    ioas id %u\n", alloc.out_ioas_id);
		map.ioas_id = alloc.out_ioas_id;
		query.ioas_id = alloc.out_ioas_id;
		unmap.ioas_id = alloc.out_ioas_id;
		destroy.id = alloc.out_ioas_id;

		if (step("IOMMU_IOAS_MAP 1 MiB at IOVA 0x1000000", ioctl(fd, IOMMU_IOAS_MAP, &map), 0))
			printf("    mapped at iova 0x%llx\n", (unsigned long long)map.iova);
		if (step("IOMMU_IOAS_IOVA_RANGES", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &query), 0))
			for (unsigned int i = 0; i < query.num_iovas && i < 8; i++)
				printf("    allowed [0x%llx, 0x%llx]\n",
				       (unsigned long long)ranges[i].start,
				       (unsigned long long)ranges[i].last);
		if (step("IOMMU_IOAS_UNMAP", ioctl(fd, IOMMU_IOAS_UNMAP, &unmap), 0)) {
			printf("    unmapped 0x%llx bytes\n", (unsigned long long)unmap.length);
			if (unmap.length != MAP_LEN) {
				printf("  unmapped length is wrong\n");
				n_fail++;
			}
		}
		step("IOMMU_DESTROY the IOAS", ioctl(fd, IOMMU_DESTROY, &destroy), 0);
		step("IOMMU_DESTROY it again", ioctl(fd, IOMMU_DESTROY, &destroy), ENOENT);
	}
	/* An ioctl number nobody defines must be refused with ENOTTY. */
	step("unknown ioctl _IO(';', 0x7f)", ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), NULL), ENOTTY);
	close(fd);

	printf("iommufd-demo: %d ok, %d not implemented, %d failed\n", n_ok, n_unimpl, n_fail);
	return n_fail ? 1 : 0;
}
