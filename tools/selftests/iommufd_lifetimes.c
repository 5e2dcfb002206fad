// SPDX-License-Identifier: GPL-2.0
/*
 * Object lifetimes under concurrency: objects destroyed (IOMMU_DESTROY, the
 * release of an access fd, a file closed) while other threads are inside
 * ioctls that use them. Every call must succeed or fail with the errno of
 * that race, nothing may stay pinned afterwards, and the kernel log must stay
 * clean (the Rust module warns if an access is notified of an unmap after it
 * was destroyed). Built with the kselftest harness and helpers of the
 * pristine kernel tree; runs against both implementations.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "iommu/iommufd_utils.h"

#define RUN_SECONDS	3
#define MAX_ID		48
#define NTHREADS	3
#define AREA		(16 * 4096UL)
/* IOVAs inside the mock domains' aperture. */
#define IOVA(n)		(MOCK_APERTURE_START + (n) * 0x100000UL)

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The errno of one ioctl, 0 on success. */
static int call(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? errno : 0;
}

struct shared {
	atomic_int fd;
	atomic_bool stop;
	atomic_bool closing;	/* files are closed under the workers: EBADF is fine */
	atomic_uint ioas;	/* the IOAS the workers use (re-made when destroyed) */
	atomic_int access_fd;	/* -1 while none */
	void *buf;
	/* The first unexpected result: which call, and its errno. */
	pthread_mutex_t lock;
	char bad[128];
	atomic_uint calls;
};

static void bad(struct shared *s, const char *what, int err)
{
	pthread_mutex_lock(&s->lock);
	if (!s->bad[0])
		snprintf(s->bad, sizeof(s->bad), "%s: errno %d (%s)", what, err,
			 strerror(err));
	pthread_mutex_unlock(&s->lock);
}

/* Records err unless it is 0 or one of the allowed errnos (0-terminated). */
static void expect(struct shared *s, const char *what, int err, const int *ok)
{
	atomic_fetch_add(&s->calls, 1);
	if (!err || (err == EBADF && atomic_load(&s->closing)))
		return;
	for (; *ok; ok++)
		if (err == *ok)
			return;
	bad(s, what, err);
}

static const int ok_gone[] = { ENOENT, 0 };
/* Two unmaps of one area race: C refuses the second with EBUSY. */
static const int ok_unmap[] = { ENOENT, EBUSY, 0 };
static const int ok_busy[] = { ENOENT, EBUSY, 0 };
static const int ok_map[] = { ENOENT, EEXIST, 0 };
static const int ok_ranges[] = { ENOENT, EMSGSIZE, 0 };
/* The id may name a HWPT of another device by now. */
static const int ok_attach[] = { ENOENT, EINVAL, 0 };

