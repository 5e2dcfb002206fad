// SPDX-License-Identifier: GPL-2.0
/*
 * Checks of /dev/iommu that hold for any iommufd implementation: the device
 * opens, many files can be open at once, every file is independent, an
 * ioctl number that nobody defines is refused with ENOTTY, and files survive
 * concurrent use and fork. Built with the kselftest harness of the pristine
 * kernel tree.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include "kselftest_harness.h"

#define UNDEFINED_IOCTL _IO(IOMMUFD_TYPE, 0x7f)
/* The selftest command of iommufd_test.h: only with CONFIG_IOMMUFD_TEST. */
#define TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

TEST(device_node)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/iommu", &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	/* A misc device: major 10. */
	ASSERT_EQ(10, major(st.st_rdev));
	/* Upstream's mode: read and write for owner and group (crw-rw----). */
	EXPECT_EQ(0660, st.st_mode & 07777);
}

TEST(open_close)
{
	int fd = open("/dev/iommu", O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));
}

TEST(undefined_ioctl_is_enotty)
{
	int fd = open("/dev/iommu", O_RDWR);

	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, UNDEFINED_IOCTL, NULL));
	EXPECT_EQ(ENOTTY, errno);
	/* Another ioctl type entirely. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, _IO('x', 0x01), NULL));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

/*
 * IOMMU_TEST_CMD (struct iommu_test_cmd: size, op, then 64 bytes) exists only
 * in kernels with CONFIG_IOMMUFD_TEST. With a valid size and an operation
 * nobody defines, the command is answered (EOPNOTSUPP) when it exists and
 * ENOTTY when it does not. The runner sets IOMMUFD_NO_TEST_CMD=1 for kernels
 * without it.
 */
TEST(test_cmd_only_with_iommufd_test)
{
	const char *no_test = getenv("IOMMUFD_NO_TEST_CMD");
	struct {
		__u32 size;
		__u32 op;
		__u8 rest[64];
	} cmd;
	int fd = open("/dev/iommu", O_RDWR);

	ASSERT_LE(0, fd);
	memset(&cmd, 0, sizeof(cmd));
	cmd.size = sizeof(cmd);
	cmd.op = 0;
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, TEST_CMD, &cmd));
	if (no_test && !strcmp(no_test, "1")) {
		EXPECT_EQ(ENOTTY, errno);
	} else {
		EXPECT_NE(ENOTTY, errno);
	}
	close(fd);
}

/*
 * The unused numbers after the last command (0x96 to 0x9f) lie inside
 * upstream's table when IOMMU_TEST_CMD (0xa0) ends it: the size is read
 * first (EFAULT for an unmapped argument), then ENOTTY. Without
 * CONFIG_IOMMUFD_TEST they are outside the table (VFIO compat: ENOTTY, the
 * argument unread).
 */
TEST(table_holes)
{
	const char *no_test = getenv("IOMMUFD_NO_TEST_CMD");
	bool in_table = !(no_test && !strcmp(no_test, "1"));
	__u32 size = 16;
	int fd = open("/dev/iommu", O_RDWR);

	ASSERT_LE(0, fd);
	for (unsigned int nr = IOMMUFD_CMD_BASE + 0x16; nr < IOMMUFD_CMD_BASE + 32; nr++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, _IO(IOMMUFD_TYPE, nr), &size));
		EXPECT_EQ(ENOTTY, errno);
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, _IO(IOMMUFD_TYPE, nr), NULL));
		EXPECT_EQ(in_table ? EFAULT : ENOTTY, errno);
	}
	close(fd);
}

TEST(many_files)
{
	enum { N = 256 };
	int fds[N];

	for (int i = 0; i < N; i++) {
		fds[i] = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, fds[i]);
	}
	for (int i = 0; i < N; i++)
		ASSERT_EQ(0, close(fds[i]));
}

static void *open_ioctl_close(void *arg)
{
	long fails = 0;

	for (int i = 0; i < 2000; i++) {
		int fd = open("/dev/iommu", O_RDWR);

		if (fd < 0) {
			fails++;
			continue;
		}
		if (ioctl(fd, UNDEFINED_IOCTL, NULL) != -1 || errno != ENOTTY)
			fails++;
		close(fd);
	}
	return (void *)fails;
}

TEST(concurrent_files)
{
	enum { T = 4 };
	pthread_t th[T];
	void *ret;

	for (int i = 0; i < T; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, open_ioctl_close, NULL));
	for (int i = 0; i < T; i++) {
		ASSERT_EQ(0, pthread_join(th[i], &ret));
		EXPECT_EQ(0, (long)ret);
	}
}

TEST(fork_shares_file)
{
	int fd = open("/dev/iommu", O_RDWR);
	int status;
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child's copy works after the parent closed its own. */
		usleep(10000);
		_exit(ioctl(fd, UNDEFINED_IOCTL, NULL) == -1 && errno == ENOTTY ? 0 : 1);
	}
	close(fd);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
