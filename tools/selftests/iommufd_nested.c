// SPDX-License-Identifier: GPL-2.0
/*
 * HWPT_NESTED and IOMMU_HWPT_INVALIDATE on the selftest mock, against both
 * implementations: a nested HWPT over a NEST_PARENT HWPT_PAGING, the errno of
 * every refused allocation, the cache invalidation batch rules (bounds,
 * partial progress reported in entry_num, the mock's IOTLB afterwards), and
 * the references between a nested HWPT, its parent and attached devices.
 *
 * FAULT objects: the file's read/write/poll rules, faults queued while the
 * file is closed, and what detaching answers.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/iommufd_utils.h"

/* IOMMU_TEST_OP_MD_CHECK_IOTLB, returning -1 with errno on failure. */
static int check_iotlb(int fd, __u32 hwpt_id, __u32 iotlb_id, __u32 value)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
		.id = hwpt_id,
		.check_iotlb = { .id = iotlb_id, .iotlb = value },
	};

	return ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_IOTLB), &cmd);
}

FIXTURE(nested)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 hwpt_id;
	__u32 device_id;
	__u32 parent_id;
};

FIXTURE_SETUP(nested)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->device_id);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
}

FIXTURE_TEARDOWN(nested)
{
	close(self->fd);
}

/* Every refusal of IOMMU_HWPT_ALLOC on a nest parent, with upstream's errno. */
TEST_F(nested, alloc_errno)
{
	struct {
		struct iommu_hwpt_selftest data;
		__u32 tail;
	} big = { .data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT } };
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 not_parent, nested, id;

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id, 0, &not_parent);
	/* No data with a type, or data without one. */
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, self->parent_id, 0,
				   &id, IOMMU_HWPT_DATA_NONE, &data,
				   sizeof(data));
	/* A type the mock does not know. */
	test_err_hwpt_alloc_nested(EOPNOTSUPP, self->device_id,
				   self->parent_id, 0, &id,
				   IOMMU_HWPT_DATA_SELFTEST + 1, &data,
				   sizeof(data));
	/* Shorter than the first version of the structure. */
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, self->parent_id, 0,
				   &id, IOMMU_HWPT_DATA_SELFTEST, &data, 3);
	/* Longer than the structure, even with a zero tail. */
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, self->parent_id, 0,
				   &id, IOMMU_HWPT_DATA_SELFTEST, &big,
				   sizeof(big));
	test_err_hwpt_alloc_nested(EFAULT, self->device_id, self->parent_id, 0,
				   &id, IOMMU_HWPT_DATA_SELFTEST, NULL,
				   sizeof(data));
	/* Flags a nested HWPT cannot have. */
	test_err_hwpt_alloc_nested(EOPNOTSUPP, self->device_id,
				   self->parent_id,
				   IOMMU_HWPT_ALLOC_NEST_PARENT, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_err_hwpt_alloc_nested(EOPNOTSUPP, self->device_id,
				   self->parent_id,
				   IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	/* Parents that are not nest parents: allocated without the flag, automatic. */
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, not_parent, 0, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, self->hwpt_id, 0,
				   &id, IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	/* A nested HWPT is no parent; neither is a device or a missing id. */
	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0, &nested,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, nested, 0, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, self->device_id, 0,
				   &id, IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_err_hwpt_alloc_nested(EINVAL, self->device_id, 0xfffffff, 0, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	/* The IOTLB starts with the value given, the shorter structure too. */
	test_cmd_hwpt_check_iotlb_all(nested, IOMMU_TEST_IOTLB_DEFAULT);
	test_ioctl_destroy(nested);
	data.iotlb = 0x1234;
	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id,
				   IOMMU_HWPT_ALLOC_PASID, &nested,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data.iotlb));
	test_cmd_hwpt_check_iotlb_all(nested, 0x1234);
	/* The IOTLB check only takes nested HWPTs and existing entries. */
	EXPECT_ERRNO(EINVAL, check_iotlb(self->fd, nested,
					 MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1,
					 0x1234));
	EXPECT_ERRNO(EINVAL, check_iotlb(self->fd, nested, 0, 0));
	EXPECT_ERRNO(ENOENT, check_iotlb(self->fd, self->parent_id, 0, 0x1234));
	test_ioctl_destroy(nested);
	test_ioctl_destroy(not_parent);
}

static int invalidate(int fd, __u32 hwpt_id, void *reqs, __u32 type,
		      __u32 len, __u32 *num)
{
	return _test_cmd_hwpt_invalidate(fd, hwpt_id, reqs, type, len, num);
}

