// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures on the nesting paths that upstream's iommufd_fail_nth
 * does not sweep, on the selftest mock, against both implementations.
 *
 * Each test sets up what the path needs, then runs the one ioctl with the
 * 1st, 2nd, 3rd ... allocation of the thread failing (fail-nth), until it
 * runs without any failure injected. Every injected failure must end in an
 * error (or be absorbed, in which case the call succeeded and is undone),
 * leave the module's object count where it was (the Rust module's debugfs
 * counters; the C iommufd has none, and its leaks show in kmemleak on the
 * debug kernel) and leave the state as it was: the call that finally runs
 * without a failure must succeed, and each test checks what a half-done
 * call would have broken (a virtual id still taken, a second vEVENTQ of the
 * type, a device moved off its HWPT ...).
 *
 * Paths: vIOMMU, vDEVICE, vEVENTQ and FAULT queue allocation, nested HWPT
 * allocation with a fault id (on a vIOMMU and on a nest parent), HW queue
 * allocation, invalidation on a vIOMMU and on a nested HWPT, replace between
 * nested HWPTs, and a vEVENT reported while its allocation fails.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "iommu/iommufd_utils.h"
#include "fail_nth.h"

#define SWEEP_MAX	4000
#define VIRT_ID		0x42
#define STATS		"/sys/kernel/debug/iommufd_rs/stats"

FIXTURE(nfail)
{
	int fd;
	int nthfd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 device_id;
	__u32 parent_id;
	__u32 viommu_id;
};

FIXTURE_SETUP(nfail)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	(void)buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	self->nthfd = -1;
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, NULL,
			     &self->device_id);
	test_cmd_hwpt_alloc(self->device_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
	test_cmd_viommu_alloc(self->device_id, self->parent_id,
			      IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0,
			      &self->viommu_id);
	self->nthfd = fail_nth_open();
	if (self->nthfd < 0)
		SKIP(return, "no fault injection (failslab, fail_page_alloc, fail-nth)");
}

FIXTURE_TEARDOWN(nfail)
{
	if (self->nthfd >= 0)
		close(self->nthfd);
	if (self->fd >= 0)
		close(self->fd);
}

