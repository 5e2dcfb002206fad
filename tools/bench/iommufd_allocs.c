// SPDX-License-Identifier: GPL-2.0
/*
 * Allocations per ioctl, for the implementation loaded. Not a test and not
 * part of make bench; run by hand: scripts/dev.sh ARCH suites
 * names=iommufd_allocs impls=c,rust.
 *
 * The kernel's fail-nth counter of the calling thread goes down by one at
 * every fault-injection point it passes (each slab and page allocation with
 * failslab and fail_page_alloc), so arming it far away and reading it back
 * after one call gives the number of allocations that call made. That
 * number is what a fail-nth sweep steps through: a sweep over a sequence
 * of N allocations runs the sequence N times, so its cost grows with N
 * squared, which is what makes upstream's iommufd_fail_nth slow on the
 * debug kernel.
 *
 * The sequences are those of upstream's iommufd_fail_nth sweeps
 * map_two_domains and device, on the selftest mock; the second run of device
 * destroys its objects one by one before the close. Then both sweeps are run
 * and timed as upstream's harness runs them (see sweep()). Prints one line per
 * call: "allocs <name> <count> <ns>" (the call's time: guest instructions on the
 * debug VMs, which run with -icount), then the totals. Exits 4 (kselftest skip)
 * without fault injection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <time.h>

#include "iommu/iommufd_utils.h"
#include "fail_nth.h"

#define FAR	1000000u

static int nthfd;
static unsigned long total;
static long total_ns;
static long total_cpu;

static long clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/*
 * This thread's CPU time: what the call ran for itself. The difference to
 * the wall time is what it spent blocked or preempted (a wait for a worker,
 * a timer, a grace period), which under -icount sleep=off costs guest time
 * but no host time, so a profile does not show it.
 */
static long cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static unsigned int remaining(void)
{
	char buf[16] = "";

	if (pread(nthfd, buf, sizeof(buf) - 1, 0) < 0)
		return 0;
	return strtoul(buf, NULL, 10);
}

/*
 * Development: with "allocs_trace=<name>[,<name>...]" on the kernel command
 * line (spaces of a name as underscores), that call is run with its 1st, 2nd ...
 * allocation failing until it runs without a failure, each failure with the
 * fault-injection report (and its stack) in the kernel log. A failure the
 * call absorbs (it succeeds) is undone where the call has an undo; where it
 * has none the trace stops there, and that run is the one counted (its time
 * then is not measured).
 */
static char trace_name[250];

/*
 * Development: with "allocs_events=1" on the kernel command line, each call
 * also prints how many of the kernel's allocator and lock events it caused
 * (tracefs: kmem and, with lockdep, lock events of this process), so two
 * implementations can be compared by what they ask of the kernel and not only
 * by the allocations fail-nth counts. The sweeps are not run then. With
 * "allocs_events=names" each call's events are also counted by what they name
 * (the lock acquired, the allocator's call site), most frequent first.
 */
static bool events;
static bool event_sites;
/*
 * With "allocs_stacks=CALL" (spaces as '_'), the stacks of that call's
 * allocations and frees are also counted by function (inclusive), with the
 * number of stacks and of their frames, and their frames are printed as they
 * are ("# raw"). Not the stacks of its lock events: taking a stack takes RCU
 * read locks, which would trigger stacks again.
 */
static char stacks_name[100];
#define TRACEFS "/sys/kernel/tracing/"
static const char *const event_names[] = {
	"kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free",
	"mm_page_alloc", "mm_page_free", "lock_acquire",
};
#define N_EVENTS (sizeof(event_names) / sizeof(event_names[0]))
/* The first four events are the allocations and frees, whose stacks are taken. */
#define N_STACK_EVENTS 4

static void stacks_set(const char *val)
{
	char path[200];
	unsigned int i;

	for (i = 0; i < N_STACK_EVENTS; i++) {
		snprintf(path, sizeof(path), TRACEFS "events/kmem/%s/trigger",
			 event_names[i]);
		fail_nth_knob(path, val);
	}
}

