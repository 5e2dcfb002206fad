/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocation-failure injection for selftests: the nth allocation of the
 * calling thread fails, through the kernel's fail-nth file with failslab and
 * fail_page_alloc (CONFIG_FAULT_INJECTION_DEBUG_FS).
 */
#ifndef IOMMUFD_RS_FAIL_NTH_H
#define IOMMUFD_RS_FAIL_NTH_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail_nth_knob(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/*
 * Fault injection for the calling thread (/proc/self/task/TID/fail-nth with
 * failslab and fail_page_alloc, as upstream's iommufd_fail_nth drives it):
 * every allocation may fail, and no fault attribute (the C iommufd has its
 * own, fail_iommufd) logs the failures with a stack.
 */
static int fail_nth_open(void)
{
	static const char *const knobs[][2] = {
		{ "failslab/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-highmem", "N" },
	};
	char path[NAME_MAX + 64];
	struct dirent *d;
	unsigned int i;
	DIR *dir;

	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/%s",
			 knobs[i][0]);
		if (fail_nth_knob(path, knobs[i][1]))
			return -1;
	}
	dir = opendir("/sys/kernel/debug");
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, "fail", 4)) {
			snprintf(path, sizeof(path),
				 "/sys/kernel/debug/%s/verbose", d->d_name);
			fail_nth_knob(path, "0");
		}
	closedir(dir);
	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	return open(path, O_RDWR | O_CLOEXEC);
}

/* Arms the nth allocation of this thread to fail. */
static void fail_nth_arm(int fd, unsigned int nth)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u", nth);

	if (pwrite(fd, buf, n, 0) != n)
		abort();
}

/* Disarms; true if the armed failure was injected. */
static bool fail_nth_disarm(int fd)
{
	char buf[16] = "";
	bool hit;

	if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
		buf[0] = '1';
	hit = buf[0] == '0';
	while (pwrite(fd, "0", 1, 0) != 1 && errno == EFAULT)
		;
	return hit;
}

#endif /* IOMMUFD_RS_FAIL_NTH_H */
