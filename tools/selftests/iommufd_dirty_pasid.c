// SPDX-License-Identifier: GPL-2.0
/*
 * The error paths of dirty tracking (IOMMU_HWPT_SET_DIRTY_TRACKING,
 * IOMMU_HWPT_GET_DIRTY_BITMAP, IOMMU_TEST_OP_DIRTY), IOMMU_GET_HW_INFO and
 * the PASID test operations (IOMMU_TEST_OP_PASID_*), on the selftest mock.
 * The upstream selftests cover the working paths; these checks pin down the
 * errno of each refusal, and hold for the C iommufd as well. Built with the
 * kselftest harness and helpers of the pristine kernel tree.
 */
#include <errno.h>
#include <sys/mman.h>

#include "iommu/iommufd_utils.h"

#define BUF_SIZE (64 * 1024)

/* Issues IOMMU_TEST_OP_DIRTY; returns the ioctl's result (errno on failure). */
static int test_dirty(int fd, __u32 hwpt_id, __u64 iova, __u64 length,
		      __u64 page_size, void *uptr, __u64 *nr)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt_id,
		.dirty = {
			.iova = iova,
			.length = length,
			.page_size = page_size,
			.uptr = (uintptr_t)uptr,
		},
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (!ret && nr)
		*nr = cmd.dirty.out_nr_dirty;
	return ret;
}

static int get_bitmap(int fd, __u32 hwpt_id, __u32 flags, __u32 reserved,
		      __u64 iova, __u64 length, __u64 page_size, void *data)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt_id,
		.flags = flags,
		.__reserved = reserved,
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.data = (uintptr_t)data,
	};

	return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

static int set_tracking(int fd, __u32 hwpt_id, __u32 flags)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.hwpt_id = hwpt_id,
	};

	return ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

FIXTURE(dirty_pasid)
{
	int fd;
	uint32_t ioas_id;
	uint32_t stdev_id;
	uint32_t hwpt_id;
	uint32_t idev_id;
	uint64_t bitmap[64];
};

FIXTURE_SETUP(dirty_pasid)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	buffer = mmap(0, BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buffer);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain_flags(self->ioas_id, MOCK_FLAGS_DEVICE_PASID,
				   &self->stdev_id, &self->hwpt_id,
				   &self->idev_id);
}

FIXTURE_TEARDOWN(dirty_pasid)
{
	close(self->fd);
	munmap(buffer, BUF_SIZE);
}

TEST_F(dirty_pasid, set_dirty_tracking_errors)
{
	uint32_t dirty_id;

	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->hwpt_id, 2));
	EXPECT_ERRNO(ENOENT, set_tracking(self->fd, self->ioas_id, 1));
	EXPECT_ERRNO(ENOENT, set_tracking(self->fd, 0, 1));
	/* The automatic domain was not allocated for dirty tracking. */
	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->hwpt_id, 1));
	EXPECT_ERRNO(EOPNOTSUPP, set_tracking(self->fd, self->hwpt_id, 0));

	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &dirty_id);
	EXPECT_EQ(0, set_tracking(self->fd, dirty_id, 1));
	EXPECT_EQ(0, set_tracking(self->fd, dirty_id, 1));
	EXPECT_EQ(0, set_tracking(self->fd, dirty_id, 0));
	EXPECT_EQ(0, set_tracking(self->fd, dirty_id, 0));
}

TEST_F(dirty_pasid, get_dirty_bitmap_errors)
{
	__u64 iova = MOCK_APERTURE_START;
	void *bm = self->bitmap;
	uint32_t dirty_id;

	test_ioctl_ioas_map_fixed_id(self->ioas_id, buffer, BUF_SIZE, iova);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &dirty_id);

	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, dirty_id, 2, 0, iova,
					    BUF_SIZE, PAGE_SIZE, bm));
	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, dirty_id, 0, 1, iova,
					    BUF_SIZE, PAGE_SIZE, bm));
	EXPECT_ERRNO(ENOENT, get_bitmap(self->fd, self->ioas_id, 0, 0, iova,
					BUF_SIZE, PAGE_SIZE, bm));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova, 0,
					PAGE_SIZE, bm));
	EXPECT_ERRNO(EOVERFLOW, get_bitmap(self->fd, dirty_id, 0, 0, -2048ULL,
					   4096, 2048, bm));
	/* Not aligned to the IOAS (the mock's 2 KiB pages). */
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova + 1,
					2048, 1, bm));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova,
					2049, 1, bm));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova,
					BUF_SIZE, 0, bm));
	/* Not aligned to the bitmap's page size. */
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova + 2048,
					8192, 4096, bm));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, dirty_id, 0, 0, iova,
					6144, 4096, bm));
	/* A domain without dirty tracking, after the range checks. */
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->hwpt_id, 0, 0, iova,
					0, PAGE_SIZE, bm));
	EXPECT_ERRNO(EOPNOTSUPP, get_bitmap(self->fd, self->hwpt_id, 0, 0,
					    iova, BUF_SIZE, PAGE_SIZE, bm));
	/* Nothing mapped there, tracking off: no error, nothing dirty. */
	memset(bm, 0xff, sizeof(self->bitmap));
	EXPECT_EQ(0, get_bitmap(self->fd, dirty_id, 0, 0, iova + BUF_SIZE,
				BUF_SIZE, PAGE_SIZE, bm));
	EXPECT_EQ(0, get_bitmap(self->fd, dirty_id, 0, 0, iova, BUF_SIZE,
				PAGE_SIZE, bm));
	EXPECT_EQ(0, get_bitmap(self->fd, dirty_id, 0, 0, iova, 2 * BUF_SIZE,
				PAGE_SIZE, bm));
	test_ioctl_destroy(dirty_id);
}