static void trace_init(void)
{
	char line[4096], *p;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && (p = strstr(line, "allocs_trace=")))
		sscanf(p + strlen("allocs_trace="), "%249s", trace_name);
	if (strstr(line, "allocs_events=1"))
		events = true;
	if (strstr(line, "allocs_events=names"))
		events = event_sites = true;
	if ((p = strstr(line, "allocs_stacks="))) {
		sscanf(p + strlen("allocs_stacks="), "%99s", stacks_name);
		events = event_sites = true;
	}
	fclose(f);
	if (events) {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (access(TRACEFS "trace", F_OK) &&
		    mount("nodev", TRACEFS, "tracefs", 0, NULL))
			printf("# events: no tracefs (%s)\n", strerror(errno));
		fail_nth_knob(TRACEFS "buffer_size_kb", "65536");
		fail_nth_knob(TRACEFS "set_event_pid", pid);
		fail_nth_knob(TRACEFS "events/kmem/kmalloc/enable", "1");
		fail_nth_knob(TRACEFS "events/kmem/kfree/enable", "1");
		fail_nth_knob(TRACEFS "events/kmem/kmem_cache_alloc/enable", "1");
		fail_nth_knob(TRACEFS "events/kmem/kmem_cache_free/enable", "1");
		fail_nth_knob(TRACEFS "events/kmem/mm_page_alloc/enable", "1");
		fail_nth_knob(TRACEFS "events/kmem/mm_page_free/enable", "1");
		fail_nth_knob(TRACEFS "events/lock/lock_acquire/enable", "1");
	}
}

static bool stacks_of(const char *name);

/* Empties the trace buffer before the call `name`. */
static void events_clear(const char *name)
{
	if (!events)
		return;
	if (stacks_of(name))
		stacks_set("stacktrace");
	/* Opening the buffer for writing with O_TRUNC empties it. */
	close(open(TRACEFS "trace", O_WRONLY | O_TRUNC | O_CLOEXEC));
	fail_nth_knob(TRACEFS "tracing_on", "1");
}

/* One event kind at one lock or call site, and how often it came. */
struct event_site {
	char key[120];
	unsigned long n;
};
#define N_SITES 1024
static struct event_site sites[N_SITES];
static unsigned int n_sites;

/*
 * Counts an event by what it names: a lock_acquire line's lock (after the
 * lockdep map's address), an allocator line's call_site.
 */
static void event_site_add(const char *event, const char *what)
{
	unsigned int i;
	char key[120];

	snprintf(key, sizeof(key), "%s %s", event, what);
	for (i = 0; i < n_sites; i++) {
		if (!strcmp(sites[i].key, key)) {
			sites[i].n++;
			return;
		}
	}
	if (n_sites < N_SITES) {
		snprintf(sites[n_sites].key, sizeof(sites[n_sites].key), "%s",
			 key);
		sites[n_sites++].n = 1;
	}
}

static void event_site_count(const char *event, const char *line)
{
	char what[100] = "?";
	const char *p = strstr(line, "call_site=");

	if (p) {
		sscanf(p + strlen("call_site="), "%99s", what);
	} else if ((p = strstr(line, " lock_acquire: "))) {
		/* "lock_acquire: <map> [try ][read ]<name>" */
		p = strchr(p + strlen(" lock_acquire: "), ' ');
		if (p) {
			snprintf(what, sizeof(what), "%s", p + 1);
			what[strcspn(what, "\n")] = 0;
		}
	}
	event_site_add(event, what);
}

static int event_site_cmp(const void *a, const void *b)
{
	const struct event_site *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->key, y->key);
}

/* Whether the call `name` is the one of allocs_stacks=. */
static bool stacks_of(const char *name)
{
	unsigned int i;

	for (i = 0; name[i] && stacks_name[i]; i++)
		if ((name[i] == ' ' ? '_' : name[i]) != stacks_name[i])
			return false;
	return stacks_name[0] && !name[i] && !stacks_name[i];
}

/* Frames of allocs_stacks= printed as they are ("# raw"), at most 20000. */
static unsigned int raw_lines;

/* Counts a line of a stack trace; false for any other line. */
static bool stack_line(const char *line)
{
	char fn[100] = "?";

	if (strstr(line, "<stack trace>")) {
		event_site_add("frames", "stacks");
		return true;
	}
	if (line[0] != ' ' || !strstr(line, "=> "))
		return false;
	if (raw_lines < 20000) {
		printf("# raw %s", line);
		raw_lines++;
	}
	sscanf(strstr(line, "=> ") + 3, "%99[^+ \n]", fn);
	event_site_add("stack", fn);
	event_site_add("frames", "all");
	return true;
}

