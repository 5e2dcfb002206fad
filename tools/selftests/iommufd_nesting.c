// SPDX-License-Identifier: GPL-2.0
/*
 * vIOMMU-based nesting on the selftest mock, against both implementations:
 * what upstream's iommufd_viommu fixture leaves out.
 *
 * - vEVENTQ overflow and recovery: the LOST_EVENTS header takes the next
 *   sequence number, at most once, a later event takes its place, and the
 *   numbers continue after a read;
 * - a vDEVICE destroyed while its events are queued (the events stay);
 * - many nested HWPTs on one parent and on one vIOMMU, torn down in a random
 *   order, with the parent and the vIOMMU busy until the last is gone;
 * - replace between nested HWPTs of one parent, of one vIOMMU, and across
 *   parents and vIOMMUs (a vIOMMU without the device's vDEVICE refuses it and
 *   the device stays where it was);
 * - the errno of malformed vIOMMU allocations and invalidation arrays;
 * - HW queues: pinned memory, the objects they hold, close with queues;
 * - mmap regions outliving the iommufd file descriptor and forking;
 * - the tombstone of a vDEVICE whose device went: its id is not reused;
 * - every kind of nesting object alive, then the context's four holders (its
 *   fd, the vEVENTQ and FAULT fds, an mmap) released in each of 24 orders;
 * - invalidate, destroy and close from several threads at once.
 *
 * Each test closes its file; the runner then checks the Rust module's
 * counters (objects, pinned pages, vEVENTs) are back where they started.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "iommu/iommufd_utils.h"

#define VIOMMU_SELFTEST IOMMU_VIOMMU_TYPE_SELFTEST
#define EV_SIZE (sizeof(struct iommufd_vevent_header) + \
		 sizeof(struct iommu_viommu_event_selftest))

FIXTURE(nesting)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 device_id;
	__u32 parent_id;
	__u32 viommu_id;
	__u32 nested_id;
};

FIXTURE_SETUP(nesting)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };

	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	(void)buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, NULL,
			     &self->device_id);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
	test_cmd_viommu_alloc(self->device_id, self->parent_id,
			      VIOMMU_SELFTEST, NULL, 0, &self->viommu_id);
	test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0,
				   &self->nested_id, IOMMU_HWPT_DATA_SELFTEST,
				   &data, sizeof(data));
}

FIXTURE_TEARDOWN(nesting)
{
	if (self->fd >= 0)
		close(self->fd);
}

static struct iommufd_vevent_header *hdr_at(void *buf, size_t off)
{
	return (struct iommufd_vevent_header *)((char *)buf + off);
}

static __u32 virt_id_at(void *buf, size_t off)
{
	struct iommu_viommu_event_selftest *e =
		(void *)((char *)buf + off +
			 sizeof(struct iommufd_vevent_header));

	return e->virt_id;
}

static short readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents & POLLIN;
}

/* Overflow, the lost-events header, and the sequence numbers after it. */
TEST_F(nesting, veventq_overflow_recovery)
{
	char buf[16 * EV_SIZE];
	__u32 vdev_id, q_id, q_fd;
	ssize_t n;
	int i;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x42, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	/* Without a vEVENTQ of the type, the report is refused. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_trigger_vevents(self->fd, self->device_id, 1));
	test_cmd_veventq_alloc(self->viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 4,
			       &q_id, &q_fd);
	EXPECT_EQ(0, readable(q_fd));

	/* Six events into four places: 0..3 queued, then one header. */
	test_cmd_trigger_vevents(self->device_id, 6);
	EXPECT_NE(0, readable(q_fd));
	/* A buffer for one header only fits no event. */
	EXPECT_ERRNO(EINVAL, read(q_fd, buf, sizeof(struct iommufd_vevent_header)));
	/* One and a half events: exactly one comes. */
	n = read(q_fd, buf, EV_SIZE + EV_SIZE / 2);
	ASSERT_EQ((ssize_t)EV_SIZE, n);
	EXPECT_EQ(0, hdr_at(buf, 0)->flags);
	EXPECT_EQ(0, hdr_at(buf, 0)->sequence);
	EXPECT_EQ(0x42, virt_id_at(buf, 0));
	/* The rest: three events and the header, which took number 5. */
	n = read(q_fd, buf, sizeof(buf));
	ASSERT_EQ((ssize_t)(3 * EV_SIZE + sizeof(struct iommufd_vevent_header)),
		  n);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, hdr_at(buf, i * EV_SIZE)->flags);
		EXPECT_EQ(i + 1, hdr_at(buf, i * EV_SIZE)->sequence);
	}
	EXPECT_EQ(IOMMU_VEVENTQ_FLAG_LOST_EVENTS, hdr_at(buf, 3 * EV_SIZE)->flags);
	EXPECT_EQ(5, hdr_at(buf, 3 * EV_SIZE)->sequence);
	EXPECT_EQ(0, readable(q_fd));

	/* Recovery: the numbers go on, with no header. */
	test_cmd_trigger_vevents(self->device_id, 2);
	n = read(q_fd, buf, sizeof(buf));
	ASSERT_EQ((ssize_t)(2 * EV_SIZE), n);
	EXPECT_EQ(0, hdr_at(buf, 0)->flags);
	EXPECT_EQ(6, hdr_at(buf, 0)->sequence);
	EXPECT_EQ(7, hdr_at(buf, EV_SIZE)->sequence);

	/*
	 * Overflow again, read two, then one more event: it takes the place
	 * of the header at the tail, and the gap in the numbers tells.
	 */
	test_cmd_trigger_vevents(self->device_id, 5);
	n = read(q_fd, buf, 2 * EV_SIZE);
	ASSERT_EQ((ssize_t)(2 * EV_SIZE), n);
	EXPECT_EQ(8, hdr_at(buf, 0)->sequence);
	EXPECT_EQ(9, hdr_at(buf, EV_SIZE)->sequence);
	test_cmd_trigger_vevents(self->device_id, 1);
	n = read(q_fd, buf, sizeof(buf));
	ASSERT_EQ((ssize_t)(3 * EV_SIZE), n);
	EXPECT_EQ(10, hdr_at(buf, 0)->sequence);
	EXPECT_EQ(11, hdr_at(buf, EV_SIZE)->sequence);
	EXPECT_EQ(0, hdr_at(buf, 2 * EV_SIZE)->flags);
	EXPECT_EQ(13, hdr_at(buf, 2 * EV_SIZE)->sequence);

	/* The queue holds its vIOMMU; the file holds the queue. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->viommu_id));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, q_id));
	close(q_fd);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	test_ioctl_destroy(q_id);
	test_ioctl_destroy(vdev_id);
}

/* A vDEVICE destroyed with its events queued: they stay, readable. */
TEST_F(nesting, vdevice_destroy_with_events_queued)
{
	char buf[8 * EV_SIZE];
	__u32 vdev_id, q_id, q_fd, q2_id, q2_fd;

	test_cmd_veventq_alloc(self->viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 8,
			       &q_id, &q_fd);
	/* One queue per type. */
	EXPECT_ERRNO(EEXIST, _test_cmd_veventq_alloc(self->fd, self->viommu_id,
						     IOMMU_VEVENTQ_TYPE_SELFTEST,
						     8, &q2_id, &q2_fd));
	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x7, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	test_cmd_trigger_vevents(self->device_id, 3);
	/* The vDEVICE cannot go while the device is attached through it. */
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	test_ioctl_destroy(vdev_id);
	/* No virtual id any more: nothing to report, no attach. */
	EXPECT_ERRNO(ENOENT,
		     _test_cmd_trigger_vevents(self->fd, self->device_id, 1));
	test_err_mock_domain_replace(ENOENT, self->stdev_id, self->nested_id);
	ASSERT_EQ((ssize_t)(3 * EV_SIZE), read(q_fd, buf, sizeof(buf)));
	EXPECT_EQ(0x7, virt_id_at(buf, 2 * EV_SIZE));

	/* Events left unread when the queue goes are freed with it. */
	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x8, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	test_cmd_trigger_vevents(self->device_id, 4);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	close(q_fd);
	test_ioctl_destroy(q_id);
	test_ioctl_destroy(vdev_id);
	/* And with the whole context, queue and vDEVICE alive. */
	test_cmd_veventq_alloc(self->viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 8,
			       &q_id, &q_fd);
	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x9, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	test_cmd_trigger_vevents(self->device_id, 2);
	close(q_fd);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

#define MANY 24

/* Many nested HWPTs on the parent and on the vIOMMU, destroyed in random order. */
TEST_F(nesting, many_nested_random_teardown)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 ids[2 * MANY], vdev_id;
	int order[2 * MANY];
	int i;

	srand(0x5eed);
	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x1, &vdev_id);
	for (i = 0; i < MANY; i++) {
		test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0,
					   &ids[i], IOMMU_HWPT_DATA_SELFTEST,
					   &data, sizeof(data));
		test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0,
					   &ids[MANY + i],
					   IOMMU_HWPT_DATA_SELFTEST, &data,
					   sizeof(data));
	}
	for (i = 0; i < 2 * MANY; i++)
		order[i] = i;
	for (i = 2 * MANY - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	/* Hop the device over a few of them first. */
	for (i = 0; i < 2 * MANY; i += 5)
		test_cmd_mock_domain_replace(self->stdev_id, ids[order[i]]);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);

	/* Until the last is gone, the parent and the vIOMMU are held. */
	for (i = 0; i < 2 * MANY; i++) {
		EXPECT_ERRNO(EBUSY,
			     _test_ioctl_destroy(self->fd, self->parent_id));
		test_ioctl_destroy(ids[order[i]]);
	}
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->viommu_id));
	test_ioctl_destroy(self->nested_id);
	test_ioctl_destroy(vdev_id);
	/* Now only the vIOMMU holds the parent. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->parent_id));
	test_ioctl_destroy(self->viommu_id);
	test_ioctl_destroy(self->parent_id);
}

/* Replace within one parent, within one vIOMMU, and across both. */
TEST_F(nesting, replace_across_parents)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 parent2, viommu2, n1, n2, v1b, v2, vdev_id, hwpt;

	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &parent2);
	test_cmd_viommu_alloc(self->device_id, parent2, VIOMMU_SELFTEST, NULL,
			      0, &viommu2);
	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0, &n1,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_hwpt_alloc_nested(self->device_id, parent2, 0, &n2,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0, &v1b,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_hwpt_alloc_nested(self->device_id, viommu2, 0, &v2,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));

	/* Nested HWPTs of parents need no vDEVICE. */
	ASSERT_EQ(0, _test_cmd_mock_domain_replace(self->fd, self->stdev_id,
						   n1, &hwpt));
	EXPECT_EQ(n1, hwpt);
	ASSERT_EQ(0, _test_cmd_mock_domain_replace(self->fd, self->stdev_id,
						   n2, &hwpt));
	EXPECT_EQ(n2, hwpt);
	/* The attached nested HWPT and its parent are busy. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, n2));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, parent2));

	/* A vIOMMU's nested HWPT needs the device's vDEVICE there. */
	test_err_mock_domain_replace(ENOENT, self->stdev_id, self->nested_id);
	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x11, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	test_cmd_mock_domain_replace(self->stdev_id, v1b);
	/* One vDEVICE per device: none on the other vIOMMU. */
	EXPECT_ERRNO(EEXIST, _test_cmd_vdevice_alloc(self->fd, viommu2,
						     self->device_id, 0x11,
						     NULL));
	test_err_mock_domain_replace(ENOENT, self->stdev_id, v2);
	/* The device stayed on v1b: its events still go to the first vIOMMU. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_trigger_vevents(self->fd, self->device_id, 1));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, v1b));
	test_ioctl_destroy(v2);

	/* Across to a parent and back. */
	test_cmd_mock_domain_replace(self->stdev_id, n1);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	test_ioctl_destroy(vdev_id);
	test_ioctl_destroy(v1b);
	test_ioctl_destroy(n1);
	test_ioctl_destroy(n2);
	test_ioctl_destroy(viommu2);
	test_ioctl_destroy(parent2);
}

