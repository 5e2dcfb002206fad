// SPDX-License-Identifier: GPL-2.0
/*
 * The first iommufd commands, checked in a way that holds for any iommufd
 * implementation (the C iommufd.ko and iommufd_rs.ko alike) and needs no
 * device: the size rules of the extensible command structures,
 * IOMMU_DESTROY, IOMMU_IOAS_ALLOC and IOMMU_IOAS_IOVA_RANGES on an IOAS
 * without devices or mappings, and closing a file that still holds objects.
 * Built with the kselftest harness of the pristine kernel tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "kselftest_harness.h"

#ifndef offsetofend
#define offsetofend(TYPE, MEMBER) \
	(offsetof(TYPE, MEMBER) + sizeof(((TYPE *)0)->MEMBER))
#endif

/* ioctl() must fail with exactly this errno. */
#define EXPECT_ERRNO(expected, cmd)                 \
	({                                          \
		errno = 0;                          \
		EXPECT_EQ(-1, cmd);                 \
		EXPECT_EQ(expected, errno);         \
	})

FIXTURE(iommufd)
{
	int fd;
};

FIXTURE_SETUP(iommufd)
{
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(iommufd)
{
	close(self->fd);
}

static int ioas_alloc(int fd, uint32_t *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (!rc)
		*id = cmd.out_ioas_id;
	return rc;
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

/*
 * The size rules, for one command: a size below the end of the last
 * mandatory field is EINVAL; a size beyond the kernel's structure is E2BIG
 * if the extra bytes are not zero, and the same as the exact size if they
 * are. "ok" is what the command does with the exact size: IOAS_ALLOC
 * succeeds, DESTROY of id 0 fails with ENOENT.
 */
#define CHECK_LENGTH(_struct, _ioctl, _last, _init...)                      \
	do {                                                                \
		size_t min_size = offsetofend(struct _struct, _last);       \
		struct {                                                    \
			struct _struct cmd;                                 \
			uint8_t extra[8];                                   \
		} buf;                                                      \
		int exact_rc, exact_errno;                                  \
									    \
		memset(&buf, 0, sizeof(buf));                               \
		buf.cmd = (struct _struct){ _init };                        \
		buf.cmd.size = min_size - 1;                                \
		buf.extra[0] = 1;                                           \
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, _ioctl, &buf));        \
		buf.cmd.size = 0;                                           \
		EXPECT_ERRNO(EINVAL, ioctl(self->fd, _ioctl, &buf));        \
		buf.cmd.size = sizeof(buf);                                 \
		EXPECT_ERRNO(E2BIG, ioctl(self->fd, _ioctl, &buf));         \
		buf.extra[0] = 0;                                           \
		buf.extra[7] = 0x80;                                        \
		EXPECT_ERRNO(E2BIG, ioctl(self->fd, _ioctl, &buf));         \
		buf.cmd.size = sizeof(buf.cmd);                             \
		errno = 0;                                                  \
		exact_rc = ioctl(self->fd, _ioctl, &buf);                   \
		exact_errno = errno;                                        \
		buf.cmd.size = sizeof(buf);                                 \
		memset(buf.extra, 0, sizeof(buf.extra));                    \
		errno = 0;                                                  \
		EXPECT_EQ(exact_rc, ioctl(self->fd, _ioctl, &buf));         \
		EXPECT_EQ(exact_errno, errno);                              \
	} while (0)

TEST_F(iommufd, size_rules)
{
	CHECK_LENGTH(iommu_destroy, IOMMU_DESTROY, id, .id = 0);
	CHECK_LENGTH(iommu_ioas_alloc, IOMMU_IOAS_ALLOC, out_ioas_id,
		     .flags = 0);
	CHECK_LENGTH(iommu_ioas_iova_ranges, IOMMU_IOAS_IOVA_RANGES,
		     out_iova_alignment, .ioas_id = 0);
}