TEST_F(dirty_pasid, dirty_op)
{
	__u64 iova = MOCK_APERTURE_START;
	uint64_t *bm = self->bitmap;
	uint32_t dirty_id;
	__u64 nr = 0;

	test_ioctl_ioas_map_fixed_id(self->ioas_id, buffer, BUF_SIZE, iova);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &dirty_id);
	bm[0] = 0x5;

	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, dirty_id, iova, BUF_SIZE,
					2048, NULL, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, dirty_id, iova, BUF_SIZE,
					0, bm, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, dirty_id, iova, 0, 2048,
					bm, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, dirty_id, iova + 1,
					BUF_SIZE, 2048, bm, NULL));
	EXPECT_ERRNO(EOVERFLOW, test_dirty(self->fd, dirty_id, 0,
					   (16ULL << 20) * 8 + 1, 1, bm, NULL));
	EXPECT_ERRNO(ENOENT, test_dirty(self->fd, self->ioas_id, iova,
					BUF_SIZE, 2048, bm, NULL));
	/* Tracking is off, or the domain cannot track at all. */
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, dirty_id, iova, BUF_SIZE,
					2048, bm, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, self->hwpt_id, iova,
					BUF_SIZE, 2048, bm, NULL));

	ASSERT_EQ(0, set_tracking(self->fd, dirty_id, 1));
	EXPECT_ERRNO(EFAULT, test_dirty(self->fd, dirty_id, iova, BUF_SIZE,
					2048, (void *)8, NULL));
	ASSERT_EQ(0, test_dirty(self->fd, dirty_id, iova, BUF_SIZE, 2048, bm,
				&nr));
	EXPECT_EQ(2, nr);

	/* Enabling again starts from a clean state (bits are only ever set). */
	ASSERT_EQ(0, set_tracking(self->fd, dirty_id, 1));
	memset(bm, 0, sizeof(self->bitmap));
	ASSERT_EQ(0, get_bitmap(self->fd, dirty_id, 0, 0, iova, BUF_SIZE,
				2048, bm));
	EXPECT_EQ(0, bm[0]);

	/* After unmapping, nothing is reported there. */
	bm[0] = 0x1;
	ASSERT_EQ(0, test_dirty(self->fd, dirty_id, iova, BUF_SIZE, 2048, bm,
				&nr));
	test_ioctl_ioas_unmap(iova, BUF_SIZE);
	memset(bm, 0, sizeof(self->bitmap));
	ASSERT_EQ(0, get_bitmap(self->fd, dirty_id, 0, 0, iova, BUF_SIZE,
				2048, bm));
	EXPECT_EQ(0, bm[0]);
	test_ioctl_destroy(dirty_id);
}

static int pasid_op(int fd, __u32 op, __u32 stdev_id, __u32 pasid,
		    __u32 *pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = op,
		.id = stdev_id,
		.pasid_attach = {
			.pasid = pasid,
			.pt_id = pt_id ? *pt_id : 0,
		},
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (!ret && pt_id)
		*pt_id = cmd.pasid_attach.pt_id;
	return ret;
}

static int pasid_check(int fd, __u32 stdev_id, __u32 pasid, __u32 hwpt_id)
{
	return pasid_op(fd, IOMMU_TEST_OP_PASID_CHECK_HWPT, stdev_id, pasid,
			&hwpt_id);
}