/* One worker: ioctls on the current IOAS and on whatever ids exist. */
static void *worker(void *arg)
{
	struct shared *s = arg;
	unsigned int seed = (uintptr_t)pthread_self();

	while (!atomic_load(&s->stop)) {
		__u32 ioas = atomic_load(&s->ioas);
		__u32 id = 1 + rand_r(&seed) % MAX_ID;
		int fd = atomic_load(&s->fd);

		switch (rand_r(&seed) % 8) {
		case 0: {
			struct iommu_ioas_map map = {
				.size = sizeof(map),
				.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
					 IOMMU_IOAS_MAP_READABLE |
					 IOMMU_IOAS_MAP_WRITEABLE,
				.ioas_id = ioas,
				.user_va = (uintptr_t)s->buf,
				.length = AREA,
				.iova = IOVA(rand_r(&seed) % 8),
			};
			expect(s, "IOAS_MAP", call(fd, IOMMU_IOAS_MAP, &map),
			       ok_map);
			break;
		}
		case 1: {
			struct iommu_ioas_unmap unmap = {
				.size = sizeof(unmap),
				.ioas_id = ioas,
				.iova = 0,
				.length = UINT64_MAX,
			};
			expect(s, "IOAS_UNMAP",
			       call(fd, IOMMU_IOAS_UNMAP, &unmap), ok_unmap);
			break;
		}
		case 2: {
			struct iommu_iova_range ranges[4];
			struct iommu_ioas_iova_ranges r = {
				.size = sizeof(r),
				.ioas_id = ioas,
				.num_iovas = 4,
				.allowed_iovas = (uintptr_t)ranges,
			};
			expect(s, "IOAS_IOVA_RANGES",
			       call(fd, IOMMU_IOAS_IOVA_RANGES, &r),
			       ok_ranges);
			break;
		}
		case 3: {
			__u32 stdev, hwpt, idev;

			int err = _test_cmd_mock_domain(fd, ioas, &stdev, &hwpt,
							&idev) ? errno : 0;

			expect(s, "MOCK_DOMAIN", err, ok_attach);
			/* Others may use it meanwhile; most go again at once. */
			if (!err && rand_r(&seed) % 4)
				expect(s, "DESTROY stdev",
				       _test_ioctl_destroy(fd, stdev) ? errno : 0,
				       ok_busy);
			break;
		}
		case 4: {
			/* Any id: a device answers, anything else is ENOENT. */
			struct iommu_hw_info info = {
				.size = sizeof(info),
				.dev_id = id,
			};
			expect(s, "GET_HW_INFO",
			       call(fd, IOMMU_GET_HW_INFO, &info), ok_gone);
			break;
		}
		case 5: {
			struct iommu_hwpt_alloc alloc = {
				.size = sizeof(alloc),
				.dev_id = id,
				.pt_id = ioas,
			};
			int err = call(fd, IOMMU_HWPT_ALLOC, &alloc);

			expect(s, "HWPT_ALLOC", err, ok_gone);
			if (!err)
				expect(s, "DESTROY hwpt",
				       _test_ioctl_destroy(fd, alloc.out_hwpt_id) ?
					       errno : 0,
				       ok_busy);
			break;
		}
		default:
			expect(s, "DESTROY",
			       _test_ioctl_destroy(fd, id) ? errno : 0,
			       ok_busy);
			break;
		}
		/*
		 * The C iommufd lets new ioctls take an object while the
		 * unbind of a mock device waits for those in flight; without
		 * gaps its destroys can wait as long as the workers run.
		 */
		usleep(20);
	}
	return NULL;
}

static long vm_pin_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

FIXTURE(lifetimes)
{
	struct shared s;
	pthread_t th[NTHREADS + 2];
	int nth;
};

FIXTURE_SETUP(lifetimes)
{
	/* The helpers' globals: the page size, no memfd buffer. */
	PAGE_SIZE = sysconf(_SC_PAGESIZE);
	mfd = -1;
	mfd_buffer = NULL;
	memset(&self->s, 0, sizeof(self->s));
	pthread_mutex_init(&self->s.lock, NULL);
	self->s.fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->s.fd);
	self->s.access_fd = -1;
	self->s.buf = mmap(NULL, AREA, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->s.buf);
	memset(self->s.buf, 1, AREA);
}

FIXTURE_TEARDOWN(lifetimes)
{
	if (self->s.fd >= 0)
		close(self->s.fd);
	munmap(self->s.buf, AREA);
}

static void start(struct __test_metadata *_metadata,
		  FIXTURE_DATA(lifetimes) *self, void *(*fn)(void *), int n)
{
	for (int i = 0; i < n; i++)
		ASSERT_EQ(0, pthread_create(&self->th[self->nth++], NULL, fn,
					    &self->s));
}

static void stop(FIXTURE_DATA(lifetimes) *self)
{
	atomic_store(&self->s.stop, true);
	for (int i = 0; i < self->nth; i++)
		pthread_join(self->th[i], NULL);
	self->nth = 0;
}

/*
 * IOMMU_DESTROY of any object, by id, while other threads map, unmap, create
 * mock devices, ask a device for its hardware info and allocate HWPTs for it.
 * The main thread keeps destroying the IOAS (EBUSY while a HWPT or device
 * uses it) and making a new one.
 */
