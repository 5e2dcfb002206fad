// SPDX-License-Identifier: GPL-2.0
/*
 * Boundary values in the ioctls that take sizes, IOVAs and user pointers:
 * U64_MAX lengths, IOVAs at the top of the address space, huge page sizes
 * and bitmaps, huge buffer lengths. None of them may crash or warn; each
 * call gets the errno (or the result) the C iommufd gives. The kernel log
 * check after the suite catches a WARN; an overflow in the Rust module (built
 * with overflow checks) panics the VM. Built with the kselftest harness and
 * helpers of the pristine kernel tree.
 */
#include <errno.h>
#include <sys/mman.h>

#include "iommu/iommufd_utils.h"

#define BUF_SIZE (64 * 1024)
/* The highest page of the 64-bit IOVA space. */
#define TOP_PAGE(ps) (0ULL - (__u64)(ps))

/* VFIO type1 container ioctls (linux/vfio.h), answered by iommufd. */
#define VFIO_TYPE1_IOMMU 1
#define VFIO_TYPE1v2_IOMMU 3
#define VFIO_SET_IOMMU _IO(';', 100 + 2)
#define VFIO_IOMMU_MAP_DMA _IO(';', 100 + 13)
#define VFIO_IOMMU_UNMAP_DMA _IO(';', 100 + 14)
#define VFIO_DMA_MAP_FLAG_READ (1 << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1 << 1)

struct dma_map {
	__u32 argsz;
	__u32 flags;
	__u64 vaddr;
	__u64 iova;
	__u64 size;
};

struct dma_unmap {
	__u32 argsz;
	__u32 flags;
	__u64 iova;
	__u64 size;
};

static int test_cmd(int fd, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(fd, IOMMU_TEST_CMD, cmd);
}

/* IOMMU_TEST_OP_DIRTY; on success *nr is the number of bits set. */
static int test_dirty(int fd, __u32 hwpt_id, __u64 iova, __u64 length,
		      __u64 page_size, void *uptr, __u64 *nr)
{
	struct iommu_test_cmd cmd = {
		.op = IOMMU_TEST_OP_DIRTY,
		.id = hwpt_id,
		.dirty = {
			.iova = iova,
			.length = length,
			.page_size = page_size,
			.uptr = (uintptr_t)uptr,
		},
	};
	int ret = test_cmd(fd, &cmd);

	if (!ret && nr)
		*nr = cmd.dirty.out_nr_dirty;
	return ret;
}

static int get_bitmap(int fd, __u32 hwpt_id, __u64 iova, __u64 length,
		      __u64 page_size, void *data)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt_id,
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.data = (uintptr_t)data,
	};

	return ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

static int map_dma(int fd, __u64 vaddr, __u64 iova, __u64 size)
{
	struct dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = vaddr,
		.iova = iova,
		.size = size,
	};

	return ioctl(fd, VFIO_IOMMU_MAP_DMA, &map);
}

/* VFIO_IOMMU_UNMAP_DMA; *unmapped is what the kernel wrote back. */
static int unmap_dma(int fd, __u64 iova, __u64 size, __u64 *unmapped)
{
	struct dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};
	int ret = ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &unmap);

	if (unmapped)
		*unmapped = unmap.size;
	return ret;
}

FIXTURE(bounds)
{
	int fd;
	uint32_t ioas_id;
	uint32_t stdev_id;
	uint32_t hwpt_id;
	uint32_t idev_id;
	uint32_t dirty_id;
	/* Two pages, the second one unmapped: a user buffer that ends. */
	void *edge;
};

FIXTURE_SETUP(bounds)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	buffer = mmap(0, BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buffer);
	self->edge = mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->edge);
	ASSERT_EQ(0, munmap(self->edge + PAGE_SIZE, PAGE_SIZE));
	memset(self->edge, 0, PAGE_SIZE);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->idev_id);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &self->dirty_id);
	test_cmd_set_dirty_tracking(self->dirty_id, true);
}

FIXTURE_TEARDOWN(bounds)
{
	close(self->fd);
	munmap(self->edge, PAGE_SIZE);
	munmap(buffer, BUF_SIZE);
}

/* IOMMU_TEST_OP_DIRTY: bits whose IOVA would pass the top of the space. */
TEST_F(bounds, test_dirty_top_of_iova_space)
{
	__u64 bits = 0x3, nr = 0;

	/* The second bit is at 2^64: counted, as in C. */
	ASSERT_EQ(0, test_dirty(self->fd, self->dirty_id, TOP_PAGE(4096),
				2 * 4096, 4096, &bits, &nr));
	EXPECT_EQ(2, nr);
	/* Huge page sizes: 2^62 bytes per bit, from 3 * 2^62. */
	nr = 0;
	ASSERT_EQ(0, test_dirty(self->fd, self->dirty_id, 3ULL << 62, 1ULL << 63,
				1ULL << 62, &bits, &nr));
	EXPECT_EQ(2, nr);
	/* One bit for (almost) all of it. */
	nr = 0;
	ASSERT_EQ(0, test_dirty(self->fd, self->dirty_id, 0, UINT64_MAX,
				UINT64_MAX, &bits, &nr));
	EXPECT_EQ(1, nr);
	nr = 0;
	ASSERT_EQ(0, test_dirty(self->fd, self->dirty_id, 1ULL << 63, 1ULL << 63,
				1ULL << 63, &bits, &nr));
	EXPECT_EQ(1, nr);
}

