/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's "edu" PCI device (1234:11e8) driven from user space through VFIO:
 * finding the devices in sysfs and binding them to vfio-pci, the iommufd and
 * VFIO cdev commands every edu test needs, BAR0 and config space set-up, the
 * device's DMA engine, and the byte checks that tell where a transfer landed.
 * Shared by the programs in tools/selftests that use edu; include it after
 * kselftest_harness.h (edu_enable() asserts).
 */
#ifndef IOMMUFD_RS_VFIO_EDU_H
#define IOMMUFD_RS_VFIO_EDU_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#ifndef __KSELFTEST_HARNESS_H
#error "include kselftest_harness.h before vfio_edu.h"
#endif

/* ioctl() must fail with exactly this errno. */
#define EXPECT_ERRNO(expected, cmd)                 \
	({                                          \
		errno = 0;                          \
		EXPECT_EQ(-1, cmd);                 \
		EXPECT_EQ(expected, errno);         \
	})

#define PCI_DEVICES		"/sys/bus/pci/devices"
#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8

/* BAR0 registers of the device (QEMU hw/misc/edu.c). */
#define EDU_IDENT		0x00
#define EDU_LIVENESS		0x04
#define EDU_IRQ_STATUS		0x24
#define EDU_IRQ_RAISE		0x60
#define EDU_IRQ_ACK		0x64
#define EDU_DMA_SRC		0x80
#define EDU_DMA_DST		0x88
#define EDU_DMA_COUNT		0x90
#define EDU_DMA_CMD		0x98

#define EDU_IDENT_VALUE		0x010000edu
#define EDU_CMD_RUN		0x1
#define EDU_CMD_TO_RAM		0x2	/* device buffer -> IOVA */
#define EDU_CMD_IRQ		0x4	/* raise EDU_IRQ_DMA when done */
#define EDU_IRQ_DMA		0x100
#define EDU_BUF			0x40000	/* its buffer, in its own space */
#define XFER			4096	/* the size of that buffer */

#define DMA_TIMEOUT		30.0	/* s; a transfer takes 100 ms */

/* --- sysfs: finding the device and binding it to vfio-pci -------------- */

static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static unsigned long sysfs_hex(const char *bdf, const char *attr)
{
	char path[PATH_MAX], val[32];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
	if (sysfs_read(path, val, sizeof(val)))
		return ~0UL;
	return strtoul(val, NULL, 0);
}

static void link_name(const char *bdf, const char *name, char *out,
		      size_t len);

/* The n-th edu device (from 0), in sysfs order. */
static bool find_edu_nth(int n, char *bdf, size_t len)
{
	DIR *dir = opendir(PCI_DEVICES);
	struct dirent *e;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (e = readdir(dir))) {
		if (e->d_name[0] == '.' ||
		    sysfs_hex(e->d_name, "vendor") != EDU_VENDOR ||
		    sysfs_hex(e->d_name, "device") != EDU_DEVICE)
			continue;
		if (n--)
			continue;
		snprintf(bdf, len, "%s", e->d_name);
		found = true;
	}
	closedir(dir);
	return found;
}