static int viommu_invalidate(int fd, __u32 id, void *reqs, __u32 type,
			     __u32 len, __u32 *num)
{
	return _test_cmd_viommu_invalidate(fd, id, reqs, type, len, num);
}

/* Malformed vIOMMU allocations and invalidation arrays. */
TEST_F(nesting, malformed_errno)
{
	struct iommu_viommu_selftest vdata = { .in_data = 1 };
	struct iommu_viommu_invalidate_selftest *reqs;
	const __u32 type = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
	struct iommu_hwpt_invalidate cmd;
	__u32 vdev_id, num, id;
	char *page;

	/* Two pages, the second inaccessible. */
	page = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, mprotect(page + PAGE_SIZE, PAGE_SIZE, PROT_NONE));

	/* vIOMMU allocation: flags, the reserved type, a fault, a long tail. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->parent_id, 1, VIOMMU_SELFTEST,
					    NULL, 0, &id));
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->parent_id, 0, 0, NULL, 0,
					    &id));
	EXPECT_ERRNO(ENOENT,
		     _test_cmd_viommu_alloc(self->fd, self->ioas_id,
					    self->parent_id, 0, VIOMMU_SELFTEST,
					    NULL, 0, &id));
	EXPECT_ERRNO(ENOENT,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->ioas_id, 0, VIOMMU_SELFTEST,
					    NULL, 0, &id));
	EXPECT_ERRNO(EFAULT,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->parent_id, 0, VIOMMU_SELFTEST,
					    page + PAGE_SIZE, sizeof(vdata),
					    &id));
	EXPECT_ERRNO(EINVAL,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->parent_id, 0, VIOMMU_SELFTEST,
					    &vdata, sizeof(vdata) + 8, &id));
	EXPECT_ERRNO(EINVAL,
		     _test_cmd_viommu_alloc(self->fd, self->device_id,
					    self->parent_id, 0, VIOMMU_SELFTEST,
					    &vdata, 4, &id));
	/* Nested on a vIOMMU: flags, no data, unknown data. */
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_hwpt_alloc(self->fd, self->device_id,
					  self->viommu_id, 0,
					  IOMMU_HWPT_ALLOC_NEST_PARENT, &id,
					  IOMMU_HWPT_DATA_SELFTEST, &vdata, 4));
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_hwpt_alloc(self->fd, self->device_id,
					  self->viommu_id, 0, 0, &id,
					  IOMMU_HWPT_DATA_NONE, NULL, 0));
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_cmd_hwpt_alloc(self->fd, self->device_id,
					  self->viommu_id, 0, 0, &id, 0x1234,
					  &vdata, 4));
	EXPECT_ERRNO(EFAULT,
		     _test_cmd_hwpt_alloc(self->fd, self->device_id,
					  self->viommu_id, 0, 0, &id,
					  IOMMU_HWPT_DATA_SELFTEST,
					  page + PAGE_SIZE, 4));

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x5, &vdev_id);
	/* The last entry of the array ends exactly at the inaccessible page. */
	reqs = (void *)(page + PAGE_SIZE - 2 * sizeof(*reqs));
	memset(reqs, 0, 2 * sizeof(*reqs));
	reqs[0].vdev_id = reqs[1].vdev_id = 0x5;
	reqs[1].cache_id = 1;
	num = 2;
	ASSERT_EQ(0, viommu_invalidate(self->fd, self->viommu_id, reqs, type,
				       sizeof(*reqs), &num));
	EXPECT_EQ(2, num);
	/* entry_num one past the end of the memory: nothing done. */
	num = 3;
	EXPECT_ERRNO(EFAULT, viommu_invalidate(self->fd, self->viommu_id, reqs,
					       type, sizeof(*reqs), &num));
	EXPECT_EQ(0, num);
	/* Entirely unmapped memory. */
	num = 1;
	EXPECT_ERRNO(EFAULT, viommu_invalidate(self->fd, self->viommu_id,
					       page + PAGE_SIZE, type,
					       sizeof(*reqs), &num));
	EXPECT_EQ(0, num);
	/* A longer entry than the kernel's needs a zero tail. */
	memset(page, 0, 64);
	((__u32 *)page)[1] = 0x5;
	((__u32 *)page)[3] = 0xff;
	num = 1;
	EXPECT_ERRNO(E2BIG, viommu_invalidate(self->fd, self->viommu_id, page,
					      type, 16, &num));
	EXPECT_EQ(0, num);
	((__u32 *)page)[3] = 0;
	num = 1;
	EXPECT_EQ(0, viommu_invalidate(self->fd, self->viommu_id, page, type,
				       16, &num));
	EXPECT_EQ(1, num);
	/* A shorter one is zero-extended: cache 0 of virtual id 5. */
	num = 1;
	EXPECT_EQ(0, viommu_invalidate(self->fd, self->viommu_id, page, type,
				       8, &num));
	/* Unknown type, too long an entry, no pointer, reserved field. */
	num = 1;
	EXPECT_ERRNO(EINVAL, viommu_invalidate(self->fd, self->viommu_id, page,
					       type + 1, sizeof(*reqs), &num));
	EXPECT_EQ(0, num);
	num = 1;
	EXPECT_ERRNO(EINVAL, viommu_invalidate(self->fd, self->viommu_id, page,
					       type, PAGE_SIZE + 1, &num));
	num = 1;
	EXPECT_ERRNO(EINVAL, viommu_invalidate(self->fd, self->viommu_id, NULL,
					       type, sizeof(*reqs), &num));
	memset(&cmd, 0, sizeof(cmd));
	cmd.size = sizeof(cmd);
	cmd.hwpt_id = self->viommu_id;
	cmd.data_uptr = (uintptr_t)page;
	cmd.data_type = type;
	cmd.entry_len = sizeof(*reqs);
	cmd.entry_num = 1;
	cmd.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_HWPT_INVALIDATE, &cmd));
	EXPECT_EQ(0, cmd.entry_num);
	/* An IOAS is neither a nested HWPT nor a vIOMMU. */
	num = 1;
	EXPECT_ERRNO(EINVAL, viommu_invalidate(self->fd, self->ioas_id, page,
					       type, sizeof(*reqs), &num));
	test_ioctl_destroy(vdev_id);
	munmap(page, 2 * PAGE_SIZE);
}