TEST_F_TIMEOUT(lifetimes, destroy_while_used, 60)
{
	double end;
	__u32 ioas;

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, &ioas));
	atomic_store(&self->s.ioas, ioas);
	start(_metadata, self, worker, NTHREADS);
	for (end = seconds() + RUN_SECONDS; seconds() < end;) {
		int err = _test_ioctl_destroy(self->s.fd, ioas) ? errno : 0;

		expect(&self->s, "DESTROY ioas", err, ok_busy);
		if (!err || err == ENOENT) {
			ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, &ioas));
			atomic_store(&self->s.ioas, ioas);
		}
		usleep(1000);
	}
	stop(self);
	EXPECT_EQ(0, self->s.bad[0]) TH_LOG("%s", self->s.bad);
	TH_LOG("%u calls", atomic_load(&self->s.calls));
	ASSERT_EQ(0, close(self->s.fd));
	self->s.fd = -1;
	EXPECT_EQ(0, vm_pin_kb());
}

/* Closing the file while the workers are inside ioctls on it. */
TEST_F_TIMEOUT(lifetimes, close_while_used, 60)
{
	atomic_store(&self->s.closing, true);
	for (int round = 0; round < 20; round++) {
		__u32 ioas;

		ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, &ioas));
		atomic_store(&self->s.ioas, ioas);
		atomic_store(&self->s.stop, false);
		start(_metadata, self, worker, NTHREADS);
		usleep(20000);
		/*
		 * A dup keeps the file number valid for the workers: the
		 * file is released only when the last of them returns.
		 */
		int old = self->s.fd;

		self->s.fd = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, self->s.fd);
		ASSERT_EQ(0, close(old));
		stop(self);
	}
	EXPECT_EQ(0, self->s.bad[0]) TH_LOG("%s", self->s.bad);
	ASSERT_EQ(0, close(self->s.fd));
	self->s.fd = -1;
	EXPECT_EQ(0, vm_pin_kb());
}

/* IOMMU_GET_HW_INFO of dev_id into page: held inside its copy while page faults. */
struct held_copy {
	int fd;
	__u32 dev_id;
	void *page;
	int err;
};

static void *hw_info_into_page(void *arg)
{
	struct held_copy *h = arg;
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = h->dev_id,
		.data_len = sizeof(struct iommu_test_hw_info),
		.data_uptr = (uintptr_t)h->page,
	};

	h->err = call(h->fd, IOMMU_GET_HW_INFO, &info);
	return NULL;
}

struct timed_destroy {
	int fd;
	__u32 id;
	int err;
	double end;
};

static void *destroy_timed(void *arg)
{
	struct timed_destroy *d = arg;

	d->err = _test_ioctl_destroy(d->fd, d->id) ? errno : 0;
	d->end = seconds();
	return NULL;
}

/*
 * The unbind of a device waits for the ioctls that hold it, and must go on
 * as soon as the last of them returns. One thread's IOMMU_GET_HW_INFO is held
 * inside its copy to user space (a userfaultfd page that faults until the
 * test resolves it) while another thread destroys the mock device; the
 * destroy must end within seconds of the copy being let go. (The C iommufd
 * of 7.3.4 without kernel/patches/0006 ends it only on its 60 s timeout: the
 * waiter sleeps uninterruptibly and the wake-up was for interruptible ones.)
 */
TEST_F_TIMEOUT(lifetimes, unbind_waits_only_for_users, 120)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_zeropage zero = {};
	struct held_copy h = { .fd = self->s.fd };
	struct timed_destroy d = { .fd = self->s.fd };
	struct iommu_hw_info info = { .size = sizeof(info) };
	struct pollfd pfd = { .events = POLLIN };
	pthread_t reader, destroyer;
	__u32 ioas, stdev, hwpt;
	struct uffd_msg msg;
	double released;
	long late_ms;
	int uffd;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
	if (uffd < 0)
		SKIP(return, "no userfaultfd in this kernel: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	h.page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, h.page);
	reg.range.start = (uintptr_t)h.page;
	reg.range.len = PAGE_SIZE;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, &ioas));
	ASSERT_EQ(0, _test_cmd_mock_domain(self->s.fd, ioas, &stdev, &hwpt,
					   &h.dev_id));
	ASSERT_EQ(0, pthread_create(&reader, NULL, hw_info_into_page, &h));
	/* Once its copy has faulted, the reader holds the device. */
	pfd.fd = uffd;
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);

	d.id = stdev;
	ASSERT_EQ(0, pthread_create(&destroyer, NULL, destroy_timed, &d));
	/* Time for the destroy to reach the device and wait for the reader. */
	usleep(300000);
	released = seconds();
	zero.range = reg.range;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zero));
	ASSERT_EQ(0, pthread_join(reader, NULL));
	ASSERT_EQ(0, pthread_join(destroyer, NULL));

	EXPECT_EQ(0, h.err);
	EXPECT_EQ(0, d.err);
	late_ms = d.end > released ? (long)((d.end - released) * 1000) : 0;
	TH_LOG("the destroy ended %ld ms after the copy was let go", late_ms);
	EXPECT_GT(5000, late_ms);
	/* The device is gone, the IOAS is free again. */
	info.dev_id = h.dev_id;
	EXPECT_EQ(ENOENT, call(self->s.fd, IOMMU_GET_HW_INFO, &info));
	EXPECT_EQ(0, _test_ioctl_destroy(self->s.fd, ioas));
	munmap(h.page, PAGE_SIZE);
	close(uffd);
}