TEST_F(bounds, test_dirty_sizes)
{
	__u64 bits = 0;

	/* More than 16M bytes of bitmap. */
	EXPECT_ERRNO(EOVERFLOW, test_dirty(self->fd, self->dirty_id, 0,
					   UINT64_MAX & ~4095ULL, 4096, &bits,
					   NULL));
	EXPECT_ERRNO(EOVERFLOW, test_dirty(self->fd, self->dirty_id, 0,
					   (16ULL << 20) * 8 * 4096 + 4096, 4096,
					   &bits, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, self->dirty_id, 0, UINT64_MAX,
					4096, &bits, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, self->dirty_id, 1, UINT64_MAX,
					UINT64_MAX, &bits, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, self->dirty_id, 0, 4096, 0,
					&bits, NULL));
	EXPECT_ERRNO(EINVAL, test_dirty(self->fd, self->dirty_id, 0, 0, 4096,
					&bits, NULL));
	/* Exactly 16M bytes of bitmap, read from a buffer that ends first. */
	EXPECT_ERRNO(EFAULT, test_dirty(self->fd, self->dirty_id, 0,
					(16ULL << 20) * 8 * 4096, 4096,
					self->edge, NULL));
	/* The bitmap pointer at the top of the address space. */
	EXPECT_ERRNO(EFAULT, test_dirty(self->fd, self->dirty_id, 0, 8 * 4096,
					4096, (void *)(uintptr_t)-1ULL, NULL));
}

/* IOMMU_HWPT_GET_DIRTY_BITMAP: the range check, huge ranges and bitmaps. */
TEST_F(bounds, get_dirty_bitmap_bounds)
{
	__u64 iova = MOCK_APERTURE_START;

	test_ioctl_ioas_map_fixed_id(self->ioas_id, buffer, BUF_SIZE, iova);
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->dirty_id, 0, 0, 4096,
					self->edge));
	EXPECT_ERRNO(EOVERFLOW, get_bitmap(self->fd, self->dirty_id,
					   TOP_PAGE(4096), 2 * 4096, 4096,
					   self->edge));
	EXPECT_ERRNO(EOVERFLOW, get_bitmap(self->fd, self->dirty_id, UINT64_MAX,
					   UINT64_MAX, 4096, self->edge));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->dirty_id, 0, UINT64_MAX,
					4096, self->edge));
	EXPECT_ERRNO(EINVAL, get_bitmap(self->fd, self->dirty_id, iova, BUF_SIZE,
					0, self->edge));
	/* The last page of the space: valid, nothing mapped there. */
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, TOP_PAGE(4096), 4096,
				4096, self->edge));
	/*
	 * Half of the IOVA space: 2^51 bits of bitmap, far beyond the user
	 * buffer. A failure part way is not reported.
	 */
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, 0, 1ULL << 63, 4096,
				self->edge));
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, 1ULL << 63, 1ULL << 63,
				1ULL << 63, self->edge));
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, iova, BUF_SIZE, 4096,
				self->edge));
	/* The bitmap at the top of the address space or absent. */
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, iova, BUF_SIZE, 4096,
				(void *)(uintptr_t)(-8ULL)));
	EXPECT_EQ(0, get_bitmap(self->fd, self->dirty_id, iova, BUF_SIZE, 4096,
				NULL));
}

/* IOMMU_GET_HW_INFO with a huge buffer length and a pointer at the top. */
TEST_F(bounds, hw_info_bounds)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = self->idev_id,
		.data_len = UINT32_MAX,
		.data_uptr = (uintptr_t)self->edge,
	};

	/* The data fits, zeroing the tail runs into the unmapped page. */
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.data_len = 8;
	cmd.data_uptr = -4ULL;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.data_len = UINT32_MAX;
	cmd.data_uptr = -4096ULL;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	cmd.data_len = PAGE_SIZE;
	cmd.data_uptr = (uintptr_t)self->edge;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));
	EXPECT_EQ(8, cmd.data_len);
}