/* HW queues pin their memory, hold their vIOMMU, and go with the context. */
TEST_F(nesting, hw_queue_lifetime)
{
	__u64 iova = MOCK_APERTURE_START, iova2;
	__u32 q0, q1;
	void *mem;

	mem = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, _test_ioctl_ioas_map(self->fd, self->ioas_id, mem,
					  PAGE_SIZE, &iova,
					  IOMMU_IOAS_MAP_WRITEABLE |
						  IOMMU_IOAS_MAP_READABLE));
	ASSERT_EQ(0, _test_ioctl_ioas_map(self->fd, self->ioas_id,
					  (char *)mem + PAGE_SIZE, PAGE_SIZE,
					  &iova2,
					  IOMMU_IOAS_MAP_WRITEABLE |
						  IOMMU_IOAS_MAP_READABLE));
	/* A queue inside the first page locks its area. */
	test_cmd_hw_queue_alloc(self->viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST,
				0, iova + PAGE_SIZE / 2, PAGE_SIZE / 4, &q0);
	EXPECT_ERRNO(EBUSY, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						   iova, PAGE_SIZE, NULL));
	test_cmd_hw_queue_alloc(self->viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST,
				1, iova2, PAGE_SIZE, &q1);
	EXPECT_ERRNO(EBUSY, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						   iova2, PAGE_SIZE, NULL));
	/* Queue 0 is held by queue 1, the vIOMMU by both. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, q0));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, self->viommu_id));
	/* An overflowing range is refused before anything is looked up. */
	EXPECT_ERRNO(EOVERFLOW,
		     _test_cmd_hw_queue_alloc(self->fd, 0xffffff,
					      IOMMU_HW_QUEUE_TYPE_SELFTEST, 0,
					      ~0ULL - 1, 4, &q0));
	/* The context goes with both queues running. */
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	munmap(mem, 2 * PAGE_SIZE);
}