/* The batch rules of IOMMU_HWPT_INVALIDATE and entry_num on every outcome. */
TEST_F(nested, invalidate)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_invalidate_selftest reqs[3] = {};
	const __u32 type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
	const __u32 len = sizeof(reqs[0]);
	__u32 nested, num;

	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0, &nested,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));

	/* Refused before the driver sees anything: entry_num comes back 0. */
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, self->parent_id, reqs, type,
					len, &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(ENOENT, invalidate(self->fd, 0xfffffff, reqs, type, len,
					&num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type,
					PAGE_SIZE + 1, &num));
	EXPECT_EQ(0, num);
	num = (1U << 19) + 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, len,
					&num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, NULL, type, len,
					&num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, 0, &num));
	EXPECT_EQ(0, num);

	/* No entries: only the type is checked, by the driver. */
	num = 0;
	EXPECT_EQ(0, invalidate(self->fd, nested, NULL, type, 0, &num));
	EXPECT_EQ(0, num);
	num = 0;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, NULL,
					IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
					0, &num));

	/* Entries shorter or longer than the driver's structure. */
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, len - 1,
					&num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, len + 4,
					&num));
	EXPECT_EQ(0, num);
	test_cmd_hwpt_check_iotlb_all(nested, IOMMU_TEST_IOTLB_DEFAULT);

	/* The third entry fails: two were done, and say so. */
	reqs[0].iotlb_id = 0;
	reqs[1].iotlb_id = 2;
	reqs[2].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
	num = 3;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, len,
					&num));
	EXPECT_EQ(2, num);
	test_cmd_hwpt_check_iotlb(nested, 0, 0);
	test_cmd_hwpt_check_iotlb(nested, 1, IOMMU_TEST_IOTLB_DEFAULT);
	test_cmd_hwpt_check_iotlb(nested, 2, 0);
	test_cmd_hwpt_check_iotlb(nested, 3, IOMMU_TEST_IOTLB_DEFAULT);

	/* An unknown flag fails the first entry: nothing done. */
	reqs[0].flags = 0x2;
	reqs[0].iotlb_id = 1;
	num = 1;
	EXPECT_ERRNO(EOPNOTSUPP, invalidate(self->fd, nested, reqs, type, len,
					    &num));
	EXPECT_EQ(0, num);
	test_cmd_hwpt_check_iotlb(nested, 1, IOMMU_TEST_IOTLB_DEFAULT);

	/* "All" ignores the id, but the id must still be valid. */
	reqs[0].flags = IOMMU_TEST_INVALIDATE_FLAG_ALL;
	reqs[0].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
	num = 1;
	EXPECT_ERRNO(EINVAL, invalidate(self->fd, nested, reqs, type, len,
					&num));
	EXPECT_EQ(0, num);
	reqs[0].iotlb_id = 0;
	num = 1;
	EXPECT_EQ(0, invalidate(self->fd, nested, reqs, type, len, &num));
	EXPECT_EQ(1, num);
	test_cmd_hwpt_check_iotlb_all(nested, 0);
	test_ioctl_destroy(nested);
}

/* Who holds whom: attached devices hold the nested HWPT, which holds its parent. */
TEST_F(nested, attach_references)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 nested[2];
	__u32 stdev2, hwpt2, dev2;

	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0,
				   &nested[0], IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0,
				   &nested[1], IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->parent_id));
	/* The parent's IOAS is busy too. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->ioas_id));

	test_cmd_mock_domain_replace(self->stdev_id, nested[0]);
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, nested[0]));
	/* A second device attaches straight to the nested HWPT. */
	test_cmd_mock_domain(nested[0], &stdev2, &hwpt2, &dev2);
	EXPECT_EQ(nested[0], hwpt2);
	test_cmd_mock_domain_replace(stdev2, nested[1]);
	test_cmd_mock_domain_replace(self->stdev_id, nested[1]);
	test_ioctl_destroy(nested[0]);
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, nested[1]));
	/* Back to the parent, then to the IOAS. */
	test_cmd_mock_domain_replace(self->stdev_id, self->parent_id);
	test_ioctl_destroy(stdev2);
	test_ioctl_destroy(nested[1]);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	test_ioctl_destroy(self->parent_id);
}

/*
 * Closing the context with a device attached to a nested HWPT frees everything
 * (the Rust module's object counters are checked after the suite).
 */