/* The number of devices in the IOMMU group of bdf. */
static int group_size(const char *bdf)
{
	char path[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group/devices", bdf);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* An edu device alone in its IOMMU group, else the first one. */
static bool find_edu(char *bdf, size_t len)
{
	for (int i = 0; find_edu_nth(i, bdf, len); i++)
		if (group_size(bdf) == 1)
			return true;
	return find_edu_nth(0, bdf, len);
}

/* Two edu devices of one IOMMU group. */
static bool find_edu_pair(char *a, char *b, size_t len)
{
	for (int i = 0; find_edu_nth(i, a, len); i++) {
		if (group_size(a) < 2)
			continue;
		for (int j = i + 1; find_edu_nth(j, b, len); j++) {
			char ga[NAME_MAX + 1], gb[NAME_MAX + 1];

			link_name(a, "iommu_group", ga, sizeof(ga));
			link_name(b, "iommu_group", gb, sizeof(gb));
			if (!strcmp(ga, gb))
				return true;
		}
	}
	return false;
}

/* The last component of the symlink PCI_DEVICES/bdf/name, or "". */
static void link_name(const char *bdf, const char *name, char *out,
		      size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	out[0] = '\0';
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	n = strlen(base) < len ? strlen(base) : len - 1;
	memcpy(out, base, n);
	out[n] = '\0';
}

static bool bound_to_vfio(const char *bdf)
{
	char drv[NAME_MAX + 1];

	link_name(bdf, "driver", drv, sizeof(drv));
	return !strcmp(drv, "vfio-pci");
}

/* The VM's init binds it already; do it here when run elsewhere. */
static int bind_vfio_pci(const char *bdf)
{
	char path[PATH_MAX];

	if (bound_to_vfio(bdf))
		return 0;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", bdf);
	if (sysfs_write(path, "vfio-pci"))
		return -1;
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdf);
	if (!access(path, F_OK))
		sysfs_write(path, bdf);
	sysfs_write("/sys/bus/pci/drivers_probe", bdf);
	return bound_to_vfio(bdf) ? 0 : -1;
}

/* /dev/vfio/devices/vfioN of the device. */
static int find_cdev(const char *bdf, char *out, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dir;
	int rc = -1;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "vfio", 4))
			continue;
		snprintf(out, len, "/dev/vfio/devices/%s", e->d_name);
		rc = 0;
		break;
	}
	closedir(dir);
	return rc;
}

static int iommu_group_of(const char *bdf)
{
	char name[NAME_MAX + 1];

	link_name(bdf, "iommu_group", name, sizeof(name));
	return name[0] ? atoi(name) : -1;
}

/* --- iommufd and VFIO commands ----------------------------------------- */

static int ioas_alloc(int fd, uint32_t *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_ioas_id;
	return rc;
}

static int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags,
		      uint32_t *id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
	};
	int rc = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_hwpt_id;
	return rc;
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

static int map_fixed(int fd, uint32_t ioas, uint64_t iova, void *buf,
		     size_t len)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)buf,
		.length = len,
		.iova = iova,
	};

	return ioctl(fd, IOMMU_IOAS_MAP, &cmd);
}

static int unmap_iova(int fd, uint32_t ioas, uint64_t iova, uint64_t len,
		      uint64_t *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};
	int rc = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);

	*unmapped = rc ? 0 : cmd.length;
	return rc;
}

static int get_hw_info(int fd, uint32_t dev_id, void *data, uint32_t len,
		       struct iommu_hw_info *out)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.data_len = len,
		.data_uptr = (uintptr_t)data,
	};
	int rc = ioctl(fd, IOMMU_GET_HW_INFO, &cmd);

	*out = cmd;
	return rc;
}

static int dev_bind(int devfd, int iommufd, uint32_t *devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	int rc = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);

	if (!rc)
		*devid = bind.out_devid;
	return rc;
}

/* On success *pt_id is the HWPT the device is attached to. */
static int dev_attach(int devfd, uint32_t *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = *pt_id,
	};
	int rc = ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);

	if (!rc)
		*pt_id = attach.pt_id;
	return rc;
}

static int dev_detach(int devfd)
{
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = sizeof(detach),
	};

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}

/* --- the device --------------------------------------------------------- */

/*
 * An opened edu device as the DMA helpers drive it: the VFIO device file and
 * where its BAR0 and config space are. Filled by edu_enable(); the BAR
 * mapping belongs to that file.
 */
