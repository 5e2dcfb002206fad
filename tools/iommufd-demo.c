// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd-demo: opens /dev/iommu and runs a short ioctl sequence on it,
 * printing each step: allocate an IOAS, map 1 MiB of anonymous memory at a
 * fixed IOVA, read the allowed IOVA ranges, unmap, destroy, and send an
 * ioctl number that does not exist.
 *
 * Then nesting, on the selftest mock IOMMU (IOMMU_TEST_CMD): a mock device
 * on an IOAS, a nest-parent HWPT (the stage 2), a vIOMMU over it, the
 * device's vDEVICE with a virtual id, a nested HWPT (a guest stage 1) on the
 * vIOMMU, the device moved onto it, a guest invalidation command through the
 * vIOMMU, and an event of the device read from the vIOMMU's vEVENTQ with its
 * virtual id. Skipped, and said so, in a kernel without IOMMU_TEST_CMD.
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

#include "../../../drivers/iommu/iommufd/iommufd_test.h"

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

/* Nesting on the mock IOMMU: stage 2 from an IOAS, stage 1 through a vIOMMU. */
static void nesting(int fd, void *buf)
{
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_test_cmd mock = {
		.size = sizeof(mock),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
	};
	struct iommu_hwpt_selftest s1 = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_alloc parent = {
		.size = sizeof(parent),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
	};
	struct iommu_viommu_alloc viommu = {
		.size = sizeof(viommu),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
	};
	struct iommu_vdevice_alloc vdev = { .size = sizeof(vdev), .virt_id = 0x42 };
	struct iommu_hwpt_alloc nested = {
		.size = sizeof(nested),
		.data_type = IOMMU_HWPT_DATA_SELFTEST,
		.data_len = sizeof(s1),
		.data_uptr = (uintptr_t)&s1,
	};
	struct iommu_veventq_alloc veventq = {
		.size = sizeof(veventq),
		.type = IOMMU_VEVENTQ_TYPE_SELFTEST,
		.veventq_depth = 4,
	};
	struct iommu_test_cmd replace = {
		.size = sizeof(replace),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	};
	struct iommu_viommu_invalidate_selftest inv = { .cache_id = 0 };
	struct iommu_hwpt_invalidate invalidate = {
		.size = sizeof(invalidate),
		.data_uptr = (uintptr_t)&inv,
		.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
		.entry_len = sizeof(inv),
		.entry_num = 1,
	};
	struct iommu_test_cmd trigger = {
		.size = sizeof(trigger),
		.op = IOMMU_TEST_OP_TRIGGER_VEVENT,
	};
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = MAP_LEN,
		.iova = MAP_IOVA,
		.user_va = (uintptr_t)buf,
	};
	struct {
		struct iommufd_vevent_header hdr;
		struct iommu_viommu_event_selftest ev;
	} rec;

	printf("iommufd-demo: nesting on the selftest mock IOMMU\n");
	if (!step("IOMMU_IOAS_ALLOC (the guest's RAM)", ioctl(fd, IOMMU_IOAS_ALLOC, &ioas), 0))
		return;
	map.ioas_id = ioas.out_ioas_id;
	step("IOMMU_IOAS_MAP 1 MiB at IOVA 0x1000000", ioctl(fd, IOMMU_IOAS_MAP, &map), 0);
	mock.id = ioas.out_ioas_id;
	if (ioctl(fd, IOMMU_TEST_CMD, &mock) && errno == ENOTTY) {
		printf("  (no IOMMU_TEST_CMD in this kernel: nesting on the mock skipped)\n");
		return;
	}
	printf("  %-44s ok\n    device %u on hwpt %u\n", "IOMMU_TEST_OP_MOCK_DOMAIN (a device)",
	       mock.mock_domain.out_idev_id, mock.mock_domain.out_hwpt_id);
	n_ok++;
	parent.dev_id = mock.mock_domain.out_idev_id;
	parent.pt_id = ioas.out_ioas_id;
	if (!step("IOMMU_HWPT_ALLOC NEST_PARENT (stage 2)", ioctl(fd, IOMMU_HWPT_ALLOC, &parent), 0))
		return;
	viommu.dev_id = parent.dev_id;
	viommu.hwpt_id = parent.out_hwpt_id;
	if (!step("IOMMU_VIOMMU_ALLOC on it", ioctl(fd, IOMMU_VIOMMU_ALLOC, &viommu), 0))
		return;
	printf("    viommu %u over hwpt %u\n", viommu.out_viommu_id, parent.out_hwpt_id);
	vdev.viommu_id = viommu.out_viommu_id;
	vdev.dev_id = parent.dev_id;
	if (!step("IOMMU_VDEVICE_ALLOC virtual id 0x42", ioctl(fd, IOMMU_VDEVICE_ALLOC, &vdev), 0))
		return;
	nested.dev_id = parent.dev_id;
	nested.pt_id = viommu.out_viommu_id;
	if (!step("IOMMU_HWPT_ALLOC nested on the vIOMMU", ioctl(fd, IOMMU_HWPT_ALLOC, &nested), 0))
		return;
	veventq.viommu_id = viommu.out_viommu_id;
	if (!step("IOMMU_VEVENTQ_ALLOC", ioctl(fd, IOMMU_VEVENTQ_ALLOC, &veventq), 0))
		return;
	replace.id = mock.mock_domain.out_stdev_id;
	replace.mock_domain_replace.pt_id = nested.out_hwpt_id;
	if (step("attach the device to the nested HWPT", ioctl(fd, IOMMU_TEST_CMD, &replace), 0))
		printf("    device now on hwpt %u (stage 1 over stage 2)\n",
		       replace.mock_domain_replace.pt_id);
	inv.vdev_id = 0x42;
	invalidate.hwpt_id = viommu.out_viommu_id;
	if (step("IOMMU_HWPT_INVALIDATE on the vIOMMU", ioctl(fd, IOMMU_HWPT_INVALIDATE, &invalidate), 0))
		printf("    %u guest command(s) done\n", invalidate.entry_num);
	trigger.trigger_vevent.dev_id = parent.dev_id;
	step("an event of the device (TRIGGER_VEVENT)", ioctl(fd, IOMMU_TEST_CMD, &trigger), 0);
	if (step("read() the vEVENTQ", read(veventq.out_veventq_fd, &rec, sizeof(rec)) ==
					     sizeof(rec) ? 0 : -1, 0)) {
		printf("    event %u for virtual id 0x%x\n", rec.hdr.sequence, rec.ev.virt_id);
		if (rec.ev.virt_id != 0x42) {
			printf("  the event names the wrong device\n");
			n_fail++;
		}
	}
	close(veventq.out_veventq_fd);
	/* The rest goes when the file is closed. */
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
	nesting(fd, buf);
	/* An ioctl number nobody defines must be refused with ENOTTY. */
	step("unknown ioctl _IO(';', 0x7f)", ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), NULL), ENOTTY);
	close(fd);

	printf("iommufd-demo: %d ok, %d not implemented, %d failed\n", n_ok, n_unimpl, n_fail);
	return n_fail ? 1 : 0;
}