/* The IOMMU_TEST_CMD operations with lengths and addresses. */
TEST_F(bounds, test_ops_bounds)
{
	struct iommu_test_cmd cmd;
	uint32_t access_id;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_ADD_RESERVED;
	cmd.id = self->ioas_id;
	cmd.add_reserved.start = UINT64_MAX;
	cmd.add_reserved.length = 2;
	EXPECT_ERRNO(EOVERFLOW, test_cmd(self->fd, &cmd));
	cmd.add_reserved.start = 2;
	cmd.add_reserved.length = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW, test_cmd(self->fd, &cmd));
	cmd.add_reserved.length = 0;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));

	/* MD_CHECK_MAP: IOVAs at the top are not mapped; uptr + length wraps. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_MD_CHECK_MAP;
	cmd.id = self->hwpt_id;
	cmd.check_map.iova = TOP_PAGE(4096);
	cmd.check_map.length = 2 * 4096;
	cmd.check_map.uptr = (uintptr_t)buffer;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));
	cmd.check_map.iova = 0;
	cmd.check_map.length = TOP_PAGE(4096);
	cmd.check_map.uptr = 8192;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));

	/* MD_CHECK_REFS: uptr + length wraps. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_MD_CHECK_REFS;
	cmd.check_refs.uptr = TOP_PAGE(PAGE_SIZE);
	cmd.check_refs.length = 2 * PAGE_SIZE;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));

	/* DMABUF_GET: the largest length rounds past 512 pages. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_DMABUF_GET;
	cmd.dmabuf_get.length = UINT32_MAX;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));
	cmd.dmabuf_get.length = 0;
	EXPECT_ERRNO(EINVAL, test_cmd(self->fd, &cmd));

	/* Access pins and reads: huge lengths, IOVAs at the top. */
	test_cmd_create_access(self->ioas_id, &access_id,
			       MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_ACCESS_PAGES;
	cmd.id = access_id;
	cmd.access_pages.iova = MOCK_APERTURE_START;
	cmd.access_pages.length = UINT64_MAX;
	EXPECT_ERRNO(ENOMEM, test_cmd(self->fd, &cmd));
	cmd.access_pages.iova = TOP_PAGE(PAGE_SIZE);
	cmd.access_pages.length = 2 * PAGE_SIZE;
	EXPECT_ERRNO(EOVERFLOW, test_cmd(self->fd, &cmd));
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = IOMMU_TEST_OP_ACCESS_RW;
	cmd.id = access_id;
	cmd.access_rw.iova = MOCK_APERTURE_START;
	cmd.access_rw.length = UINT64_MAX;
	cmd.access_rw.uptr = (uintptr_t)buffer;
	EXPECT_ERRNO(ENOMEM, test_cmd(self->fd, &cmd));
	cmd.access_rw.iova = TOP_PAGE(16);
	cmd.access_rw.length = 32;
	EXPECT_ERRNO(EOVERFLOW, test_cmd(self->fd, &cmd));
	test_cmd_destroy_access(access_id);
}

/* VFIO compat MAP_DMA / UNMAP_DMA on the compat IOAS, type1v2 and type1. */
TEST_F(bounds, vfio_compat_bounds)
{
	struct iommu_vfio_ioas vfio_ioas = {
		.size = sizeof(vfio_ioas),
		.ioas_id = self->ioas_id,
		.op = IOMMU_VFIO_IOAS_SET,
	};
	__u64 iova = MOCK_APERTURE_START;
	__u64 unmapped;
	int type;

	ASSERT_EQ(0, ioctl(self->fd, IOMMU_VFIO_IOAS, &vfio_ioas));
	for (type = 0; type < 2; type++) {
		if (type == 1)
			ASSERT_EQ(0, ioctl(self->fd, VFIO_SET_IOMMU,
					   VFIO_TYPE1_IOMMU));
		/* vaddr + size wraps. */
		EXPECT_ERRNO(EOVERFLOW, map_dma(self->fd, (uintptr_t)buffer,
						iova, UINT64_MAX));
		/* The largest size is beyond what a mapping can be. */
		EXPECT_ERRNO(EINVAL, map_dma(self->fd, 0, iova,
					     UINT64_MAX & ~4095ULL));
		/* iova + size wraps. */
		EXPECT_ERRNO(EOVERFLOW, map_dma(self->fd, (uintptr_t)buffer,
						TOP_PAGE(4096), 2 * 4096));
		/* Not aligned: refused before the overflow check. */
		EXPECT_ERRNO(EINVAL, map_dma(self->fd, (uintptr_t)buffer,
					     UINT64_MAX, 4096));

		ASSERT_EQ(0, map_dma(self->fd, (uintptr_t)buffer, iova,
				     BUF_SIZE));
		unmapped = 1;
		EXPECT_ERRNO(EOVERFLOW, unmap_dma(self->fd, TOP_PAGE(4096),
						  2 * 4096, &unmapped));
		EXPECT_ERRNO(EOVERFLOW, unmap_dma(self->fd, UINT64_MAX,
						  UINT64_MAX, &unmapped));
		/* Nothing mapped there: success, nothing unmapped. */
		EXPECT_EQ(0, unmap_dma(self->fd, TOP_PAGE(4096), 4096,
				       &unmapped));
		EXPECT_EQ(0, unmapped);
		/* Everything but the last byte: the mapping goes. */
		EXPECT_EQ(0, unmap_dma(self->fd, 0, UINT64_MAX, &unmapped));
		EXPECT_EQ(BUF_SIZE, unmapped);
		EXPECT_EQ(0, unmap_dma(self->fd, 0, UINT64_MAX, &unmapped));
		EXPECT_EQ(0, unmapped);
	}
}

TEST_HARNESS_MAIN