struct edu_dev {
	int fd;
	volatile uint8_t *bar;	/* BAR0 mmap, or NULL: pread/pwrite */
	uint64_t bar_size;
	uint64_t bar_offset;
	uint64_t cfg_offset;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * BAR0 accesses of size 4 or 8 (the DMA registers take 8-byte accesses),
 * through the mmap or, without one, pread/pwrite. A failed read gives all
 * ones.
 */
static uint64_t bar_read(struct edu_dev *d, unsigned int reg, int size)
{
	volatile uint8_t *p = d->bar + reg;
	uint64_t val = 0;

	if (d->bar)
		return size == 8 ? *(volatile uint64_t *)p : *(volatile uint32_t *)p;
	if (pread(d->fd, &val, size, d->bar_offset + reg) != size)
		return ~0ULL;
	return val;
}

static void bar_write(struct edu_dev *d, unsigned int reg, int size,
		      uint64_t val)
{
	volatile uint8_t *p = d->bar + reg;
	uint32_t val32 = val;

	if (d->bar && size == 8)
		*(volatile uint64_t *)p = val;
	else if (d->bar)
		*(volatile uint32_t *)p = val32;
	else if (pwrite(d->fd, size == 8 ? (void *)&val : (void *)&val32,
			size, d->bar_offset + reg) != size)
		fprintf(stderr, "# BAR0 write at 0x%x failed\n", reg);
}

static uint32_t bar_r32(struct edu_dev *d, unsigned int reg)
{
	return bar_read(d, reg, 4);
}

static void bar_w32(struct edu_dev *d, unsigned int reg, uint32_t val)
{
	bar_write(d, reg, 4, val);
}

static uint64_t bar_r64(struct edu_dev *d, unsigned int reg)
{
	return bar_read(d, reg, 8);
}

static void bar_w64(struct edu_dev *d, unsigned int reg, uint64_t val)
{
	bar_write(d, reg, 8, val);
}

/* 0 once no transfer runs, -1 if one still does after DMA_TIMEOUT. */
static int wait_dma(struct edu_dev *d)
{
	double end = now() + DMA_TIMEOUT;

	while (bar_r64(d, EDU_DMA_CMD) & EDU_CMD_RUN) {
		if (now() > end)
			return -1;
		usleep(1000);
	}
	__sync_synchronize();
	return 0;
}

/*
 * One transfer of len bytes (at most XFER), waited for. The device ignores
 * writes to its DMA registers while a transfer runs, so wait for the
 * previous one first. A transfer the IOMMU refuses finishes all the same,
 * having moved nothing.
 */
static int edu_dma(struct edu_dev *d, uint64_t src, uint64_t dst,
		   uint64_t len, uint64_t cmd)
{
	if (wait_dma(d))
		return -1;
	bar_w64(d, EDU_DMA_SRC, src);
	bar_w64(d, EDU_DMA_DST, dst);
	bar_w64(d, EDU_DMA_COUNT, len);
	bar_w64(d, EDU_DMA_CMD, cmd | EDU_CMD_RUN);
	return wait_dma(d);
}

/* XFER bytes of RAM at iova -> the device's buffer. */
static int dma_in(struct edu_dev *d, uint64_t iova)
{
	return edu_dma(d, iova, EDU_BUF, XFER, 0);
}

/* The device's buffer -> XFER bytes of RAM at iova. */
static int dma_out(struct edu_dev *d, uint64_t iova, uint64_t flags)
{
	return edu_dma(d, EDU_BUF, iova, XFER, EDU_CMD_TO_RAM | flags);
}

/* --- checks ------------------------------------------------------------- */

/* A new pattern on each call, and another one in the next test process. */
static void fill_pattern(uint8_t *p, size_t len)
{
	static uint32_t count;
	uint32_t x = (++count * 2654435761U) ^ ((uint32_t)getpid() << 12);

	if (!x)
		x = 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = x >> 24;
	}
}

/* The first offset where a and b differ, -1 if none. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/* The first offset not holding val, -1 if none. */
static long first_not(const uint8_t *p, uint8_t val, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != val)
			return i;
	return -1;
}