TEST_F(nested, close_with_nested)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 nested;

	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0, &nested,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_mock_domain_replace(self->stdev_id, nested);
	EXPECT_EQ(0, close(self->fd));
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
}

/* IOMMU_TEST_OP_TRIGGER_IOPF without reading the fault. */
static int trigger(int fd, __u32 dev_id, __u32 pasid, __u32 grpid)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = { .dev_id = dev_id, .pasid = pasid,
				  .grpid = grpid, .perm = 1, .addr = 0x1000 },
	};

	return ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_TRIGGER_IOPF), &cmd);
}

static short revents(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/* The fault file's rules, faults queued while it is closed, and detach answering them. */
TEST_F(nested, fault_queue)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_pgfault rec[2] = {};
	struct iommu_hwpt_page_response resp = {};
	__u32 fault_id, fault_fd, iopf_id, id;

	test_ioctl_fault_alloc(&fault_id, &fault_fd);
	/* A FAULT id that is not one, and a fault with a nest parent. */
	test_err_hwpt_alloc_iopf(ENOENT, self->device_id, self->parent_id,
				 self->ioas_id, IOMMU_HWPT_FAULT_ID_VALID, &id,
				 IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data));
	test_err_hwpt_alloc_iopf(EOPNOTSUPP, self->device_id, self->ioas_id,
				 fault_id,
				 IOMMU_HWPT_FAULT_ID_VALID |
					 IOMMU_HWPT_ALLOC_NEST_PARENT,
				 &id, IOMMU_HWPT_DATA_NONE, NULL, 0);
	test_cmd_hwpt_alloc_iopf(self->device_id, self->parent_id, fault_id,
				 IOMMU_HWPT_FAULT_ID_VALID, &iopf_id,
				 IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data));
	/* The HWPT and the open file hold the object. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, fault_id));
	test_cmd_mock_domain_replace(self->stdev_id, iopf_id);

	/* Nothing queued: always writable, not readable, a read returns 0. */
	EXPECT_EQ(POLLOUT, revents(fault_fd));
	EXPECT_EQ(0, read(fault_fd, rec, sizeof(rec[0])));
	ASSERT_EQ(0, trigger(self->fd, self->device_id, 1, 7));
	EXPECT_EQ(POLLOUT | POLLIN, revents(fault_fd) & (POLLOUT | POLLIN));
	/* Sizes that are not whole records, and a buffer of none. */
	EXPECT_ERRNO(ESPIPE, read(fault_fd, rec, sizeof(rec[0]) - 1));
	EXPECT_ERRNO(EINVAL, read(fault_fd, rec, 0));
	ASSERT_EQ(sizeof(rec[0]), read(fault_fd, rec, sizeof(rec)));
	EXPECT_EQ(self->device_id, rec[0].dev_id);
	EXPECT_EQ(1, rec[0].pasid);
	EXPECT_EQ(7, rec[0].grpid);
	EXPECT_EQ(0x1000, rec[0].addr);
	EXPECT_NE(0, rec[0].cookie);
	EXPECT_EQ(POLLOUT, revents(fault_fd));
	/* Answers: a bad size, a bad code, an unknown cookie, then the right one once. */
	resp.cookie = rec[0].cookie;
	EXPECT_ERRNO(ESPIPE, write(fault_fd, &resp, sizeof(resp) - 1));
	resp.code = 2;
	EXPECT_ERRNO(EINVAL, write(fault_fd, &resp, sizeof(resp)));
	resp.code = IOMMUFD_PAGE_RESP_SUCCESS;
	resp.cookie = rec[0].cookie + 1;
	EXPECT_ERRNO(EINVAL, write(fault_fd, &resp, sizeof(resp)));
	resp.cookie = rec[0].cookie;
	EXPECT_EQ(sizeof(resp), write(fault_fd, &resp, sizeof(resp)));
	EXPECT_ERRNO(EINVAL, write(fault_fd, &resp, sizeof(resp)));

	/* Faults pending when the file closes stay queued; so do later ones. */
	ASSERT_EQ(0, trigger(self->fd, self->device_id, 1, 8));
	EXPECT_EQ(0, close(fault_fd));
	ASSERT_EQ(0, trigger(self->fd, self->device_id, 1, 9));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, fault_id));
	/* Detaching answers them; then the HWPT and the object can go. */
	test_cmd_mock_domain_replace(self->stdev_id, self->parent_id);
	test_ioctl_destroy(iopf_id);
	test_ioctl_destroy(fault_id);
}

TEST_HARNESS_MAIN
