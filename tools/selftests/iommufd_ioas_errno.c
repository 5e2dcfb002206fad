// SPDX-License-Identifier: GPL-2.0
/*
 * IOAS semantics where the Rust iommufd had to match (or knowingly differs
 * from) the C iommufd, on the selftest mock, against both implementations:
 *
 *  - which files IOMMU_IOAS_MAP_FILE takes (Rust refuses files it could never
 *    pin, so a file holding the context cannot keep it alive; C takes any
 *    file and only fails when pinning),
 *  - IOMMU_IOAS_CHANGE_PROCESS racing pins: the locked and pinned counts of
 *    both processes are exact afterwards,
 *  - an unmap racing an access that re-pins the range succeeds,
 *  - errnos: attaching an attached device, IOMMU_IOAS_NOIOMMU_GET_PA, access
 *    pins off page boundaries, IOMMU_IOAS_ALLOW_IOVAS with a count beyond the
 *    buffer, IOVAs and lengths at the top of the address space.
 *
 * Where the implementations differ, the test knows which one is loaded
 * (/sys/module/iommufd_rs) and says so.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "iommu/iommufd_utils.h"

/* The attachment without PASID (include/linux/iommu.h). */
#define IOMMU_NO_PASID 0
#define RW (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)
#define RS_STATS "/sys/kernel/debug/iommufd_rs/stats"

static bool is_rust(void)
{
	return access("/sys/module/iommufd_rs", F_OK) == 0;
}

/* A value of debugfs iommufd_rs/stats ("objects", "pinned_pages"), -1 if none. */
static long rs_stat(const char *name)
{
	char key[64];
	long val, found = -1;
	FILE *f = fopen(RS_STATS, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &val) == 2)
		if (!strcmp(key, name))
			found = val;
	fclose(f);
	return found;
}

/* A "Vm...:" value of /proc/self/status, in kB; -1 if absent. */
static long vm_kb(const char *field)
{
	char line[256];
	long val = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			val = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return val;
}

static int map_file(int fd, __u32 ioas_id, int file, __u64 start, __u64 length,
		    __u64 *iova)
{
	return _test_ioctl_ioas_map_file(fd, ioas_id, file, start, length, iova,
					 RW);
}

static int map_user(int fd, __u32 ioas_id, __u64 uptr, __u64 length,
		    __u64 iova, __u32 flags)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = uptr,
		.length = length,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &cmd);
}

static int copy_iova(int fd, __u32 dst, __u32 src, __u64 src_iova,
		     __u64 length, __u64 dst_iova, __u32 flags)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst,
		.src_ioas_id = src,
		.length = length,
		.dst_iova = dst_iova,
		.src_iova = src_iova,
	};

	return ioctl(fd, IOMMU_IOAS_COPY, &cmd);
}

static int unmap_iova(int fd, __u32 ioas_id, __u64 iova, __u64 length)
{
	return _test_ioctl_ioas_unmap(fd, ioas_id, iova, length, NULL);
}

static int change_process(int fd)
{
	struct iommu_ioas_change_process cmd = { .size = sizeof(cmd) };

	return ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, &cmd);
}

/* IOMMU_TEST_OP_ACCESS_PAGES; returns the ioctl's result, the item in *item. */
static int access_pin(int fd, __u32 access_id, __u64 iova, __u64 length,
		      __u32 *item)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_ACCESS_PAGES,
		.id = access_id,
		.access_pages = { .iova = iova, .length = length },
	};
	int rc = ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_ACCESS_PAGES), &cmd);

	if (!rc && item)
		*item = cmd.access_pages.out_access_pages_id;
	return rc;
}

static int memfd_of(size_t size, unsigned int flags)
{
	int f = memfd_create("iommufd_ioas_errno", flags);

	if (f < 0)
		return -1;
	if (ftruncate(f, size)) {
		close(f);
		return -1;
	}
	return f;
}

/* Drops CAP_IPC_LOCK from the effective set, so pinned pages are charged. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &hdr, data);
}

FIXTURE(ioas_errno)
{
	int fd;
	__u32 ioas_id;
};

FIXTURE_SETUP(ioas_errno)
{
	/* Globals of iommufd_utils.h these tests do not need. */
	(void)mfd;
	(void)mfd_buffer;
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
}

FIXTURE_TEARDOWN(ioas_errno)
{
	close(self->fd);
}

/*
 * Files that can never back a mapping. Rust refuses them at map time with
 * EINVAL (what pinning would answer). C 7.3.4 takes any file and holds it for
 * the life of the mapping; it fails only when the pages are pinned, so each is
 * unmapped again here (for the /dev/iommu file itself and the access file that
 * is what breaks the reference cycle).
 */