TEST_F(dirty_pasid, pasid_ops)
{
	uint32_t a_id, b_id, id, nopasid_stdev, nopasid_idev;
	int fd = self->fd;
	__u32 st = self->stdev_id;

	/* Detaching what is not attached is no error. */
	EXPECT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_DETACH, st, 100, NULL));
	id = 12345;
	EXPECT_ERRNO(ENOENT, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100,
				      &id));
	EXPECT_ERRNO(ENOENT, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH,
				      self->ioas_id, 100, &self->hwpt_id));
	/* The automatic domain is not PASID compatible. */
	id = self->hwpt_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100,
				      &id));
	id = self->ioas_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100,
				      &id));

	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PASID, &a_id);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PASID, &b_id);
	/* Nor is the device's own attachment. */
	id = a_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100,
				      &id));
	test_cmd_mock_domain_replace(st, a_id);
	id = a_id;
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100, &id));
	EXPECT_EQ(a_id, id);
	id = b_id;
	EXPECT_ERRNO(EBUSY, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 100,
				     &id));
	EXPECT_EQ(0, pasid_check(fd, st, 100, a_id));
	EXPECT_ERRNO(EINVAL, pasid_check(fd, st, 100, b_id));
	EXPECT_ERRNO(EINVAL, pasid_check(fd, st, 100, 0));
	EXPECT_EQ(0, pasid_check(fd, st, 200, 0));
	EXPECT_ERRNO(EINVAL, pasid_check(fd, st, 100, self->ioas_id));
	EXPECT_ERRNO(ENOENT, pasid_check(fd, st, 100, 9999));
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(fd, a_id));

	/* While a PASID is attached, the device needs PASID compatible HWPTs. */
	EXPECT_ERRNO(EINVAL, _test_cmd_mock_domain_replace(fd, st,
							   self->ioas_id,
							   NULL));
	test_cmd_mock_domain_replace(st, b_id);
	test_cmd_mock_domain_replace(st, a_id);

	id = b_id;
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, 100, &id));
	EXPECT_EQ(b_id, id);
	EXPECT_EQ(0, pasid_check(fd, st, 100, b_id));
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, 100, &id));
	EXPECT_EQ(b_id, id);
	id = a_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, 200,
				      &id));
	id = self->ioas_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, 100,
				      &id));
	EXPECT_EQ(0, pasid_check(fd, st, 100, b_id));

	/* The mock fails the second attach of PASID 1024 once. */
	id = a_id;
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH, st, 1024, &id));
	id = b_id;
	EXPECT_ERRNO(ENOMEM, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st,
				      1024, &id));
	EXPECT_EQ(0, pasid_check(fd, st, 1024, a_id));
	id = b_id;
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_REPLACE, st, 1024, &id));
	EXPECT_EQ(0, pasid_check(fd, st, 1024, b_id));

	/* A device without PASIDs. */
	test_cmd_mock_domain_flags(a_id, 0, &nopasid_stdev, NULL,
				   &nopasid_idev);
	id = a_id;
	EXPECT_ERRNO(EINVAL, pasid_op(fd, IOMMU_TEST_OP_PASID_ATTACH,
				      nopasid_stdev, 100, &id));
	test_ioctl_destroy(nopasid_stdev);

	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_DETACH, st, 100, NULL));
	EXPECT_EQ(0, pasid_check(fd, st, 100, 0));
	/* The C iommufd warns about a device destroyed with PASIDs attached. */
	ASSERT_EQ(0, pasid_op(fd, IOMMU_TEST_OP_PASID_DETACH, st, 1024, NULL));
	EXPECT_EQ(0, pasid_check(fd, st, 1024, 0));
}

TEST_F(dirty_pasid, get_hw_info)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = self->idev_id,
	};
	uint8_t data[32];

	cmd.flags = 2;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.flags = 0;
	cmd.__reserved[1] = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.__reserved[1] = 0;
	cmd.dev_id = self->ioas_id;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.dev_id = self->idev_id;
	cmd.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
	cmd.in_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	/* Without the flag, the input type is ignored. */
	cmd.flags = 0;
	memset(data, 0xff, sizeof(data));
	cmd.data_uptr = (uintptr_t)data;
	cmd.data_len = sizeof(data);
	cmd.out_capabilities = ~0ULL;
	cmd.out_max_pasid_log2 = 0xff;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_SELFTEST, cmd.out_data_type);
	EXPECT_EQ(sizeof(struct iommu_test_hw_info), cmd.data_len);
	EXPECT_EQ(20, cmd.out_max_pasid_log2);
	EXPECT_EQ(IOMMU_HW_CAP_DIRTY_TRACKING |
			  IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
		  cmd.out_capabilities);
	for (int i = sizeof(struct iommu_test_hw_info); i < sizeof(data); i++)
		EXPECT_EQ(0, data[i]);
	/* A short buffer gets what fits; the full length is reported. */
	memset(data, 0xff, sizeof(data));
	cmd.data_len = 2;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(sizeof(struct iommu_test_hw_info), cmd.data_len);
	EXPECT_EQ(0, data[0]);
	EXPECT_EQ(0xff, data[2]);
	cmd.data_len = sizeof(data);
	cmd.data_uptr = 8;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
}

TEST_HARNESS_MAIN