TEST_F(iommufd, size_rules_results)
{
	struct {
		struct iommu_ioas_alloc cmd;
		uint32_t extra[3];
	} big = { .cmd = { .size = sizeof(big) } };
	uint32_t id;

	/* A zeroed tail is accepted and the command does its work. */
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOC, &big));
	EXPECT_NE(0, big.cmd.out_ioas_id);
	/* Only the kernel's structure is written back. */
	EXPECT_EQ(0, big.extra[0]);
	EXPECT_EQ(0, big.extra[1]);
	EXPECT_EQ(0, big.extra[2]);
	id = big.cmd.out_ioas_id;
	ASSERT_EQ(0, destroy(self->fd, id));

	/* A non-zero byte anywhere in the tail is refused, nothing created. */
	big.cmd.out_ioas_id = 0;
	big.extra[2] = 0x100;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_ALLOC, &big));
	EXPECT_EQ(0, big.cmd.out_ioas_id);
}

TEST_F(iommufd, bad_pointer)
{
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, NULL));
}

TEST_F(iommufd, ioas_alloc_destroy)
{
	uint32_t id, id2;

	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	EXPECT_NE(0, id);
	ASSERT_EQ(0, destroy(self->fd, id));
	EXPECT_ERRNO(ENOENT, destroy(self->fd, id));

	/* Two live objects never share an id. */
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	ASSERT_EQ(0, ioas_alloc(self->fd, &id2));
	EXPECT_NE(id, id2);
	EXPECT_NE(0, id2);
	ASSERT_EQ(0, destroy(self->fd, id2));
	ASSERT_EQ(0, destroy(self->fd, id));
}

TEST_F(iommufd, destroy_unknown)
{
	EXPECT_ERRNO(ENOENT, destroy(self->fd, 0));
	EXPECT_ERRNO(ENOENT, destroy(self->fd, 12345));
	EXPECT_ERRNO(ENOENT, destroy(self->fd, UINT32_MAX));
}

TEST_F(iommufd, objects_are_per_file)
{
	int fd2 = open("/dev/iommu", O_RDWR);
	uint32_t id;

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	/* Assuming the other file's table has nothing at this id. */
	EXPECT_ERRNO(ENOENT, destroy(fd2, id));
	ASSERT_EQ(0, destroy(self->fd, id));
	close(fd2);
}

TEST_F(iommufd, ioas_alloc_flags)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	cmd.flags = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
	cmd.flags = 1U << 31;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_ALLOC, &cmd));
}

TEST_F(iommufd, ioas_alloc_unwritable)
{
	struct iommu_ioas_alloc *cmd;
	void *page;
	uint32_t id, id2;

	/*
	 * The command can be read but the id cannot be written back: the
	 * command fails with EFAULT and must leave no object behind, so the
	 * next two allocations are the only objects and both destroy cleanly.
	 */
	page = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	cmd = page;
	cmd->size = sizeof(*cmd);
	cmd->flags = 0;
	ASSERT_EQ(0, mprotect(page, getpagesize(), PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, cmd));
	munmap(page, getpagesize());

	/*
	 * Both implementations hand out the lowest free id, from 1 (xa_alloc()
	 * with XA_FLAGS_ALLOC1), and this file had no object before: the
	 * aborted IOAS gave its id back.
	 */
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	EXPECT_EQ(1, id);
	ASSERT_EQ(0, ioas_alloc(self->fd, &id2));
	EXPECT_EQ(2, id2);
	ASSERT_EQ(0, destroy(self->fd, id));
	ASSERT_EQ(0, destroy(self->fd, id2));
}