static const int ok_pin[] = { ENOENT, EBADF, EBADFD, EINVAL, 0 };

/* Pins through whatever access fd exists, and unpins again. */
static void *pinner(void *arg)
{
	struct shared *s = arg;

	while (!atomic_load(&s->stop)) {
		int afd = atomic_load(&s->access_fd);
		struct iommu_test_cmd cmd = {
			.size = sizeof(cmd),
			.op = IOMMU_TEST_OP_ACCESS_PAGES,
			.id = afd,
			.access_pages = {
				.iova = IOVA(0),
				.length = AREA,
			},
		};
		int err;

		if (afd < 0) {
			usleep(100);
			continue;
		}
		err = call(s->fd, IOMMU_TEST_CMD, &cmd);
		expect(s, "ACCESS_PAGES", err, ok_pin);
		if (!err)
			expect(s, "DESTROY_ACCESS_PAGES",
			       _test_cmd_destroy_access_pages(
				       s->fd, afd,
				       cmd.access_pages.out_access_pages_id) ?
				       errno : 0,
			       ok_pin);
	}
	return NULL;
}

/* Unmaps the pinned range (which notifies the access) and maps it again. */
static void *remapper(void *arg)
{
	struct shared *s = arg;
	__u32 ioas = atomic_load(&s->ioas);

	while (!atomic_load(&s->stop)) {
		struct iommu_ioas_unmap unmap = {
			.size = sizeof(unmap),
			.ioas_id = ioas,
			.iova = IOVA(0),
			.length = AREA,
		};
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
				 IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = ioas,
			.user_va = (uintptr_t)s->buf,
			.length = AREA,
			.iova = IOVA(0),
		};

		expect(s, "IOAS_UNMAP", call(s->fd, IOMMU_IOAS_UNMAP, &unmap),
		       ok_gone);
		expect(s, "IOAS_MAP", call(s->fd, IOMMU_IOAS_MAP, &map),
		       ok_map);
		/*
		 * Each unmap notifies the access. The C iommufd lets new
		 * notifications take the access while its destroy waits for
		 * those in flight, so without a gap the destroy can wait as
		 * long as the unmaps go on.
		 */
		usleep(200);
	}
	return NULL;
}

/*
 * Access fds created and closed (the access destroyed) while one thread pins
 * through them and another unmaps what they pinned, so destroys race with
 * unmap notifications.
 */
TEST_F_TIMEOUT(lifetimes, access_destroy_while_notified, 120)
{
	struct iommu_test_cmd create = {
		.size = sizeof(create),
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.create_access = {
			.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
		},
	};
	unsigned int rounds = 0;
	double end;
	__u32 ioas;

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, &ioas));
	atomic_store(&self->s.ioas, ioas);
	create.id = ioas;
	start(_metadata, self, pinner, 1);
	start(_metadata, self, remapper, 1);
	for (end = seconds() + RUN_SECONDS; seconds() < end; rounds++) {
		int afd;

		ASSERT_EQ(0, call(self->s.fd, IOMMU_TEST_CMD, &create));
		afd = create.create_access.out_access_fd;
		atomic_store(&self->s.access_fd, afd);
		usleep(500);
		atomic_store(&self->s.access_fd, -1);
		ASSERT_EQ(0, close(afd));
	}
	stop(self);
	EXPECT_EQ(0, self->s.bad[0]) TH_LOG("%s", self->s.bad);
	TH_LOG("%u accesses, %u calls", rounds, atomic_load(&self->s.calls));
	ASSERT_EQ(0, close(self->s.fd));
	self->s.fd = -1;
	EXPECT_EQ(0, vm_pin_kb());
}