/* The Rust module's live objects, or -1 where there is no such counter. */
static long objects(void)
{
	char line[64];
	long n = -1;
	FILE *f = fopen(STATS, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "objects %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * What an injected failure may end in: ENOMEM. The C iommufd's selftest
 * build also has injection points of its own (fail_iommufd, which fail-nth
 * drives too): a failed object lookup there is ENOENT, a failed
 * iommufd_should_fail() elsewhere EINVAL.
 */
static bool injected_errno(int err)
{
	bool c = !access("/sys/module/iommufd", F_OK);

	return err == ENOMEM || (c && (err == ENOENT || err == EINVAL));
}

/*
 * Runs OP (an expression that is 0 or -1 with errno) with each allocation
 * failing in turn, until it runs with none failed; UNDO takes back a call
 * that succeeded although a failure was injected (it absorbed it), CHECK
 * runs after every injected failure.
 */
#define SWEEP(OP, UNDO, CHECK)                                                 \
	do {                                                                   \
		unsigned int nth, failed = 0, absorbed = 0;                    \
		long before = objects();                                       \
		for (nth = 1;; nth++) {                                        \
			bool hit;                                              \
			int rc, err;                                           \
                                                                               \
			ASSERT_GT(SWEEP_MAX, nth)                              \
				TH_LOG("%s: no run without a failure", #OP);   \
			fail_nth_arm(self->nthfd, nth);                        \
			rc = (OP);                                             \
			err = errno;                                           \
			hit = fail_nth_disarm(self->nthfd);                    \
			if (!hit) {                                            \
				ASSERT_EQ(0, rc)                               \
					TH_LOG("%s with no failure: %s", #OP,  \
					       strerror(err));                 \
				break;                                         \
			}                                                      \
			if (rc) {                                              \
				failed++;                                      \
				EXPECT_TRUE(injected_errno(err))               \
					TH_LOG("%s, allocation %u failed: %s", \
					       #OP, nth, strerror(err));       \
			} else {                                               \
				absorbed++;                                    \
				UNDO;                                          \
			}                                                      \
			EXPECT_EQ(before, objects())                           \
				TH_LOG("%s, allocation %u failed: objects %ld -> %ld", \
				       #OP, nth, before, objects());           \
			CHECK;                                                 \
		}                                                              \
		TH_LOG("%s: %u allocations failed in turn, %u absorbed", #OP,  \
		       failed + absorbed, absorbed);                           \
		EXPECT_LT(0, failed) TH_LOG("%s: no injected failure failed it", \
					    #OP);                              \
	} while (0)

static int destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

TEST_F(nfail, viommu_alloc)
{
	__u32 id = 0;

	SWEEP(_test_cmd_viommu_alloc(self->fd, self->device_id,
				     self->parent_id, 0,
				     IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0, &id),
	      ASSERT_EQ(0, destroy(self->fd, id)), );
	/* Both vIOMMUs hold the parent; the new one goes, then the old. */
	EXPECT_ERRNO(EBUSY, destroy(self->fd, self->parent_id));
	EXPECT_EQ(0, destroy(self->fd, id));
	EXPECT_EQ(0, destroy(self->fd, self->viommu_id));
	EXPECT_EQ(0, destroy(self->fd, self->parent_id));
}

/* A failed vDEVICE allocation gives its virtual id back. */
TEST_F(nfail, vdevice_alloc)
{
	__u32 id = 0, other;

	SWEEP(_test_cmd_vdevice_alloc(self->fd, self->viommu_id,
				      self->device_id, VIRT_ID, &id),
	      ASSERT_EQ(0, destroy(self->fd, id)), );
	/*
	 * The run without a failure found the id and the device free. Now the
	 * device has its one vDEVICE, and the id is taken.
	 */
	EXPECT_ERRNO(EEXIST, _test_cmd_vdevice_alloc(self->fd, self->viommu_id,
						     self->device_id, VIRT_ID,
						     &other));
	EXPECT_ERRNO(EBUSY, destroy(self->fd, self->viommu_id));
	EXPECT_EQ(0, destroy(self->fd, id));
	EXPECT_EQ(0, destroy(self->fd, self->viommu_id));
}

/* A failed vEVENTQ allocation leaves no queue of its type behind. */
TEST_F(nfail, veventq_alloc)
{
	__u32 id = 0, qfd = -1, other, ofd;

	SWEEP(_test_cmd_veventq_alloc(self->fd, self->viommu_id,
				      IOMMU_VEVENTQ_TYPE_SELFTEST, 8, &id,
				      &qfd),
	      { close(qfd); ASSERT_EQ(0, destroy(self->fd, id)); }, );
	EXPECT_ERRNO(EEXIST, _test_cmd_veventq_alloc(self->fd, self->viommu_id,
						     IOMMU_VEVENTQ_TYPE_SELFTEST,
						     8, &other, &ofd));
	close(qfd);
	EXPECT_EQ(0, destroy(self->fd, id));
	EXPECT_EQ(0, destroy(self->fd, self->viommu_id));
}

TEST_F(nfail, fault_queue_alloc)
{
	__u32 id = 0, ffd = -1;

	SWEEP(_test_ioctl_fault_alloc(self->fd, &id, &ffd),
	      { close(ffd); ASSERT_EQ(0, destroy(self->fd, id)); }, );
	close(ffd);
	EXPECT_EQ(0, destroy(self->fd, id));
}

/* Nested HWPTs that take faults, on the vIOMMU and on the nest parent. */
TEST_F(nfail, nested_alloc_with_fault)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 fault_id, fault_fd, id = 0, id2 = 0;

	test_ioctl_fault_alloc(&fault_id, &fault_fd);
	SWEEP(_test_cmd_hwpt_alloc(self->fd, self->device_id, self->viommu_id,
				   fault_id, IOMMU_HWPT_FAULT_ID_VALID, &id,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data)),
	      ASSERT_EQ(0, destroy(self->fd, id)), );
	SWEEP(_test_cmd_hwpt_alloc(self->fd, self->device_id, self->parent_id,
				   fault_id, IOMMU_HWPT_FAULT_ID_VALID, &id2,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data)),
	      ASSERT_EQ(0, destroy(self->fd, id2)), );
	/* Each holds the FAULT object; nothing else does. */
	EXPECT_ERRNO(EBUSY, destroy(self->fd, fault_id));
	EXPECT_EQ(0, destroy(self->fd, id));
	EXPECT_ERRNO(EBUSY, destroy(self->fd, fault_id));
	EXPECT_EQ(0, destroy(self->fd, id2));
	close(fault_fd);
	EXPECT_EQ(0, destroy(self->fd, fault_id));
}

/* A HW queue pins its guest memory: a failed allocation unpins it. */
TEST_F(nfail, hw_queue_alloc)
{
	__u64 iova = MOCK_APERTURE_START;
	__u32 id = 0;
	void *mem;

	mem = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	test_ioctl_ioas_map_fixed(mem, PAGE_SIZE, iova);
	SWEEP(_test_cmd_hw_queue_alloc(self->fd, self->viommu_id,
				       IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova,
				       PAGE_SIZE, &id),
	      ASSERT_EQ(0, destroy(self->fd, id)),
	      /* Not pinned any more: the range unmaps (and maps again). */
	      {
		      test_ioctl_ioas_unmap(iova, PAGE_SIZE);
		      test_ioctl_ioas_map_fixed(mem, PAGE_SIZE, iova);
	      });
	/* Pinned now: the range is busy. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						   iova, PAGE_SIZE, NULL));
	EXPECT_EQ(0, destroy(self->fd, id));
	test_ioctl_ioas_unmap(iova, PAGE_SIZE);
	munmap(mem, PAGE_SIZE);
}

TEST_F(nfail, invalidate)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_viommu_invalidate_selftest vinv = {
		.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL,
		.vdev_id = VIRT_ID,
	};
	struct iommu_hwpt_invalidate_selftest inv = {
		.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL,
	};
	__u32 vdev_id, nested_id, n;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, VIRT_ID,
			       &vdev_id);
	test_cmd_hwpt_alloc_nested(self->device_id, self->parent_id, 0,
				   &nested_id, IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	/* Invalidation allocates little or nothing: let it fail, or not. */
	for (int i = 0; i < 2; i++) {
		unsigned int nth;

		for (nth = 1; nth < 64; nth++) {
			long before = objects();
			int rc;

			n = 1;
			fail_nth_arm(self->nthfd, nth);
			rc = i ? _test_cmd_hwpt_invalidate(
					 self->fd, nested_id, &inv,
					 IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
					 sizeof(inv), &n)
			       : _test_cmd_viommu_invalidate(
					 self->fd, self->viommu_id, &vinv,
					 IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
					 sizeof(vinv), &n);
			if (!fail_nth_disarm(self->nthfd)) {
				EXPECT_EQ(0, rc);
				EXPECT_EQ(1, n);
				break;
			}
			if (rc)
				EXPECT_TRUE(injected_errno(errno))
					TH_LOG("invalidation %d, allocation %u failed: %s",
					       i, nth, strerror(errno));
			EXPECT_LE(n, 1);
			EXPECT_EQ(before, objects());
		}
	}
	EXPECT_EQ(0, destroy(self->fd, nested_id));
	EXPECT_EQ(0, destroy(self->fd, vdev_id));
}

/* A replace between nested HWPTs that fails leaves the device where it was. */
TEST_F(nfail, replace_nested)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	__u32 vdev_id, a, b;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, VIRT_ID,
			       &vdev_id);
	test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0, &a,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0, &b,
				   IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_mock_domain_replace(self->stdev_id, a);
	SWEEP(_test_cmd_mock_domain_replace(self->fd, self->stdev_id, b, NULL),
	      test_cmd_mock_domain_replace(self->stdev_id, a),
	      /* Still on a: in use, and b is not. */
	      {
		      EXPECT_ERRNO(EBUSY, destroy(self->fd, a));
		      EXPECT_EQ(0, _test_cmd_mock_domain_replace(
					   self->fd, self->stdev_id, a, NULL));
	      });
	EXPECT_ERRNO(EBUSY, destroy(self->fd, b));
	EXPECT_EQ(0, destroy(self->fd, a));
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	EXPECT_EQ(0, destroy(self->fd, b));
	EXPECT_EQ(0, destroy(self->fd, vdev_id));
}

/*
 * A vEVENT whose memory cannot be had is recorded as lost: the reader sees
 * a LOST_EVENTS header and nothing is leaked.
 */
TEST_F(nfail, vevent_report)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	char buf[4096];
	__u32 vdev_id, nested_id, q_id, q_fd;
	struct iommufd_vevent_header *h = (void *)buf;
	unsigned int nth, lost = 0, got = 0;
	ssize_t len;

	test_cmd_vdevice_alloc(self->viommu_id, self->device_id, VIRT_ID,
			       &vdev_id);
	test_cmd_hwpt_alloc_nested(self->device_id, self->viommu_id, 0,
				   &nested_id, IOMMU_HWPT_DATA_SELFTEST, &data,
				   sizeof(data));
	test_cmd_mock_domain_replace(self->stdev_id, nested_id);
	test_cmd_veventq_alloc(self->viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 8,
			       &q_id, &q_fd);
	for (nth = 1; nth < 64; nth++) {
		bool hit;

		int rc;

		fail_nth_arm(self->nthfd, nth);
		rc = _test_cmd_trigger_vevents(self->fd, self->device_id, 1);
		hit = fail_nth_disarm(self->nthfd);
		len = read(q_fd, buf, sizeof(buf));
		if (len <= 0) {
			/* Only a trigger that failed before reporting. */
			EXPECT_NE(0, rc) TH_LOG("allocation %u: no record", nth);
		} else if (h->flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
			lost++;
		} else {
			got++;
		}
		if (!hit) {
			EXPECT_EQ(0, rc);
			break;
		}
	}
	TH_LOG("%u reports lost to an injected failure, %u delivered", lost,
	       got);
	EXPECT_LT(0, got);
	close(q_fd);
	test_cmd_mock_domain_replace(self->stdev_id, self->ioas_id);
	EXPECT_EQ(0, destroy(self->fd, q_id));
	EXPECT_EQ(0, destroy(self->fd, nested_id));
	EXPECT_EQ(0, destroy(self->fd, vdev_id));
}

TEST_HARNESS_MAIN