/* Prints the events of the call since events_clear(). */
static void events_print(const char *name)
{
	unsigned long n[N_EVENTS] = { 0 };
	char line[1024];
	unsigned int i;
	FILE *f;

	if (!events)
		return;
	/* Not the events of reading the buffer itself. */
	fail_nth_knob(TRACEFS "tracing_on", "0");
	if (stacks_of(name))
		stacks_set("!stacktrace");
	f = fopen(TRACEFS "trace", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || stack_line(line))
			continue;
		for (i = 0; i < N_EVENTS; i++) {
			char tag[40];

			snprintf(tag, sizeof(tag), " %s:", event_names[i]);
			if (strstr(line, tag)) {
				n[i]++;
				if (event_sites)
					event_site_count(event_names[i], line);
				break;
			}
		}
	}
	fclose(f);
	printf("# events %-28s", name);
	for (i = 0; i < N_EVENTS; i++)
		printf(" %s %lu", event_names[i], n[i]);
	printf("\n");
	if (!event_sites)
		return;
	qsort(sites, n_sites, sizeof(sites[0]), event_site_cmp);
	for (i = 0; i < n_sites; i++)
		printf("# site %-28s %6lu %s\n", name, sites[i].n, sites[i].key);
	n_sites = 0;
}

static bool traced(const char *name)
{
	char n[66], list[256];
	unsigned int i;

	n[0] = ',';
	for (i = 0; name[i] && i < sizeof(n) - 3; i++)
		n[i + 1] = name[i] == ' ' ? '_' : name[i];
	n[i + 1] = ',';
	n[i + 2] = 0;
	snprintf(list, sizeof(list), ",%s,", trace_name);
	return trace_name[0] && strstr(list, n);
}

static void trace_verbose(const char *val)
{
	/* Every report, not a rate-limited few. */
	fail_nth_knob("/sys/kernel/debug/failslab/verbose_ratelimit_interval_ms", "0");
	fail_nth_knob("/sys/kernel/debug/fail_page_alloc/verbose_ratelimit_interval_ms", "0");
	fail_nth_knob("/sys/kernel/debug/failslab/verbose", val);
	fail_nth_knob("/sys/kernel/debug/fail_page_alloc/verbose", val);
}

static void trace_arm(unsigned int k)
{
	trace_verbose("2");
	fail_nth_arm(nthfd, k);
}

static bool trace_disarm(void)
{
	bool hit = fail_nth_disarm(nthfd);

	trace_verbose("0");
	return hit;
}

/* The kernel log (with the traced failures' reports), as comments. */
static void trace_dump(void)
{
	char rec[8192];
	ssize_t n;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd < 0)
		return;
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *msg;

		if (n <= 0)
			continue;
		rec[n] = 0;
		msg = strchr(rec, ';');
		printf("# kmsg %s", msg ? msg + 1 : rec);
	}
	close(fd);
}

/* Runs CALL with the counter armed; prints its allocations. */
#define COUNT(name, call) COUNT_UNDO(name, call, -1)

/*
 * UNDO (0 on success, -1 where there is none) takes back what CALL did, so
 * that a traced call that succeeded with a failure injected (absorbed) can
 * be run again from the same state, for the next allocation.
 */
#define COUNT_UNDO(name, call, undo)                                        \
	do {                                                                \
		unsigned int left, k;                                       \
		bool traced_run = traced(name);                             \
		long ns, cpu;                                               \
		int rc;                                                     \
                                                                            \
		/* Traced: the call fails at its 1st, 2nd ... allocation */ \
		/* until it runs without one failing, as in a fail-nth */   \
		/* sweep (the last run is the one counted). */              \
		for (k = 1; traced_run; k++) {                              \
			bool hit;                                           \
                                                                            \
			trace_arm(k);                                       \
			rc = (call);                                        \
			hit = trace_disarm();                               \
			if (!hit)                                           \
				break;                                      \
			if (rc) {                                           \
				printf("# trace %s: allocation %u: %s\n",  \
				       name, k, strerror(errno));           \
				continue;                                   \
			}                                                   \
			printf("# trace %s: allocation %u: absorbed\n",     \
			       name, k);                                    \
			if ((undo)) {                                       \
				traced_run = false;                         \
				break;                                      \
			}                                                   \
		}                                                           \
		events_clear(name);                                         \
		fail_nth_arm(nthfd, FAR);                                   \
		cpu = cpu_ns();                                             \
		ns = now_ns();                                              \
		rc = traced_run ? 0 : (call);                               \
		ns = now_ns() - ns;                                         \
		cpu = cpu_ns() - cpu;                                       \
		left = remaining();                                         \
		fail_nth_disarm(nthfd);                                     \
		events_print(name);                                         \
		if (traced_run)                                             \
			left = FAR - (k - 1);                               \
		if (rc) {                                                   \
			printf("# %s failed: %d (%s)\n", name, rc,          \
			       strerror(errno));                            \
			exit(1);                                            \
		}                                                           \
		printf("allocs %-28s %6u %10ld ns %10ld cpu\n", name,     \
		       FAR - left, ns, cpu);                                \
		total += FAR - left;                                        \
		total_ns += ns;                                             \
		total_cpu += cpu;                                           \
	} while (0)