TEST_F(iommufd, iova_ranges_fresh_ioas)
{
	struct iommu_iova_range ranges[4];
	struct iommu_ioas_iova_ranges cmd = { .size = sizeof(cmd) };

	ASSERT_EQ(0, ioas_alloc(self->fd, &cmd.ioas_id));

	/* No room: EMSGSIZE, but the needed count is written back. */
	memset(ranges, 0, sizeof(ranges));
	cmd.num_iovas = 0;
	cmd.allowed_iovas = (uintptr_t)ranges;
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(0, ranges[0].start);
	EXPECT_EQ(0, ranges[0].last);

	/* No room and no array at all: the same. */
	cmd.num_iovas = 0;
	cmd.allowed_iovas = 0;
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);

	/*
	 * The whole IOVA space, and no alignment: an IOAS starts as a software
	 * table; only attached domains restrict it (iopt_init_table()).
	 */
	memset(ranges, 0xff, sizeof(ranges));
	cmd.num_iovas = 4;
	cmd.allowed_iovas = (uintptr_t)ranges;
	cmd.out_iova_alignment = 0;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(0, ranges[0].start);
	EXPECT_EQ(UINT64_MAX, ranges[0].last);
	EXPECT_EQ(1, cmd.out_iova_alignment);
	/* Entries beyond num_iovas are not touched. */
	EXPECT_EQ(UINT64_MAX, ranges[1].start);

	/* __reserved must be zero. */
	cmd.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	cmd.__reserved = 0;

	/* An array that cannot be written. */
	cmd.num_iovas = 1;
	cmd.allowed_iovas = 8;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));

	/* A query holds no reference once it returned. */
	ASSERT_EQ(0, destroy(self->fd, cmd.ioas_id));
}

TEST_F(iommufd, iova_ranges_not_ioas)
{
	struct iommu_iova_range range;
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
	};
	uint32_t id;

	cmd.ioas_id = 0;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	cmd.ioas_id = 4242;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));

	/* A destroyed IOAS is gone. */
	ASSERT_EQ(0, ioas_alloc(self->fd, &id));
	ASSERT_EQ(0, destroy(self->fd, id));
	cmd.ioas_id = id;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
}

TEST_F(iommufd, many_ioas_then_close)
{
	enum { N = 1000 };
	uint32_t id, first = 0;
	int fd;

	/* Objects still in the table are freed when the file goes. */
	for (int round = 0; round < 3; round++) {
		fd = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, fd);
		for (int i = 0; i < N; i++) {
			ASSERT_EQ(0, ioas_alloc(fd, &id));
			if (!i)
				first = id;
		}
		/* Destroy one; the rest go with the file. */
		ASSERT_EQ(0, destroy(fd, first));
		ASSERT_EQ(0, close(fd));
	}
}

struct worker {
	int fd;
	long fails;
};

static void *alloc_query_destroy(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 2000; i++) {
		struct iommu_iova_range range;
		struct iommu_ioas_iova_ranges cmd = {
			.size = sizeof(cmd),
			.num_iovas = 1,
			.allowed_iovas = (uintptr_t)&range,
		};

		if (ioas_alloc(w->fd, &cmd.ioas_id)) {
			w->fails++;
			continue;
		}
		if (ioctl(w->fd, IOMMU_IOAS_IOVA_RANGES, &cmd) ||
		    cmd.num_iovas != 1 || range.start != 0 ||
		    range.last != UINT64_MAX)
			w->fails++;
		/*
		 * Destroying it a second time is not checked here: ids are
		 * reused lowest first, so another thread may already own it.
		 */
		if (destroy(w->fd, cmd.ioas_id))
			w->fails++;
	}
	return NULL;
}

TEST_F(iommufd, concurrent_objects)
{
	enum { T = 4 };
	struct worker w[T];
	pthread_t th[T];

	/* Threads sharing one file never see each other's objects vanish. */
	for (int i = 0; i < T; i++) {
		w[i] = (struct worker){ .fd = self->fd };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, alloc_query_destroy,
					    &w[i]));
	}
	for (int i = 0; i < T; i++) {
		ASSERT_EQ(0, pthread_join(th[i], NULL));
		EXPECT_EQ(0, w[i].fails);
	}
}

TEST_HARNESS_MAIN