TEST_F(ioas_errno, map_file_unpinnable)
{
	int pipes[2], sock, devnull, access_fd;
	struct {
		const char *what;
		int fd;
	} files[7];
	__u64 iova;
	unsigned int i;

	ASSERT_EQ(0, pipe(pipes));
	/* The test kernels have no networking (CONFIG_NET=n): no sockets. */
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sock < 0)
		TH_LOG("no socket (%s): a socket is not tried", strerror(errno));
	devnull = open("/dev/null", O_RDWR);
	ASSERT_LE(0, devnull);
	ASSERT_EQ(0, _test_cmd_create_access(self->fd, self->ioas_id,
					     (__u32 *)&access_fd, 0));
	files[0].what = "the /dev/iommu file itself";
	files[0].fd = self->fd;
	files[1].what = "a selftest access file";
	files[1].fd = access_fd;
	files[2].what = "a pipe";
	files[2].fd = pipes[0];
	files[3].what = "/dev/null";
	files[3].fd = devnull;
	files[4].what = "another /dev/iommu file";
	files[4].fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, files[4].fd);
	files[5].what = "an eventfd";
	files[5].fd = eventfd(0, 0);
	ASSERT_LE(0, files[5].fd);
	files[6].what = "a socket";
	files[6].fd = sock;

	for (i = 0; i != ARRAY_SIZE(files); i++) {
		int rc;

		if (files[i].fd < 0)
			continue;
		rc = map_file(self->fd, self->ioas_id, files[i].fd, 0,
			      PAGE_SIZE, &iova);

		if (is_rust()) {
			TH_LOG("%s: refused", files[i].what);
			EXPECT_EQ(-1, rc);
			EXPECT_EQ(EINVAL, errno);
		} else {
			TH_LOG("%s: C takes it (fails only when pinning)",
			       files[i].what);
			EXPECT_EQ(0, rc);
			if (!rc)
				EXPECT_EQ(0, unmap_iova(self->fd, self->ioas_id,
							iova, PAGE_SIZE));
		}
	}
	close(files[4].fd);
	close(files[5].fd);
	if (sock >= 0)
		close(sock);
	close(access_fd);
	close(devnull);
	close(pipes[0]);
	close(pipes[1]);
}

/* With a domain attached the pages are pinned at once: both refuse. */
TEST_F(ioas_errno, map_file_unpinnable_domain)
{
	__u32 stdev_id, hwpt_id;
	int pipes[2], devnull;
	__u64 iova;

	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, NULL);
	ASSERT_EQ(0, pipe(pipes));
	devnull = open("/dev/null", O_RDWR);
	ASSERT_LE(0, devnull);
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->fd, 0,
				      PAGE_SIZE, &iova));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, pipes[0], 0,
				      PAGE_SIZE, &iova));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, devnull, 0,
				      PAGE_SIZE, &iova));
	EXPECT_ERRNO(EBADF, map_file(self->fd, self->ioas_id, -1, 0,
				     PAGE_SIZE, &iova));
	close(devnull);
	close(pipes[0]);
	close(pipes[1]);
}

/* Files whose pages can be pinned: mapped, pinned by a mock domain, unmapped. */
static void map_pin_unmap(struct __test_metadata *_metadata, int fd,
			  __u32 ioas_id, int file, size_t length)
{
	__u64 iova;

	ASSERT_EQ(0, map_file(fd, ioas_id, file, 0, length, &iova));
	EXPECT_EQ(0, unmap_iova(fd, ioas_id, iova, length));
}

TEST_F(ioas_errno, map_file_pinnable)
{
	__u32 stdev_id, hwpt_id;
	struct statfs sfs;
	int f;

	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, NULL);

	f = memfd_of(4 * PAGE_SIZE, 0);
	ASSERT_LE(0, f);
	map_pin_unmap(_metadata, self->fd, self->ioas_id, f, 4 * PAGE_SIZE);
	close(f);

	/* A regular file on tmpfs is a shmem file. */
	ASSERT_EQ(0, statfs("/tmp", &sfs));
	if (sfs.f_type == TMPFS_MAGIC) {
		f = open("/tmp/iommufd_ioas_errno", O_RDWR | O_CREAT | O_TRUNC,
			 0600);
		ASSERT_LE(0, f);
		unlink("/tmp/iommufd_ioas_errno");
		ASSERT_EQ(0, ftruncate(f, 4 * PAGE_SIZE));
		map_pin_unmap(_metadata, self->fd, self->ioas_id, f,
			      4 * PAGE_SIZE);
		close(f);
	} else {
		TH_LOG("/tmp is not tmpfs: tmpfs file not tried");
	}
}

TEST_F(ioas_errno, map_file_hugetlb)
{
	size_t huge = 2 * 1024 * 1024;
	__u32 stdev_id, hwpt_id;
	int f;

	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, NULL);
	f = memfd_of(huge, MFD_HUGETLB);
	if (f < 0)
		SKIP(return, "no 2 MiB hugetlb memfd (no huge pages reserved?)");
	map_pin_unmap(_metadata, self->fd, self->ioas_id, f, huge);
	close(f);
}

/*
 * The reproducer of the reference cycle: a process maps its /dev/iommu file
 * (and an access file) into its IOAS and exits. Rust refuses both maps, so
 * the context goes with the process: its counters are back. C (7.3.4) keeps
 * the cycle and the C module could not be unloaded any more, so this is run
 * against Rust only.
 */
