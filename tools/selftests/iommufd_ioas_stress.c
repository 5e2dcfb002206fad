// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrent use of one iommufd file: threads allocate IOASes, map, copy,
 * unmap and destroy them, including objects other threads are using at the
 * same moment. Every call must either succeed or fail with one of the
 * errnos iommufd defines for that race (ENOENT, EBUSY, EEXIST, ENOSPC,
 * EINVAL); nothing may crash, hang or leak. The test runner checks
 * afterwards that the kernel log is clean and, for the Rust module, that its
 * object and pinned-page counters are back where they started.
 *
 * Holds for any iommufd implementation; uses no test-only interface.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "kselftest_harness.h"

#define NTHREADS 4
#define ROUNDS 1000
#define BUF_PAGES 16

static long page_size;

struct shared {
	int fd;
	uint8_t *buf;
	/* A small pool of ids the threads race on. */
	uint32_t ids[8];
	int bad_errno;
	int bad_op;
	/* The file may be closed under the workers: EBADF is expected. */
	int closing;
};

static int ioas_alloc(int fd, uint32_t *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_ioas_id;
	return rc;
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

static int map(int fd, uint32_t ioas, void *p, size_t len, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)p,
		.length = len,
	};
	int rc = ioctl(fd, IOMMU_IOAS_MAP, &cmd);

	if (!rc)
		*iova = cmd.iova;
	return rc;
}

static int unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	return ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
}

static int copy(int fd, uint32_t dst, uint32_t src, uint64_t src_iova,
		uint64_t len)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_READABLE,
		.dst_ioas_id = dst,
		.src_ioas_id = src,
		.length = len,
		.src_iova = src_iova,
	};

	return ioctl(fd, IOMMU_IOAS_COPY, &cmd);
}

static void check(struct shared *sh, int op, int rc)
{
	if (!rc)
		return;
	switch (errno) {
	case ENOENT:
	case EBUSY:
	case EEXIST:
	case ENOSPC:
	case EINVAL:
		return;
	case EBADF:
		if (__atomic_load_n(&sh->closing, __ATOMIC_RELAXED))
			return;
		break;
	}
	__atomic_store_n(&sh->bad_errno, errno, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->bad_op, op, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	struct shared *sh = arg;
	unsigned int seed = (unsigned int)(uintptr_t)pthread_self();
	int i;

	for (i = 0; i != ROUNDS; i++) {
		unsigned int slot = rand_r(&seed) % 8;
		unsigned int other = rand_r(&seed) % 8;
		uint32_t id = __atomic_load_n(&sh->ids[slot], __ATOMIC_RELAXED);
		uint32_t id2 = __atomic_load_n(&sh->ids[other], __ATOMIC_RELAXED);
		size_t npages = 1 + rand_r(&seed) % BUF_PAGES;
		uint64_t iova = 0;
		uint32_t new_id = 0;

		switch (rand_r(&seed) % 6) {
		case 0:
			check(sh, 0, ioas_alloc(sh->fd, &new_id));
			__atomic_store_n(&sh->ids[slot], new_id,
					 __ATOMIC_RELAXED);
			break;
		case 1:
			check(sh, 1, destroy(sh->fd, id));
			break;
		case 2:
		case 3:
			check(sh, 2,
			      map(sh->fd, id, sh->buf, npages * page_size,
				  &iova));
			if (iova && (rand_r(&seed) & 1))
				check(sh, 3, copy(sh->fd, id2, id, iova,
						  npages * page_size));
			break;
		case 4:
			/* Unmap everything (may hit nothing). */
			check(sh, 4, unmap(sh->fd, id, 0, UINT64_MAX));
			break;
		case 5:
			check(sh, 5, unmap(sh->fd, id, page_size,
					   npages * page_size));
			break;
		}
	}
	return NULL;
}

TEST(concurrent_ioas_ops_one_file)
{
	struct shared sh = { .bad_errno = 0 };
	pthread_t th[NTHREADS];
	int i;

	page_size = sysconf(_SC_PAGESIZE);
	sh.fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, sh.fd);
	sh.buf = mmap(NULL, BUF_PAGES * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, sh.buf);
	for (i = 0; i != 8; i++)
		ASSERT_EQ(0, ioas_alloc(sh.fd, &sh.ids[i]));

	for (i = 0; i != NTHREADS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, worker, &sh));
	for (i = 0; i != NTHREADS; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));

	EXPECT_EQ(0, sh.bad_errno)
	{
		TH_LOG("op %d failed with errno %d", sh.bad_op, sh.bad_errno);
	}
	/* Closing with whatever is left must free all of it. */
	ASSERT_EQ(0, close(sh.fd));
	ASSERT_EQ(0, munmap(sh.buf, BUF_PAGES * page_size));
}

TEST(close_while_busy)
{
	/* The file is closed by one thread while another is using it. */
	int round;

	page_size = sysconf(_SC_PAGESIZE);
	for (round = 0; round != 20; round++) {
		struct shared sh = { .bad_errno = 0 };
		pthread_t th;
		int i;

		sh.fd = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, sh.fd);
		sh.buf = mmap(NULL, BUF_PAGES * page_size,
			      PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		ASSERT_NE(MAP_FAILED, sh.buf);
		for (i = 0; i != 8; i++)
			ASSERT_EQ(0, ioas_alloc(sh.fd, &sh.ids[i]));
		ASSERT_EQ(0, pthread_create(&th, NULL, worker, &sh));
		usleep(1000 * (round % 5));
		/*
		 * Closed under the worker: an ioctl already running keeps the
		 * file alive until it returns; later ones see EBADF.
		 */
		__atomic_store_n(&sh.closing, 1, __ATOMIC_RELAXED);
		ASSERT_EQ(0, close(sh.fd));
		ASSERT_EQ(0, pthread_join(th, NULL));
		EXPECT_EQ(0, sh.bad_errno)
		{
			TH_LOG("op %d failed with errno %d", sh.bad_op,
			       sh.bad_errno);
		}
		ASSERT_EQ(0, munmap(sh.buf, BUF_PAGES * page_size));
	}
}

TEST_HARNESS_MAIN