/*
 * Each sequence is written once and run two ways. Counted (sweep_nth < 0):
 * every step through COUNT, the close counted at the end. Swept (as
 * upstream's harness runs it, see sweep()): the steps run plainly, the body
 * ends at its first failure, the sweep's allocation (sweep_nth, none for 0)
 * is armed at the enable point, and the teardown does the close.
 */
static int sweep_nth = -1;

/* What the harness's fixture holds, for its teardown. */
static struct {
	int fd;
	__u32 stdev_id;
	__u32 pasid;
} fx;

/* Set for the counted run of device that destroys its objects one by one. */
static bool destroy_each;

#define STEP_UNDO(name, call, undo)                                         \
	do {                                                                \
		if (sweep_nth >= 0) {                                       \
			if ((call))                                         \
				return -1;                                  \
		} else {                                            \
			COUNT_UNDO(name, call, undo);                       \
		}                                                           \
	} while (0)
#define STEP(name, call) STEP_UNDO(name, call, -1)

static void begin(void)
{
	total = 0;
	total_ns = 0;
	total_cpu = 0;
	fx.fd = -1;
	fx.stdev_id = 0;
	fx.pasid = 0;
}

/* Upstream's fail_nth_enable(): failures start here. */
static void enable(void)
{
	if (sweep_nth > 0)
		fail_nth_arm(nthfd, sweep_nth);
}

/* The end of a counted run: the close and the totals. */
static int finish(const char *name)
{
	if (sweep_nth >= 0)
		return 0;
	COUNT("close", close(fx.fd));
	fx.fd = -1;
	printf("allocs %-28s %6lu %10ld ns %10ld cpu\n", name, total, total_ns,
	       total_cpu);
	return 0;
}

static int open_iommu(int *fd)
{
	*fd = open("/dev/iommu", O_RDWR);
	return *fd < 0 ? -1 : 0;
}

static int map_two_domains(void)
{
	__u32 stdev_id = 0, stdev_id2 = 0, hwpt_id, hwpt_id2, ioas_id = 0;
	__u64 iova;
	int fd;

	begin();
	STEP("open", open_iommu(&fx.fd));
	fd = fx.fd;
	STEP("ioas_alloc", _test_ioctl_ioas_alloc(fd, &ioas_id));
	STEP("set_temp_memory_limit", _test_ioctl_set_temp_memory_limit(fd, 32));
	STEP("mock_domain", _test_cmd_mock_domain(fd, ioas_id, &stdev_id, &hwpt_id, NULL));
	enable();
	STEP("mock_domain (2nd)", _test_cmd_mock_domain(fd, ioas_id, &stdev_id2, &hwpt_id2, NULL));
	STEP("ioas_map 256K", _test_ioctl_ioas_map(fd, ioas_id, buffer, 262144, &iova,
						   IOMMU_IOAS_MAP_WRITEABLE |
						   IOMMU_IOAS_MAP_READABLE));
	STEP("destroy stdev", _test_ioctl_destroy(fd, stdev_id));
	STEP("destroy stdev (2nd)", _test_ioctl_destroy(fd, stdev_id2));
	STEP("mock_domain (mapped)", _test_cmd_mock_domain(fd, ioas_id, &stdev_id, &hwpt_id, NULL));
	STEP("mock_domain (mapped, 2nd)", _test_cmd_mock_domain(fd, ioas_id, &stdev_id2, &hwpt_id2, NULL));
	return finish("total map_two_domains");
}