TEST_F(ioas_errno, map_file_cycle_no_leak)
{
	long before;
	int status;
	pid_t pid;

	if (!is_rust())
		SKIP(return, "C keeps the cycle (the context would leak)");
	before = rs_stat("objects");
	ASSERT_LE(0, before);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u32 ioas_id, access_fd;
		__u64 iova;
		int fd = open("/dev/iommu", O_RDWR);

		if (fd < 0 || _test_ioctl_ioas_alloc(fd, &ioas_id) ||
		    _test_cmd_create_access(fd, ioas_id, &access_fd, 0))
			_exit(2);
		if (!map_file(fd, ioas_id, fd, 0, PAGE_SIZE, &iova) ||
		    errno != EINVAL)
			_exit(3);
		if (!map_file(fd, ioas_id, access_fd, 0, PAGE_SIZE, &iova) ||
		    errno != EINVAL)
			_exit(4);
		/* Exit with everything open. */
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(before, rs_stat("objects"));
}

/* Attaching a device that is attached is EBUSY (upstream: device.c). */
TEST_F(ioas_errno, attach_attached_device)
{
	__u32 stdev_id, hwpt_id, ioas2;

	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, NULL);
	test_ioctl_ioas_alloc(&ioas2);
	EXPECT_ERRNO(EBUSY, _test_cmd_pasid_attach(self->fd, stdev_id,
						   IOMMU_NO_PASID,
						   self->ioas_id));
	EXPECT_ERRNO(EBUSY, _test_cmd_pasid_attach(self->fd, stdev_id,
						   IOMMU_NO_PASID, hwpt_id));
	EXPECT_ERRNO(EBUSY, _test_cmd_pasid_attach(self->fd, stdev_id,
						   IOMMU_NO_PASID, ioas2));
	/* Still attached where it was: a replace to the same HWPT works. */
	test_cmd_mock_domain_replace(stdev_id, hwpt_id);
}

/*
 * MOCK_DOMAIN_REPLACE looks its id up as a selftest object (upstream:
 * iommufd_get_object(..., IOMMUFD_OBJ_SELFTEST)): an id of another type, here
 * an IOAS or the device object behind a mock device, is ENOENT; an unused id
 * too.
 */
TEST_F(ioas_errno, mock_domain_replace_not_selftest)
{
	__u32 stdev_id, hwpt_id, idev_id;

	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, &idev_id);
	test_err_mock_domain_replace(ENOENT, self->ioas_id, hwpt_id);
	test_err_mock_domain_replace(ENOENT, idev_id, hwpt_id);
	test_err_mock_domain_replace(ENOENT, hwpt_id, hwpt_id);
	test_err_mock_domain_replace(ENOENT, 0xfffff, hwpt_id);
	/* The selftest object itself still works. */
	test_cmd_mock_domain_replace(stdev_id, self->ioas_id);
}

/*
 * A mock domain's aperture starts at MOCK_APERTURE_START: an IOAS with a
 * mapping below it cannot take a mock domain, so moving a mock device there
 * is EADDRINUSE (the aperture's reservation), before any check of the device
 * against the HWPT; the device stays where it was. Also with a PASID attached
 * (the new automatic HWPT would not be PASID-capable: EINVAL, checked later).
 */