/* An mmap region outlives the file descriptor and survives fork. */
TEST_F(nesting, mmap_outlives_fd)
{
	struct iommu_viommu_selftest data = { .in_data = 0xabcd1234 };
	__u32 viommu_id;
	__u32 *map;
	pid_t pid;
	int st;

	test_cmd_viommu_alloc(self->device_id, self->parent_id, VIOMMU_SELFTEST,
			      &data, sizeof(data), &viommu_id);
	EXPECT_EQ(data.in_data, data.out_data);
	EXPECT_NE(0, data.out_mmap_offset);
	/* Private and executable mappings are refused. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, data.out_mmap_length, PROT_READ,
				   MAP_PRIVATE, self->fd,
				   data.out_mmap_offset));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, data.out_mmap_length,
				   PROT_READ | PROT_EXEC, MAP_SHARED, self->fd,
				   data.out_mmap_offset));
	EXPECT_EQ(EPERM, errno);
	map = mmap(NULL, data.out_mmap_length, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, data.out_mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	EXPECT_EQ(data.in_data, map[0]);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(map[0] == data.in_data ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, viommu_id));
	/* The file closes; the mapping keeps working until it is unmapped. */
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_EQ(data.in_data, map[0]);
	EXPECT_EQ(0, munmap(map, data.out_mmap_length));
}