static int device(void)
{
	struct iommu_hwpt_selftest data = {
		.iotlb = IOMMU_TEST_IOTLB_DEFAULT,
	};
	__u32 ioas_id = 0, ioas_id2 = 0, stdev_id = 0, idev_id = 0, hwpt_id = 0;
	__u32 parent_id = 0, viommu_id = 0, vdev_id = 0, hw_queue_id = 0, fault_id = 0;
	__u32 fault_fd = -1, fault_hwpt_id = 0, veventq_id = 0, veventq_fd = -1;
	__u32 test_hwpt_id = 0;
	struct iommu_test_hw_info info;
	__u64 iova = MOCK_APERTURE_START;
	int fd;

	begin();
	STEP("open", open_iommu(&fx.fd));
	fd = fx.fd;
	STEP_UNDO("ioas_alloc", _test_ioctl_ioas_alloc(fd, &ioas_id),
		  _test_ioctl_destroy(fd, ioas_id));
	STEP("ioas_alloc (2nd)", _test_ioctl_ioas_alloc(fd, &ioas_id2));
	STEP("ioas_map 4K", _test_ioctl_ioas_map(fd, ioas_id, buffer, PAGE_SIZE, &iova,
						 IOMMU_IOAS_MAP_FIXED_IOVA |
						 IOMMU_IOAS_MAP_WRITEABLE |
						 IOMMU_IOAS_MAP_READABLE));
	STEP("ioas_map 4K (2nd)", _test_ioctl_ioas_map(fd, ioas_id2, buffer, PAGE_SIZE, &iova,
						       IOMMU_IOAS_MAP_FIXED_IOVA |
						       IOMMU_IOAS_MAP_WRITEABLE |
						       IOMMU_IOAS_MAP_READABLE));
	enable();
	STEP_UNDO("mock_domain pasid",
		  _test_cmd_mock_domain_flags(fd, ioas_id, MOCK_FLAGS_DEVICE_PASID, &stdev_id,
					      NULL, &idev_id),
		  _test_ioctl_destroy(fd, stdev_id));
	fx.stdev_id = stdev_id;
	STEP("get_hw_info", _test_cmd_get_hw_info(fd, idev_id, IOMMU_HW_INFO_TYPE_DEFAULT,
						  &info, sizeof(info), NULL, NULL));
	STEP_UNDO("hwpt_alloc pasid",
		  _test_cmd_hwpt_alloc(fd, idev_id, ioas_id, 0, IOMMU_HWPT_ALLOC_PASID, &hwpt_id,
				       IOMMU_HWPT_DATA_NONE, 0, 0),
		  _test_ioctl_destroy(fd, hwpt_id));
	STEP_UNDO("replace to ioas2", _test_cmd_mock_domain_replace(fd, stdev_id, ioas_id2, NULL),
		  _test_cmd_mock_domain_replace(fd, stdev_id, ioas_id, NULL));
	STEP("replace to hwpt", _test_cmd_mock_domain_replace(fd, stdev_id, hwpt_id, NULL));
	STEP_UNDO("hwpt_alloc nest parent",
		  _test_cmd_hwpt_alloc(fd, idev_id, ioas_id, 0,
				       IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID,
				       &parent_id, IOMMU_HWPT_DATA_NONE, 0, 0),
		  _test_ioctl_destroy(fd, parent_id));
	STEP("viommu_alloc", _test_cmd_viommu_alloc(fd, idev_id, parent_id, 0,
						    IOMMU_VIOMMU_TYPE_SELFTEST, NULL, 0,
						    &viommu_id));
	STEP("vdevice_alloc", _test_cmd_vdevice_alloc(fd, viommu_id, idev_id, 0, &vdev_id));
	STEP("hw_queue_alloc", _test_cmd_hw_queue_alloc(fd, viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST,
							0, iova, PAGE_SIZE, &hw_queue_id));
	STEP("fault_alloc", _test_ioctl_fault_alloc(fd, &fault_id, &fault_fd));
	STEP("close fault fd", close(fault_fd));
	STEP("hwpt_alloc nested+fault", _test_cmd_hwpt_alloc(fd, idev_id, parent_id, fault_id,
							     IOMMU_HWPT_FAULT_ID_VALID,
							     &fault_hwpt_id,
							     IOMMU_HWPT_DATA_SELFTEST, &data,
							     sizeof(data)));
	STEP_UNDO("veventq_alloc",
		  _test_cmd_veventq_alloc(fd, viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 2,
					  &veventq_id, &veventq_fd),
		  close(veventq_fd) || _test_ioctl_destroy(fd, veventq_id));
	STEP("close veventq fd", close(veventq_fd));
	STEP("hwpt_alloc pasid (2nd)", _test_cmd_hwpt_alloc(fd, idev_id, ioas_id, 0,
							    IOMMU_HWPT_ALLOC_PASID, &test_hwpt_id,
							    IOMMU_HWPT_DATA_NONE, 0, 0));
	STEP("pasid_attach", _test_cmd_pasid_attach(fd, stdev_id, 200, parent_id));
	fx.pasid = 200;
	STEP("pasid_replace", _test_cmd_pasid_replace(fd, stdev_id, 200, test_hwpt_id));
	STEP("pasid_detach", _test_cmd_pasid_detach(fd, stdev_id, 200));
	fx.pasid = 0;
	if (destroy_each && sweep_nth < 0) {
		/* What the close does, one object at a time. */
		const struct {
			const char *name;
			__u32 id;
		} order[] = {
			{ "destroy veventq", veventq_id },
			{ "destroy nested+fault", fault_hwpt_id },
			{ "destroy fault", fault_id },
			{ "destroy hw_queue", hw_queue_id },
			{ "destroy vdevice", vdev_id },
			{ "destroy viommu", viommu_id },
			{ "destroy nest parent", parent_id },
			{ "destroy hwpt pasid (2nd)", test_hwpt_id },
			{ "destroy stdev", stdev_id },
			{ "destroy hwpt pasid", hwpt_id },
			{ "destroy ioas2", ioas_id2 },
			{ "destroy ioas", ioas_id },
		};

		for (unsigned int i = 0; i < sizeof(order) / sizeof(order[0]); i++)
			COUNT(order[i].name, _test_ioctl_destroy(fd, order[i].id));
	}
	return finish(destroy_each ? "total device (destroy each)" : "total device");
}