TEST_F(ioas_errno, mock_domain_replace_aperture)
{
	__u32 stdev_id, hwpt_id, idev_id, low_ioas, pasid_hwpt, access_id;
	void *buf = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	test_ioctl_ioas_alloc(&low_ioas);
	test_ioctl_ioas_map_fixed_id(low_ioas, buf, PAGE_SIZE, PAGE_SIZE);
	test_cmd_mock_domain_flags(self->ioas_id, MOCK_FLAGS_DEVICE_PASID, &stdev_id, &hwpt_id,
				   &idev_id);
	test_err_mock_domain_replace(EADDRINUSE, stdev_id, low_ioas);
	/* The RID on a PASID-capable HWPT, so that PASID 1 can be attached. */
	test_cmd_hwpt_alloc(idev_id, self->ioas_id, IOMMU_HWPT_ALLOC_PASID, &pasid_hwpt);
	test_cmd_mock_domain_replace(stdev_id, pasid_hwpt);
	ASSERT_EQ(0, _test_cmd_pasid_attach(self->fd, stdev_id, 1, pasid_hwpt));
	test_err_mock_domain_replace(EADDRINUSE, stdev_id, low_ioas);
	ASSERT_EQ(0, _test_cmd_pasid_detach(self->fd, stdev_id, 1));
	/* Still on the PASID-capable HWPT: it cannot go. */
	EXPECT_ERRNO(EBUSY, _test_ioctl_destroy(self->fd, pasid_hwpt));
	/* The same with an access that pins pages on the low IOAS. */
	test_cmd_create_access(low_ioas, &access_id, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
	test_err_mock_domain_replace(EADDRINUSE, stdev_id, low_ioas);
	test_cmd_destroy_access(access_id);
	munmap(buf, PAGE_SIZE);
}

/*
 * Where the device is checked against a new automatic HWPT, relative to the
 * HWPT's domain being filled from the IOAS. An attach checks first (upstream
 * attaches the new domain at once, then fills it): an automatic HWPT is never
 * PASID-capable, so a PASID attach to an IOAS is EINVAL, even to one with a
 * mapping below the mock's aperture. A replace fills first: replacing a PASID
 * that is not attached is EADDRINUSE onto that IOAS (the domain cannot mirror
 * it), EINVAL onto one it can mirror. Nothing is left behind: the PASID can
 * then be attached to a PASID-capable HWPT, and the IOAS destroyed.
 */
TEST_F(ioas_errno, pasid_new_auto_hwpt_order)
{
	__u32 stdev_id, hwpt_id, idev_id, low_ioas, pasid_hwpt;
	void *buf = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	test_ioctl_ioas_alloc(&low_ioas);
	test_ioctl_ioas_map_fixed_id(low_ioas, buf, PAGE_SIZE, PAGE_SIZE);
	test_cmd_mock_domain_flags(self->ioas_id, MOCK_FLAGS_DEVICE_PASID,
				   &stdev_id, &hwpt_id, &idev_id);
	EXPECT_ERRNO(EINVAL, _test_cmd_pasid_attach(self->fd, stdev_id, 1,
						    low_ioas));
	EXPECT_ERRNO(EINVAL, _test_cmd_pasid_attach(self->fd, stdev_id, 1,
						    self->ioas_id));
	EXPECT_ERRNO(EADDRINUSE, _test_cmd_pasid_replace(self->fd, stdev_id, 1,
							 low_ioas));
	EXPECT_ERRNO(EINVAL, _test_cmd_pasid_replace(self->fd, stdev_id, 1,
						     self->ioas_id));
	EXPECT_ERRNO(EINVAL, _test_cmd_pasid_replace(self->fd, stdev_id, 1,
						     hwpt_id));
	test_cmd_hwpt_alloc(idev_id, self->ioas_id, IOMMU_HWPT_ALLOC_PASID,
			    &pasid_hwpt);
	test_cmd_mock_domain_replace(stdev_id, pasid_hwpt);
	ASSERT_EQ(0, _test_cmd_pasid_attach(self->fd, stdev_id, 1, pasid_hwpt));
	ASSERT_EQ(0, _test_cmd_pasid_detach(self->fd, stdev_id, 1));
	test_ioctl_destroy(low_ioas);
	munmap(buf, PAGE_SIZE);
}

/*
 * What is checked before what when a new user of an IOAS must agree with its
 * mappings. A HW queue pins its pages through an internal access, which needs
 * page-aligned mappings: the mock's domains take 2 KiB pages, so the IOAS can
 * hold a mapping half a page off, and then a queue is EADDRINUSE before its
 * range is looked up (even an unmapped one); without that mapping, an
 * unmapped range is ENOENT. HWPT_ALLOC looks its FAULT object up only once
 * the domain mirrors the IOAS: onto an IOAS with a mapping below the mock's
 * aperture a bad fault id is EADDRINUSE, onto a good IOAS ENOENT.
 */
TEST_F(ioas_errno, new_user_checks_order)
{
	__u32 stdev_id, hwpt_id, idev_id, parent_id, viommu_id, q_id, low_ioas;
	__u64 off = MOCK_APERTURE_START + PAGE_SIZE / 2;
	__u64 far = MOCK_APERTURE_START + 64 * PAGE_SIZE;
	__u64 iova = MOCK_APERTURE_START + 128 * PAGE_SIZE;
	void *buf = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	test_cmd_mock_domain(self->ioas_id, &stdev_id, &hwpt_id, &idev_id);
	test_cmd_hwpt_alloc(idev_id, self->ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT,
			    &parent_id);
	test_cmd_viommu_alloc(idev_id, parent_id, IOMMU_VIOMMU_TYPE_SELFTEST,
			      NULL, 0, &viommu_id);
	test_ioctl_ioas_map_fixed_id(self->ioas_id, buf, PAGE_SIZE, off);
	test_err_hw_queue_alloc(EADDRINUSE, viommu_id,
				IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, off,
				PAGE_SIZE / 2, &q_id);
	test_err_hw_queue_alloc(EADDRINUSE, viommu_id,
				IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, far, PAGE_SIZE,
				&q_id);
	test_ioctl_ioas_unmap_id(self->ioas_id, off, PAGE_SIZE);
	test_err_hw_queue_alloc(ENOENT, viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST,
				0, far, PAGE_SIZE, &q_id);
	/* A queue on page-aligned memory works, and then holds the alignment. */
	test_ioctl_ioas_map_fixed_id(self->ioas_id, buf, PAGE_SIZE, iova);
	test_cmd_hw_queue_alloc(viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0,
				iova, PAGE_SIZE, &q_id);
	EXPECT_ERRNO(EINVAL,
		     _test_ioctl_ioas_map(self->fd, self->ioas_id,
					  (char *)buf + PAGE_SIZE, PAGE_SIZE,
					  &off, IOMMU_IOAS_MAP_FIXED_IOVA |
					  IOMMU_IOAS_MAP_WRITEABLE |
					  IOMMU_IOAS_MAP_READABLE));
	test_ioctl_destroy(q_id);
	test_ioctl_ioas_map_fixed_id(self->ioas_id, (char *)buf + PAGE_SIZE,
				     PAGE_SIZE, off);

	test_ioctl_ioas_alloc(&low_ioas);
	test_ioctl_ioas_map_fixed_id(low_ioas, buf, PAGE_SIZE, PAGE_SIZE);
	EXPECT_ERRNO(EADDRINUSE,
		     _test_cmd_hwpt_alloc(self->fd, idev_id, low_ioas, 0xfffff,
					  IOMMU_HWPT_FAULT_ID_VALID, &q_id,
					  IOMMU_HWPT_DATA_NONE, NULL, 0));
	EXPECT_ERRNO(ENOENT,
		     _test_cmd_hwpt_alloc(self->fd, idev_id, self->ioas_id,
					  0xfffff, IOMMU_HWPT_FAULT_ID_VALID,
					  &q_id, IOMMU_HWPT_DATA_NONE, NULL, 0));
	test_ioctl_destroy(low_ioas);
	munmap(buf, 2 * PAGE_SIZE);
}

/*
 * IOMMU_IOAS_NOIOMMU_GET_PA: the size rules, then, without
 * CONFIG_IOMMUFD_NOIOMMU (these kernels), EOPNOTSUPP.
 */
TEST_F(ioas_errno, noiommu_get_pa)
{
	struct {
		struct iommu_ioas_noiommu_get_pa cmd;
		__u64 tail;
	} big;
	struct iommu_ioas_noiommu_get_pa cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas_id,
		.length = PAGE_SIZE,
	};

	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_NOIOMMU_GET_PA,
				       &cmd));
	cmd.size = offsetof(struct iommu_ioas_noiommu_get_pa, out_phys);
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_NOIOMMU_GET_PA, &cmd));
	memset(&big, 0, sizeof(big));
	big.cmd.size = sizeof(big);
	big.cmd.ioas_id = self->ioas_id;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_NOIOMMU_GET_PA,
				       &big));
	big.tail = 1;
	EXPECT_ERRNO(E2BIG, ioctl(self->fd, IOMMU_IOAS_NOIOMMU_GET_PA, &big));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_NOIOMMU_GET_PA, NULL));
}