/* A vDEVICE whose device went leaves a tombstone: its id stays taken. */
TEST_F(nesting, vdevice_tombstone_id)
{
	__u32 vdev_id, ids[16];
	int i, n = 0;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x3, &vdev_id);
	test_ioctl_destroy(self->stdev_id);
	EXPECT_ERRNO(ENOENT, _test_ioctl_destroy(self->fd, vdev_id));
	/* Ids are handed out lowest first: new objects skip the tombstone. */
	do {
		test_ioctl_ioas_alloc(&ids[n]);
		EXPECT_NE(vdev_id, ids[n]);
	} while (ids[n++] < vdev_id && n < 16);
	EXPECT_LT(vdev_id, ids[n - 1]);
	/* The vIOMMU is free of it. */
	test_ioctl_destroy(self->nested_id);
	test_ioctl_destroy(self->viommu_id);
	for (i = 0; i < n; i++)
		test_ioctl_destroy(ids[i]);
}

/* The four things that hold a context: its fd, the vEVENTQ fd, the FAULT fd, an mmap. */
enum { H_IOMMUFD, H_VEVENTQ, H_FAULT, H_MMAP, NHOLDERS };

/*
 * Every kind of nesting object alive at once, with an event queued, a fault
 * pending and the vIOMMU's region mapped, then the four holders released in
 * each of the 24 orders. The runner checks the counters (objects, pinned
 * pages, vEVENTs, fault groups) after the suite and unloads the module after
 * all suites.
 */