/* The KiB of memory process @pid has pinned (VmPin), -1 if unknown. */
static long pid_vm_pin_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The KiB of memory this process has pinned (VmPin), -1 if unknown. */
static long vm_pin_kb(void)
{
	return pid_vm_pin_kb(getpid());
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The BAR mapping holds the device file: it goes before the file is closed. */
static void edu_unmap_bar(struct edu_dev *d)
{
	if (d->bar)
		munmap((void *)d->bar, d->bar_size);
	d->bar = NULL;
	d->fd = -1;
}

/*
 * Config space and BAR0 of the opened device, memory decoding and bus
 * mastering on (without them the device's DMA goes nowhere), the device
 * alive and idle. A BAR mapping of an earlier set-up goes first.
 */
static void edu_enable(struct __test_metadata *_metadata, struct edu_dev *d,
		       int devfd)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info cfg = {
		.argsz = sizeof(cfg),
		.index = VFIO_PCI_CONFIG_REGION_INDEX,
	};
	struct vfio_region_info bar = {
		.argsz = sizeof(bar),
		.index = VFIO_PCI_BAR0_REGION_INDEX,
	};
	const uint16_t on = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	uint16_t cmd;
	uint32_t ids;
	void *p;

	edu_unmap_bar(d);
	d->fd = devfd;
	ASSERT_EQ(0, ioctl(d->fd, VFIO_DEVICE_GET_INFO, &info));
	ASSERT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	ASSERT_LT(VFIO_PCI_CONFIG_REGION_INDEX, info.num_regions);

	ASSERT_EQ(0, ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &cfg));
	d->cfg_offset = cfg.offset;
	ASSERT_EQ(4, pread(d->fd, &ids, 4, cfg.offset + PCI_VENDOR_ID));
	ASSERT_EQ(EDU_VENDOR | EDU_DEVICE << 16, ids);

	ASSERT_EQ(0, ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &bar));
	ASSERT_LE(EDU_DMA_CMD + 8, bar.size);
	d->bar_offset = bar.offset;
	if (bar.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		p = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 d->fd, bar.offset);
		if (p != MAP_FAILED) {
			d->bar = p;
			d->bar_size = bar.size;
		}
	}
	if (!d->bar)
		TH_LOG("BAR0 is not mmapped, using pread/pwrite");

	ASSERT_EQ(2, pread(d->fd, &cmd, 2, cfg.offset + PCI_COMMAND));
	cmd |= on;
	ASSERT_EQ(2, pwrite(d->fd, &cmd, 2, cfg.offset + PCI_COMMAND));
	ASSERT_EQ(2, pread(d->fd, &cmd, 2, cfg.offset + PCI_COMMAND));
	ASSERT_EQ(on, cmd & on);

	ASSERT_EQ(EDU_IDENT_VALUE, bar_r32(d, EDU_IDENT));
	bar_w32(d, EDU_LIVENESS, 0x13572468);
	ASSERT_EQ(~0x13572468U, bar_r32(d, EDU_LIVENESS));
	/* No transfer or interrupt left over from an earlier test. */
	ASSERT_EQ(0, wait_dma(d));
	bar_w32(d, EDU_IRQ_ACK, ~0U);
	ASSERT_EQ(0, bar_r32(d, EDU_IRQ_STATUS));
}

/*
 * Longer than DEFAULT_RATELIMIT_INTERVAL (5 s): the window of the IOMMU
 * drivers' rate-limited fault and event logs (10 messages per 5 s).
 */
#define EVENT_LOG_WINDOW_S	6

/*
 * Kernel log records newer than kmsg_open(), from /dev/kmsg. A fault shows
 * as "DMAR: [DMA Write NO_PASID] ... fault addr ..." (intel-iommu), as
 * "arm-smmu-v3 ...: event 0x10 received:" (SMMUv3) or as "page fault from
 * EP 16 at 0x5f0000 [W]" (virtio-iommu).
 */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool fault_line(const char *s)
{
	return (strstr(s, "DMAR") && strstr(s, "fault")) ||
	       (strstr(s, "arm-smmu-v3") && strstr(s, "event")) ||
	       strstr(s, "fault from EP");
}

/* The records not read yet for which match() holds, logged. */
static int kmsg_matching(struct __test_metadata *_metadata, int fd,
			 bool (*match)(const char *))
{
	char rec[8192], *msg, *end;
	ssize_t len;
	int n = 0;

	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;	/* overwritten before we read them */
		if (len <= 0)
			return n;	/* EAGAIN: nothing more for now */
		rec[len] = '\0';
		/* "prio,seq,time,flags;text\n", then " KEY=value" lines */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		end = strchr(msg, '\n');
		if (end)
			*end = '\0';
		if (match(msg)) {
			TH_LOG("kernel: %s", msg);
			n++;
		}
	}
}

#endif /* IOMMUFD_RS_VFIO_EDU_H */