/*
 * An access pins whole pages of the memory: a range that does not start on a
 * page boundary of the memory is EINVAL in both (upstream's
 * iopt_area_contig_is_aligned), one that does works.
 */
TEST_F(ioas_errno, access_pin_alignment)
{
	__u64 iova = MOCK_APERTURE_START;
	__u32 access_id, item;
	void *buf;

	buf = mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, map_user(self->fd, self->ioas_id, (uintptr_t)buf,
			      4 * PAGE_SIZE, iova,
			      RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	ASSERT_EQ(0, _test_cmd_create_access(
			     self->fd, self->ioas_id, &access_id,
			     MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));
	EXPECT_ERRNO(EINVAL, access_pin(self->fd, access_id, iova + 1,
					PAGE_SIZE - 1, NULL));
	EXPECT_ERRNO(EINVAL, access_pin(self->fd, access_id,
					iova + PAGE_SIZE / 2, PAGE_SIZE,
					NULL));
	ASSERT_EQ(0, access_pin(self->fd, access_id, iova + PAGE_SIZE, 100,
				&item));
	EXPECT_EQ(0, _test_cmd_destroy_access_pages(self->fd, access_id,
						    item));
	close(access_id);
	munmap(buf, 4 * PAGE_SIZE);
}

/*
 * IOMMU_IOAS_ALLOW_IOVAS reads the ranges one by one: a count far beyond the
 * buffer ends with EFAULT at the end of the buffer, whatever the count.
 */
TEST_F(ioas_errno, allow_iovas_count)
{
	struct iommu_iova_range *ranges;
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = self->ioas_id,
	};
	unsigned int i, n = 256;
	char *page;

	/* Two pages, the second unmapped: the ranges end the first one. */
	page = mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, munmap(page + PAGE_SIZE, PAGE_SIZE));
	ranges = (void *)(page + PAGE_SIZE - n * sizeof(*ranges));
	for (i = 0; i != n; i++) {
		ranges[i].start = (i + 1) * 0x100000ULL;
		ranges[i].last = ranges[i].start + 0xfffff - 0x1000;
	}
	cmd.allowed_iovas = (uintptr_t)ranges;

	cmd.num_iovas = n;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	cmd.num_iovas = n + 1;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	cmd.num_iovas = 0x10000000;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	cmd.num_iovas = UINT32_MAX;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));

	/* Overlapping ranges, either neighbour, and empty ones are EINVAL. */
	ranges[n - 1].start = ranges[n - 2].last;
	cmd.num_iovas = n;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	ranges[n - 1].start = ranges[0].start - 0x1000;
	ranges[n - 1].last = ranges[0].start;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	ranges[n - 1].start = 0x1000;
	ranges[n - 1].last = 0x1000;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	ranges[n - 1].start = 0;
	ranges[n - 1].last = 0x1000;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	/* The top of the address space is a valid range. */
	ranges[n - 1].start = UINT64_MAX - 0x1000;
	ranges[n - 1].last = UINT64_MAX;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	cmd.num_iovas = 0;
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	munmap(page, PAGE_SIZE);
}