TEST_F(nesting, close_everything_in_every_order)
{
	struct iommu_hwpt_selftest s1 = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	int perm[NHOLDERS] = { 0, 1, 2, 3 };
	int round = 0;

	for (;;) {
		struct iommu_viommu_selftest vdata = { .in_data = 0x77 };
		struct iommu_test_cmd trig = {
			.size = sizeof(trig),
			.op = IOMMU_TEST_OP_TRIGGER_IOPF,
			.trigger_iopf = { .pasid = 0, .grpid = 1, .perm = 1,
					  .addr = 0x1000 },
		};
		__u32 ioas, stdev, dev, parent, viommu, vdev, nested, fault_id;
		__u32 fault_fd, q_id, q_fd, hwq0, hwq1;
		__u64 iova = MOCK_APERTURE_START;
		void *map, *mem;
		int fd, i, j, k;

		fd = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, fd);
		mem = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, mem);
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, &ioas));
		ASSERT_EQ(0, _test_ioctl_ioas_map(fd, ioas, mem, PAGE_SIZE, &iova,
						  IOMMU_IOAS_MAP_FIXED_IOVA |
							  IOMMU_IOAS_MAP_WRITEABLE |
							  IOMMU_IOAS_MAP_READABLE));
		ASSERT_EQ(0, _test_cmd_mock_domain(fd, ioas, &stdev, NULL, &dev));
		ASSERT_EQ(0, _test_cmd_hwpt_alloc(fd, dev, ioas, 0,
						  IOMMU_HWPT_ALLOC_NEST_PARENT,
						  &parent, IOMMU_HWPT_DATA_NONE,
						  NULL, 0));
		ASSERT_EQ(0, _test_cmd_viommu_alloc(fd, dev, parent, 0,
						    VIOMMU_SELFTEST, &vdata,
						    sizeof(vdata), &viommu));
		map = mmap(NULL, vdata.out_mmap_length, PROT_READ, MAP_SHARED,
			   fd, vdata.out_mmap_offset);
		ASSERT_NE(MAP_FAILED, map);
		ASSERT_EQ(0, _test_cmd_vdevice_alloc(fd, viommu, dev, 0x5, &vdev));
		ASSERT_EQ(0, _test_ioctl_fault_alloc(fd, &fault_id, &fault_fd));
		ASSERT_EQ(0, _test_cmd_hwpt_alloc(fd, dev, viommu, fault_id,
						  IOMMU_HWPT_FAULT_ID_VALID,
						  &nested,
						  IOMMU_HWPT_DATA_SELFTEST, &s1,
						  sizeof(s1)));
		ASSERT_EQ(0, _test_cmd_mock_domain_replace(fd, stdev, nested,
							   NULL));
		ASSERT_EQ(0, _test_cmd_veventq_alloc(fd, viommu,
						     IOMMU_VEVENTQ_TYPE_SELFTEST,
						     4, &q_id, &q_fd));
		ASSERT_EQ(0, _test_cmd_hw_queue_alloc(fd, viommu,
						      IOMMU_HW_QUEUE_TYPE_SELFTEST,
						      0, iova, PAGE_SIZE, &hwq0));
		ASSERT_EQ(0, _test_cmd_hw_queue_alloc(fd, viommu,
						      IOMMU_HW_QUEUE_TYPE_SELFTEST,
						      1, iova, PAGE_SIZE / 2,
						      &hwq1));
		ASSERT_EQ(0, _test_cmd_trigger_vevents(fd, dev, 2));
		trig.trigger_iopf.dev_id = dev;
		ASSERT_EQ(0, ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_TRIGGER_IOPF),
				   &trig));

		for (i = 0; i < NHOLDERS; i++) {
			switch (perm[i]) {
			case H_IOMMUFD:
				EXPECT_EQ(0, close(fd));
				break;
			case H_VEVENTQ:
				EXPECT_EQ(0, close(q_fd));
				break;
			case H_FAULT:
				EXPECT_EQ(0, close(fault_fd));
				break;
			case H_MMAP:
				EXPECT_EQ(0, munmap(map, vdata.out_mmap_length));
				break;
			}
		}
		munmap(mem, PAGE_SIZE);
		round++;

		/* The next permutation (lexicographic order); stop after the last. */
		for (i = NHOLDERS - 2; i >= 0 && perm[i] > perm[i + 1]; i--)
			;
		if (i < 0)
			break;
		for (j = NHOLDERS - 1; perm[j] < perm[i]; j--)
			;
		k = perm[i];
		perm[i] = perm[j];
		perm[j] = k;
		for (j = NHOLDERS - 1, i++; i < j; i++, j--) {
			k = perm[i];
			perm[i] = perm[j];
			perm[j] = k;
		}
	}
	EXPECT_EQ(24, round);
}