/* The module's reference count: every file it handed out holds one. */
static long module_refcnt(void)
{
	const char *paths[] = { "/sys/module/iommufd_rs/refcnt",
				"/sys/module/iommufd/refcnt" };
	long n = -1;

	for (unsigned int i = 0; i < 2 && n < 0; i++) {
		FILE *f = fopen(paths[i], "r");

		if (!f)
			continue;
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/*
 * Every file around one context: the iommufd, a memfd and a dma-buf it maps
 * (through a mock domain, so the memfd's pages are pinned), and an access fd
 * (which holds the context) with pages pinned through it. Closed in each of
 * the 24 orders, nothing may remain: no pinned page, no module reference.
 */
TEST_F_TIMEOUT(lifetimes, close_orders, 120)
{
	int perm[4] = { 0, 1, 2, 3 };
	long base;

	close(self->s.fd);
	self->s.fd = -1;
	base = module_refcnt();
	ASSERT_LE(0, base);
	for (int n = 0; n < 24; n++) {
		struct iommu_test_cmd pin = {
			.size = sizeof(pin),
			.op = IOMMU_TEST_OP_ACCESS_PAGES,
			.access_pages = { .iova = IOVA(0), .length = AREA },
		};
		__u32 ioas, stdev, hwpt, idev, afd;
		__u64 iova_mem = IOVA(0), iova_buf = IOVA(4);
		int fds[4], used[4] = { 0 }, k = n;

		/* The n-th permutation of the four files (factorial digits). */
		for (int i = 0; i < 4; i++) {
			int d = k % (4 - i), j;

			k /= 4 - i;
			for (j = 0;; j++)
				if (!used[j] && d-- == 0)
					break;
			used[j] = 1;
			perm[i] = j;
		}

		fds[0] = open("/dev/iommu", O_RDWR);
		ASSERT_LE(0, fds[0]);
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fds[0], &ioas));
		ASSERT_EQ(0, _test_cmd_mock_domain(fds[0], ioas, &stdev, &hwpt,
						   &idev));
		fds[1] = memfd_create("lifetimes", 0);
		ASSERT_LE(0, fds[1]);
		ASSERT_EQ(0, ftruncate(fds[1], AREA));
		ASSERT_EQ(0, _test_ioctl_ioas_map_file(
				     fds[0], ioas, fds[1], 0, AREA, &iova_mem,
				     IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE |
					     IOMMU_IOAS_MAP_WRITEABLE));
		ASSERT_EQ(0, _test_cmd_get_dmabuf(fds[0], AREA, &fds[2]));
		ASSERT_EQ(0, _test_ioctl_ioas_map_file(
				     fds[0], ioas, fds[2], 0, AREA, &iova_buf,
				     IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE |
					     IOMMU_IOAS_MAP_WRITEABLE));
		ASSERT_EQ(0, _test_cmd_create_access(
				     fds[0], ioas, &afd,
				     MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));
		fds[3] = afd;
		pin.id = afd;
		ASSERT_EQ(0, ioctl(fds[0], IOMMU_TEST_CMD, &pin));
		EXPECT_LT(0, vm_pin_kb());

		for (int i = 0; i < 4; i++)
			ASSERT_EQ(0, close(fds[perm[i]]));
		EXPECT_EQ(0, vm_pin_kb())
			TH_LOG("order %d%d%d%d: pages still pinned", perm[0],
			       perm[1], perm[2], perm[3]);
		EXPECT_EQ(base, module_refcnt())
			TH_LOG("order %d%d%d%d: files of the module remain",
			       perm[0], perm[1], perm[2], perm[3]);
	}
}

TEST_HARNESS_MAIN