/* IOVAs, lengths and addresses at the top of the 64-bit space. */
TEST_F(ioas_errno, top_of_address_space)
{
	struct iommu_iova_range range;
	struct iommu_ioas_iova_ranges ranges_cmd = {
		.size = sizeof(ranges_cmd),
		.ioas_id = self->ioas_id,
		.num_iovas = UINT32_MAX,
		.allowed_iovas = (uintptr_t)&range,
	};
	__u64 top = UINT64_MAX - PAGE_SIZE + 1;
	__u64 fixed = RW | IOMMU_IOAS_MAP_FIXED_IOVA;
	__u32 ioas2;
	void *buf;
	__u64 iova;
	int f;

	buf = mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	test_ioctl_ioas_alloc(&ioas2);

	/* MAP */
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id,
					 (uintptr_t)buf, PAGE_SIZE, UINT64_MAX,
					 fixed));
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id,
					 (uintptr_t)buf, UINT64_MAX, 0, RW));
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id,
					 (uintptr_t)buf, 2 * PAGE_SIZE, top,
					 fixed));
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id, top,
					 2 * PAGE_SIZE, 0, RW));
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id,
					 (uintptr_t)buf, UINT64_MAX - 1, 0, RW));
	/* No overflow, but more than half the space: no IOVA for it. */
	EXPECT_ERRNO(EOVERFLOW, map_user(self->fd, self->ioas_id, 0,
					 1ULL << 63, 0, RW));
	/* The last page of the IOVA space can be mapped and unmapped. */
	ASSERT_EQ(0, map_user(self->fd, self->ioas_id, (uintptr_t)buf,
			      PAGE_SIZE, top, fixed));

	/* COPY */
	EXPECT_ERRNO(EOVERFLOW, copy_iova(self->fd, ioas2, self->ioas_id, top,
					  UINT64_MAX, 0, RW));
	EXPECT_ERRNO(EOVERFLOW, copy_iova(self->fd, ioas2, self->ioas_id,
					  UINT64_MAX, PAGE_SIZE, 0, RW));
	EXPECT_ERRNO(EOVERFLOW, copy_iova(self->fd, ioas2, self->ioas_id, top,
					  2 * PAGE_SIZE, 0, RW));
	EXPECT_ERRNO(EOVERFLOW, copy_iova(self->fd, ioas2, self->ioas_id, top,
					  PAGE_SIZE, UINT64_MAX, fixed));
	EXPECT_EQ(0, copy_iova(self->fd, ioas2, self->ioas_id, top, PAGE_SIZE,
			       top, fixed));
	EXPECT_ERRNO(EEXIST, copy_iova(self->fd, ioas2, self->ioas_id, top,
				       PAGE_SIZE, top, fixed));

	/* UNMAP */
	EXPECT_ERRNO(EOVERFLOW, unmap_iova(self->fd, self->ioas_id, top,
					   2 * PAGE_SIZE));
	EXPECT_ERRNO(EOVERFLOW, unmap_iova(self->fd, self->ioas_id, top,
					   UINT64_MAX));
	EXPECT_ERRNO(EOVERFLOW, unmap_iova(self->fd, self->ioas_id, UINT64_MAX,
					   1));
	EXPECT_EQ(0, unmap_iova(self->fd, self->ioas_id, top, PAGE_SIZE));
	EXPECT_EQ(0, unmap_iova(self->fd, ioas2, 0, UINT64_MAX));

	/* MAP_FILE */
	f = memfd_of(2 * PAGE_SIZE, 0);
	ASSERT_LE(0, f);
	EXPECT_ERRNO(EOVERFLOW, map_file(self->fd, self->ioas_id, f, top,
					 2 * PAGE_SIZE, &iova));
	EXPECT_ERRNO(EOVERFLOW, map_file(self->fd, self->ioas_id, f, 0,
					 UINT64_MAX, &iova));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, f, 0, 0,
				      &iova));
	iova = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW, _test_ioctl_ioas_map_file(
					self->fd, self->ioas_id, f, 0,
					PAGE_SIZE, &iova, fixed));
	close(f);

	/* IOVA_RANGES with a huge count: the one range is written. */
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &ranges_cmd));
	EXPECT_EQ(1, ranges_cmd.num_iovas);
	EXPECT_EQ(0, range.start);
	EXPECT_EQ(UINT64_MAX, range.last);
	munmap(buf, 2 * PAGE_SIZE);
}

/*
 * Unmap against accesses that keep the range pinned: each of 16 threads has
 * its own access and pins the range again as soon as its pin is gone (the
 * unmap tells the accesses to unpin one after the other, so some access has
 * pinned again by the time the unmap looks). Once the unmap has told the
 * accesses to unpin, new pins of the area fail (EINVAL, upstream's
 * prevent_access), so the unmap succeeds. Pins succeed, find nothing mapped
 * (ENOENT) or an area being unmapped (EINVAL); their items may be gone
 * already (ENOENT).
 */
#define REPIN_THREADS 16

struct repin {
	int fd;
	__u32 access_id;
	__u64 iova;
	volatile bool *stop;
	unsigned long pins, refused, bad;
	int bad_errno;
};

static void *repin_thread(void *arg)
{
	struct repin *r = arg;
	bool holding = false;
	__u32 item = 0;

	while (!*r->stop) {
		if (holding) {
			if (_test_cmd_destroy_access_pages(r->fd, r->access_id,
							   item) &&
			    errno != ENOENT) {
				r->bad_errno = errno;
				r->bad++;
			}
			holding = false;
		}
		if (!access_pin(r->fd, r->access_id, r->iova, 4 * PAGE_SIZE,
				&item)) {
			holding = true;
			r->pins++;
		} else if (errno == EINVAL || errno == ENOENT) {
			r->refused++;
		} else {
			r->bad_errno = errno;
			r->bad++;
		}
	}
	return NULL;
}