/*
 * The fail-nth sweeps themselves, as upstream's harness runs them: the body
 * once without a failure, then with its 1st, 2nd ... allocation after the
 * enable point failing, until one runs with none failing; each run is
 * followed by the harness's teardown (a PASID left attached is detached,
 * close, then IOMMU_TEST_OP_MD_CHECK_REFS of the buffer on a new file).
 * Prints the runs and their time, which the harness's 30 s limit applies to
 * (guest time: instructions under -icount).
 */
static int teardown(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
		.check_refs = { .length = BUFFER_SIZE, .uptr = (uintptr_t)buffer },
	};
	int rc;

	if (fd < 0)
		return 0;
	if (fx.pasid && fx.stdev_id)
		_test_cmd_pasid_detach(fd, fx.stdev_id, fx.pasid);
	close(fd);
	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		return -1;
	rc = ioctl(fd, _IOMMU_TEST_CMD(IOMMU_TEST_OP_MD_CHECK_REFS), &cmd);
	close(fd);
	return rc;
}

static void sweep(const char *name, int (*body)(void))
{
	long t0 = now_ns(), c0 = cpu_ns();
	unsigned int nth;

	for (nth = 0; nth < 5000; nth++) {
		bool hit;

		sweep_nth = nth;
		body();
		hit = nth ? fail_nth_disarm(nthfd) : true;
		if (teardown(fx.fd)) {
			printf("# sweep %s: MD_CHECK_REFS failed after run %u: %s\n", name, nth,
			       strerror(errno));
			exit(1);
		}
		if (!hit)
			break;
	}
	sweep_nth = -1;
	printf("sweep %-26s %6u runs %10ld ns %10ld cpu\n", name, nth + 1, now_ns() - t0,
	       cpu_ns() - c0);
}

/* Where a module's code is, for scripts/profile.py. */
static void print_text(const char *mod)
{
	char path[128], addr[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/%s/sections/.text", mod);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(addr, sizeof(addr), f))
		printf("# text %s %s", mod, addr);
	fclose(f);
}

int main(void)
{
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
	(void)mfd;
	(void)mfd_buffer;
	BUFFER_SIZE = 2 * 1024 * 1024;
	buffer = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (buffer == MAP_FAILED)
		return 1;
	memset(buffer, 0, BUFFER_SIZE);
	nthfd = fail_nth_open();
	if (nthfd < 0) {
		printf("# SKIP: no fault injection (failslab, fail_page_alloc, fail-nth)\n");
		return 4;
	}
	trace_init();
	print_text("iommufd_rs");
	print_text("iommufd");
	map_two_domains();
	device();
	destroy_each = true;
	device();
	destroy_each = false;
	begin();
	COUNT("teardown (MD_CHECK_REFS 2M)", teardown(open("/dev/iommu", O_RDWR)));
	if (!trace_name[0] && !events) {
		sweep("map_two_domains", map_two_domains);
		sweep("device", device);
	}
	if (trace_name[0])
		trace_dump();
	return 0;
}