struct racer {
	int fd;
	__u32 device_id;
	__u32 viommu_id;
	__u32 nested_id;
	int which;
	int iters;
	int bad;
};

static void *race(void *arg)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_viommu_invalidate_selftest vreq = { .vdev_id = 0x1 };
	struct iommu_hwpt_invalidate_selftest hreq = {};
	struct racer *r = arg;
	__u32 id, num, qid, qfd;
	int i;

	for (i = 0; i < r->iters; i++) {
		switch (r->which) {
		case 0:
			num = 1;
			_test_cmd_viommu_invalidate(r->fd, r->viommu_id, &vreq,
						    IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
						    sizeof(vreq), &num);
			num = 1;
			_test_cmd_hwpt_invalidate(r->fd, r->nested_id, &hreq,
						  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
						  sizeof(hreq), &num);
			break;
		case 1:
			if (_test_cmd_hwpt_alloc(r->fd, r->device_id,
						 r->viommu_id, 0, 0, &id,
						 IOMMU_HWPT_DATA_SELFTEST,
						 &data, sizeof(data)))
				break;
			/* Nothing holds it; only a closed file fails it. */
			if (_test_ioctl_destroy(r->fd, id) && errno != EBADF &&
			    errno != ENOTTY)
				r->bad++;
			break;
		case 2:
			if (_test_cmd_veventq_alloc(r->fd, r->viommu_id,
						    IOMMU_VEVENTQ_TYPE_SELFTEST,
						    2, &qid, &qfd))
				break;
			_test_cmd_trigger_vevents(r->fd, r->device_id, 3);
			close(qfd);
			_test_ioctl_destroy(r->fd, qid);
			break;
		}
	}
	return NULL;
}

/* Invalidations, nested HWPTs and queues coming and going, then close, from threads. */
TEST_F(nesting, threads_invalidate_destroy_close)
{
	struct racer r[3];
	pthread_t t[3];
	__u32 vdev_id;
	int i;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, 0x1, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev_id, self->nested_id);
	for (i = 0; i < 3; i++) {
		r[i] = (struct racer){ .fd = self->fd,
				       .device_id = self->device_id,
				       .viommu_id = self->viommu_id,
				       .nested_id = self->nested_id,
				       .which = i, .iters = 400 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race, &r[i]));
	}
	/* Close while they run: their ioctls finish or see a closed file. */
	usleep(20000);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, r[i].bad);
	}
}

TEST_HARNESS_MAIN