TEST_F(ioas_errno, unmap_vs_repin)
{
	unsigned long rounds = 0, unmap_fail = 0, pins = 0, refused = 0;
	struct repin r[REPIN_THREADS];
	pthread_t threads[REPIN_THREADS];
	__u64 iova = MOCK_APERTURE_START;
	volatile bool stop = false;
	struct timespec t0, t;
	int unmap_errno = 0;
	unsigned int i;
	void *buf;

	buf = mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	for (i = 0; i != REPIN_THREADS; i++) {
		r[i] = (struct repin){
			.fd = self->fd, .iova = iova, .stop = &stop
		};
		ASSERT_EQ(0, _test_cmd_create_access(
				     self->fd, self->ioas_id, &r[i].access_id,
				     MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));
	}
	for (i = 0; i != REPIN_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, repin_thread,
					    &r[i]));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ASSERT_EQ(0, map_user(self->fd, self->ioas_id, (uintptr_t)buf,
				      4 * PAGE_SIZE, iova,
				      RW | IOMMU_IOAS_MAP_FIXED_IOVA));
		/* Let the threads pin it. */
		usleep(1000);
		if (unmap_iova(self->fd, self->ioas_id, iova, 4 * PAGE_SIZE)) {
			unmap_errno = errno;
			unmap_fail++;
			break;
		}
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 4);
	stop = true;
	for (i = 0; i != REPIN_THREADS; i++) {
		pthread_join(threads[i], NULL);
		pins += r[i].pins;
		refused += r[i].refused;
		EXPECT_EQ(0, r[i].bad);
		if (r[i].bad)
			TH_LOG("a pin or unpin failed with errno %d",
			       r[i].bad_errno);
	}
	TH_LOG("%lu unmaps, %lu pins, %lu pins refused", rounds, pins,
	       refused);
	EXPECT_EQ(0, unmap_fail);
	if (unmap_fail)
		TH_LOG("unmap failed with errno %d (%s)", unmap_errno,
		       strerror(unmap_errno));
	EXPECT_NE(0, pins);
	/* What the threads still pin goes with their accesses. */
	for (i = 0; i != REPIN_THREADS; i++)
		close(r[i].access_id);
	unmap_iova(self->fd, self->ioas_id, 0, UINT64_MAX);
	munmap(buf, 4 * PAGE_SIZE);
}

/*
 * IOMMU_IOAS_CHANGE_PROCESS from a forked child and from the parent, over
 * and over, while threads of the parent pin and unpin parts of a memfd
 * mapped page by page (128 ranges), through an access, and a thread in each
 * process keeps its mmap lock busy. Pages are charged to the mm
 * (IOMMU_OPTION_RLIMIT_MODE = 1, without CAP_IPC_LOCK), so VmLck and VmPin of
 * both processes show the charge. Afterwards the process the memory was
 * moved to last is charged exactly for the pages pinned, the other for none,
 * and unpinning takes every charge away.
 */
#define CP_PAGES 128

struct cp_shared {
	volatile int stop;	/* parent -> child: stop changing */
	volatile int stopped;	/* child -> parent */
	volatile int read_now;	/* parent -> child: read your counters */
	volatile long lck, pin;	/* child -> parent */
	volatile int done;
	volatile unsigned long changes, failed;
	volatile int fail_errno;
};

/*
 * Keeps the mmap lock of the process busy (populating and unmapping 32 MiB
 * over and over), so that the charge of a change, which takes that lock,
 * waits: pins have all the more time to come in between.
 */
static void *mm_churn_thread(void *arg)
{
	volatile int *stop = arg;
	size_t len = 32 << 20;

	while (!*stop) {
		void *p = mmap(0, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1,
			       0);

		if (p != MAP_FAILED)
			munmap(p, len);
	}
	return NULL;
}

struct cp_pinner {
	int fd;
	__u32 access_id;
	__u64 iova;
	unsigned int seed;
	volatile bool *stop;
	unsigned long pins, bad;
	int bad_errno;
};

static void *cp_pin_thread(void *arg)
{
	struct cp_pinner *p = arg;

	while (!*p->stop) {
		unsigned int first = rand_r(&p->seed) % CP_PAGES;
		unsigned int n = 1 + rand_r(&p->seed) % 8;
		__u32 item;

		if (first + n > CP_PAGES)
			n = CP_PAGES - first;
		if (access_pin(p->fd, p->access_id,
			       p->iova + first * PAGE_SIZE, n * PAGE_SIZE,
			       &item)) {
			p->bad_errno = errno;
			p->bad++;
			continue;
		}
		p->pins++;
		if (_test_cmd_destroy_access_pages(p->fd, p->access_id, item)) {
			p->bad_errno = errno;
			p->bad++;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(ioas_errno, change_process_vs_pins, 120)
{
	struct iommu_option opt = {
		.size = sizeof(opt),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = IOMMU_OPTION_OP_SET,
		.val64 = 1,
	};
	long kb = PAGE_SIZE / 1024, lck0, pin0;
	struct cp_pinner pinners[2];
	volatile bool stop = false;
	struct cp_shared *sh;
	struct timespec t0, t;
	unsigned long changes = 0, failed = 0;
	__u32 access_id, item;
	int f, status;
	unsigned int i;
	__u64 iova;
	pid_t pid;

	/* The option is global to the file: set it before any object. */
	close(self->fd);
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_OPTION, &opt));
	test_ioctl_ioas_alloc(&self->ioas_id);
	ASSERT_EQ(0, drop_ipc_lock());

	sh = mmap(0, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	f = memfd_of(CP_PAGES * PAGE_SIZE, 0);
	ASSERT_LE(0, f);
	lck0 = vm_kb("VmLck");
	pin0 = vm_kb("VmPin");
	ASSERT_LE(0, lck0);
	ASSERT_LE(0, pin0);
	/*
	 * One mapping (one range of memory, moved on its own) per page, at
	 * consecutive IOVAs: the more ranges, the longer a change takes.
	 */
	iova = MOCK_APERTURE_START;
	for (i = 0; i != CP_PAGES; i++) {
		__u64 at = iova + i * PAGE_SIZE;

		ASSERT_EQ(0, _test_ioctl_ioas_map_file(
				     self->fd, self->ioas_id, f, i * PAGE_SIZE,
				     PAGE_SIZE, &at,
				     RW | IOMMU_IOAS_MAP_FIXED_IOVA));
	}
	ASSERT_EQ(0, _test_cmd_create_access(
			     self->fd, self->ioas_id, &access_id,
			     MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		long clck0 = vm_kb("VmLck"), cpin0 = vm_kb("VmPin");
		pthread_t churn;

		if (pthread_create(&churn, NULL, mm_churn_thread,
				   (void *)&sh->stop))
			_exit(2);
		while (!sh->stop) {
			if (change_process(self->fd)) {
				sh->fail_errno = errno;
				sh->failed++;
			}
			sh->changes++;
		}
		pthread_join(churn, NULL);
		sh->stopped = 1;
		while (!sh->read_now)
			usleep(1000);
		sh->lck = vm_kb("VmLck") - clck0;
		sh->pin = vm_kb("VmPin") - cpin0;
		sh->done = 1;
		/* Stay alive until the parent is done with the charges. */
		while (sh->read_now != 2)
			usleep(1000);
		_exit(0);
	}

	for (i = 0; i != ARRAY_SIZE(pinners); i++) {
		pinners[i] = (struct cp_pinner){
			.fd = self->fd,
			.access_id = access_id,
			.iova = iova,
			.seed = i + 1,
			.stop = &stop,
		};
	}
	{
		pthread_t threads[ARRAY_SIZE(pinners)], churn;
		volatile int churn_stop = 0;

		ASSERT_EQ(0, pthread_create(&churn, NULL, mm_churn_thread,
					    (void *)&churn_stop));
		for (i = 0; i != ARRAY_SIZE(pinners); i++)
			ASSERT_EQ(0, pthread_create(&threads[i], NULL,
						    cp_pin_thread,
						    &pinners[i]));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			if (change_process(self->fd))
				failed++;
			changes++;
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (t.tv_sec - t0.tv_sec < 4);
		stop = true;
		churn_stop = 1;
		for (i = 0; i != ARRAY_SIZE(pinners); i++)
			pthread_join(threads[i], NULL);
		pthread_join(churn, NULL);
	}
	sh->stop = 1;
	while (!sh->stopped)
		usleep(1000);
	TH_LOG("parent: %lu changes (%lu failed), child: %lu (%lu failed), pins %lu + %lu",
	       changes, failed, sh->changes, sh->failed, pinners[0].pins,
	       pinners[1].pins);
	if (sh->failed)
		TH_LOG("a change of the child failed with errno %d",
		       sh->fail_errno);
	for (i = 0; i != ARRAY_SIZE(pinners); i++)
		if (pinners[i].bad)
			TH_LOG("a pin or unpin failed with errno %d",
			       pinners[i].bad_errno);
	EXPECT_EQ(0, failed);
	EXPECT_EQ(0, sh->failed);
	EXPECT_EQ(0, pinners[0].bad);
	EXPECT_EQ(0, pinners[1].bad);

	/* Nothing pinned now; pin 16 pages and move the charge here. */
	ASSERT_EQ(0, access_pin(self->fd, access_id, iova, 16 * PAGE_SIZE,
				&item));
	ASSERT_EQ(0, change_process(self->fd));
	EXPECT_EQ(16 * kb, vm_kb("VmLck") - lck0);
	EXPECT_EQ(16 * kb, vm_kb("VmPin") - pin0);
	sh->read_now = 1;
	while (!sh->done)
		usleep(1000);
	EXPECT_EQ(0, sh->lck);
	EXPECT_EQ(0, sh->pin);

	/* Unpinned and unmapped: no charge left. */
	EXPECT_EQ(0, _test_cmd_destroy_access_pages(self->fd, access_id,
						    item));
	EXPECT_EQ(0, vm_kb("VmLck") - lck0);
	EXPECT_EQ(0, vm_kb("VmPin") - pin0);
	close(access_id);
	EXPECT_EQ(0, unmap_iova(self->fd, self->ioas_id, 0, UINT64_MAX));
	EXPECT_EQ(0, vm_kb("VmLck") - lck0);
	EXPECT_EQ(0, vm_kb("VmPin") - pin0);
	sh->read_now = 2;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(f);
	munmap(sh, sizeof(*sh));
}

TEST_HARNESS_MAIN
