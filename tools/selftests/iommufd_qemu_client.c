// SPDX-License-Identifier: GPL-2.0
/*
 * A real QEMU as the client of /dev/iommu (issue 15, stage 1).
 *
 * QEMU 11 (Debian's binaries, unpacked with their libraries under
 * /opt/qemu11 by scripts/qemu11.sh and scripts/vm.sh) runs inside the test
 * VM as a VMM: "-object iommufd" opens /dev/iommu, "-device vfio-pci" assigns
 * one of the VM's edu devices through its VFIO cdev, and QEMU maps the second
 * level guest's RAM into an IOAS. No guest OS runs: the vCPU idles in a halt
 * loop (our own -bios image) with the virtual clock running, and this program
 * drives the machine over the qtest protocol on QEMU's stdin/stdout. It
 * programs the edu's BAR0 and command register through PCI configuration
 * space, writes a pattern into L2 RAM, has the edu DMA it from one L2 address
 * into its buffer and back out to another, and reads L2 RAM back. The bytes
 * can only arrive through the translation QEMU set up on /dev/iommu: the
 * device emits L2 guest physical addresses, which the VM's IOMMU translates
 * through the IOAS into QEMU's memory.
 *
 * QEMU11_ROOT overrides /opt/qemu11. Without the root the tests skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vfio_edu.h"

#if defined(__x86_64__)
#define QEMU_BIN	"usr/bin/qemu-system-x86_64"
#define QEMU_LD		"usr/lib64/ld-linux-x86-64.so.2"
#define QEMU_LIBDIR	"usr/lib/x86_64-linux-gnu"
#define QEMU_MACHINE	"q35"
#define QEMU_CPU	"qemu64"
/* Where the L2 machine's firmware puts nothing: our own addresses. */
#define L2_BAR0		0xfe000000ULL
#define L2_RAM		0x0ULL
/* The assigned device's slot on bus 0 (q35 has 00.0 and 1f.x of its own). */
#define L2_SLOT		4
#elif defined(__aarch64__)
#define QEMU_BIN	"usr/bin/qemu-system-aarch64"
#define QEMU_LD		"usr/lib/ld-linux-aarch64.so.1"
#define QEMU_LIBDIR	"usr/lib/aarch64-linux-gnu"
/* highmem=off: the ECAM is the low one, at 0x3f000000. */
#define QEMU_MACHINE	"virt,highmem=off"
/* virt's default CPU is the 32-bit cortex-a15: the halt loop is A64. */
#define QEMU_CPU	"cortex-a57"
#define L2_BAR0		0x10000000ULL
#define L2_RAM		0x40000000ULL
#define L2_ECAM		0x3f000000ULL	/* virt's low ECAM (highmem=off) */
#define L2_SLOT		1
#else
#error "x86_64 or arm64"
#endif

#define L2_MEM		"64M"
#define BIOS_SIZE	0x10000
/* L2 guest physical addresses of the three regions the test looks at. */
#define L2_SRC		(L2_RAM + 0x100000)
#define L2_DST		(L2_RAM + 0x200000)
#define L2_UNTOUCHED	(L2_RAM + 0x300000)
#define MARK_DST	0x5a
#define MARK_UNTOUCHED	0xa5

#define REPLY_TIMEOUT	60000	/* ms for one qtest reply (QEMU's start) */
#define QEMU_DMA_TIMEOUT 30.0	/* s, for an edu transfer seen through qtest */

struct qemu {
	pid_t pid;
	int in;		/* QEMU's stdin: qtest commands */
	int out;	/* QEMU's stdout: qtest replies */
	char rbuf[4 * XFER];	/* what was read from out and not used yet */
	size_t rlen;
	char errlog[64];	/* QEMU's stderr */
	char qmp[64];		/* its QMP socket */
	char line[2 * XFER + 64];
};

static const char *qemu_root(void)
{
	const char *r = getenv("QEMU11_ROOT");

	return r && *r ? r : "/opt/qemu11";
}

static bool qemu_present(char *why, size_t len)
{
	char path[300];

	snprintf(path, sizeof(path), "%.256s/%s", qemu_root(), QEMU_BIN);
	if (access(path, X_OK)) {
		snprintf(why, len, "no QEMU 11 root: %s is missing (scripts/qemu11.sh; vm.sh packs it for job=qemu and job=check)",
			 path);
		return false;
	}
	return true;
}

/* The halt loop the vCPU runs so that the virtual clock goes on. */
static int write_bios(const char *path)
{
#if defined(__x86_64__)
	/* cli; hlt; jmp back to the hlt: everywhere, so the reset vector too. */
	static const uint8_t insn[4] = { 0xfa, 0xf4, 0xeb, 0xfd };
#else
	/* wfi; b back to the wfi (little endian 0xd503207f, 0x17ffffff). */
	static const uint8_t insn[8] = { 0x7f, 0x20, 0x03, 0xd5,
					 0xff, 0xff, 0xff, 0x17 };
#endif
	static uint8_t img[BIOS_SIZE];
	int fd;
	bool ok;

	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = insn[i % sizeof(insn)];
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ok = write(fd, img, sizeof(img)) == sizeof(img);
	close(fd);
	return ok ? 0 : -1;
}

/* The last lines of QEMU's stderr, as TAP comments. */
static void qemu_show_stderr(struct qemu *q)
{
	FILE *f = fopen(q->errlog, "re");
	char buf[512];

	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f))
		printf("# qemu: %s%s", buf, strchr(buf, '\n') ? "" : "\n");
	fclose(f);
}

/* Makes (or with make false removes) the FIFOs <path>.in and <path>.out. */
static int qmp_fifos(const char *path, bool make)
{
	static const char *const ext[] = { ".in", ".out" };
	char p[96];

	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		unlink(p);
		if (make && mkfifo(p, 0600))
			return -1;
	}
	return 0;
}

static int qemu_start(struct qemu *q, const char *bdf, const char *tag)
{
	char root[256], ld[PATH_MAX], libdir[PATH_MAX], bin[PATH_MAX];
	char bios[64], dev[128], qmparg[96], datadir[PATH_MAX];
	int to[2], from[2], err;

	memset(q, 0, sizeof(*q));
	q->pid = -1;
	q->in = -1;
	q->out = -1;
	snprintf(root, sizeof(root), "%.255s", qemu_root());
	snprintf(ld, sizeof(ld), "%s/%s", root, QEMU_LD);
	snprintf(libdir, sizeof(libdir), "%s/%s", root, QEMU_LIBDIR);
	snprintf(bin, sizeof(bin), "%s/%s", root, QEMU_BIN);
	/* Started through the loader, QEMU cannot find its data files itself. */
	snprintf(datadir, sizeof(datadir), "%s/usr/share/qemu", root);
	snprintf(bios, sizeof(bios), "/tmp/qemu-client-bios.bin");
	snprintf(q->errlog, sizeof(q->errlog), "/tmp/qemu-client-%s.err", tag);
	snprintf(q->qmp, sizeof(q->qmp), "/tmp/qemu-client-%s.qmp", tag);
	snprintf(dev, sizeof(dev), "vfio-pci,host=%s,iommufd=fd0,addr=%x.0",
		 bdf, L2_SLOT);
	/*
	 * QMP on a pair of FIFOs (QEMU's "pipe" chardev opens <path>.in and
	 * <path>.out): the VMs' kernels have no AF_UNIX.
	 */
	snprintf(qmparg, sizeof(qmparg), "pipe:%s", q->qmp);
	if (qmp_fifos(q->qmp, true))
		return -1;
	if (write_bios(bios))
		return -1;
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -1;
	err = open(q->errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (err < 0)
		return -1;

	q->pid = fork();
	if (q->pid < 0)
		return -1;
	if (!q->pid) {
		char *argv[] = {
			ld, "--library-path", libdir, bin, "-L", datadir,
			"-machine", QEMU_MACHINE, "-cpu", QEMU_CPU, "-m", L2_MEM,
			"-accel", "tcg", "-nographic", "-nodefaults",
			"-bios", bios,
			"-qtest", "stdio", "-qtest-log", "/dev/null",
			"-qmp", qmparg,
			"-object", "iommufd,id=fd0",
			"-device", dev,
			NULL,
		};

		dup2(to[0], 0);
		dup2(from[1], 1);
		dup2(err, 2);
		execv(ld, argv);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	close(err);
	q->in = to[1];
	q->out = from[0];
	return 0;
}

/* One qtest command and its reply; 0 and the reply's value on "OK". */
static int qtest(struct qemu *q, uint64_t *val, const char *fmt, ...)
{
	struct pollfd pfd = { .fd = q->out, .events = POLLIN };
	char cmd[2 * XFER + 64];
	va_list ap;
	size_t len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(cmd) - 1)
		return -1;
	cmd[n++] = '\n';
	if (write(q->in, cmd, n) != n)
		return -1;
	for (;;) {
		char *nl = memchr(q->rbuf, '\n', q->rlen);
		ssize_t r;

		if (!nl) {
			if (q->rlen == sizeof(q->rbuf) ||
			    poll(&pfd, 1, REPLY_TIMEOUT) != 1) {
				snprintf(q->line, sizeof(q->line),
					 "(no reply within %d ms)", REPLY_TIMEOUT);
				return -1;
			}
			r = read(q->out, q->rbuf + q->rlen,
				 sizeof(q->rbuf) - q->rlen);
			if (r <= 0) {
				snprintf(q->line, sizeof(q->line),
					 "(QEMU closed its qtest stream)");
				return -1;
			}
			q->rlen += r;
			continue;
		}
		len = nl - q->rbuf;
		if (len >= sizeof(q->line))
			len = sizeof(q->line) - 1;
		memcpy(q->line, q->rbuf, len);
		q->line[len] = '\0';
		q->rlen -= nl + 1 - q->rbuf;
		memmove(q->rbuf, nl + 1, q->rlen);
		while (len && q->line[len - 1] == '\r')
			q->line[--len] = '\0';
		/* Asynchronous notifications (IRQ ...) are not replies. */
		if (!strncmp(q->line, "IRQ", 3))
			continue;
		break;
	}
	if (strncmp(q->line, "OK", 2))
		return -1;
	if (val)
		*val = len > 3 ? strtoull(q->line + 3, NULL, 0) : 0;
	return 0;
}

/* Terminates QEMU (sig) and waits for it; the wait status. */
static int qemu_stop(struct qemu *q, int sig)
{
	int status = -1;

	if (q->in >= 0)
		close(q->in);
	q->in = -1;
	if (q->pid > 0) {
		kill(q->pid, sig);
		if (waitpid(q->pid, &status, 0) != q->pid)
			status = -1;
	}
	q->pid = -1;
	if (q->out >= 0)
		close(q->out);
	q->out = -1;
	qmp_fifos(q->qmp, false);
	return status;
}

/* --- the L2 machine through qtest --------------------------------------- */

#if defined(__x86_64__)
static int cfg_write32(struct qemu *q, unsigned int reg, uint32_t val)
{
	uint32_t addr = 0x80000000U | L2_SLOT << 11 | (reg & 0xfc);

	if (qtest(q, NULL, "outl 0xcf8 0x%x", addr))
		return -1;
	return qtest(q, NULL, "outl 0xcfc 0x%x", val);
}

static int cfg_read32(struct qemu *q, unsigned int reg, uint32_t *val)
{
	uint32_t addr = 0x80000000U | L2_SLOT << 11 | (reg & 0xfc);
	uint64_t v;

	if (qtest(q, NULL, "outl 0xcf8 0x%x", addr) ||
	    qtest(q, &v, "inl 0xcfc"))
		return -1;
	*val = v;
	return 0;
}
#else
static int cfg_write32(struct qemu *q, unsigned int reg, uint32_t val)
{
	return qtest(q, NULL, "writel 0x%llx 0x%x",
		     L2_ECAM + (L2_SLOT << 15) + (reg & 0xffc), val);
}

static int cfg_read32(struct qemu *q, unsigned int reg, uint32_t *val)
{
	uint64_t v;

	if (qtest(q, &v, "readl 0x%llx",
		  L2_ECAM + (L2_SLOT << 15) + (reg & 0xffc)))
		return -1;
	*val = v;
	return 0;
}
#endif

/* Writes len bytes at an L2 guest physical address. */
static int l2_write(struct qemu *q, uint64_t gpa, const uint8_t *buf,
		    size_t len)
{
	char hex[2 * XFER + 1];

	if (len > XFER)
		return -1;
	for (size_t i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", buf[i]);
	return qtest(q, NULL, "write 0x%llx 0x%zx 0x%s",
		     (unsigned long long)gpa, len, hex);
}

static int l2_read(struct qemu *q, uint64_t gpa, uint8_t *buf, size_t len)
{
	const char *p;

	if (len > XFER || qtest(q, NULL, "read 0x%llx 0x%zx",
				(unsigned long long)gpa, len))
		return -1;
	p = q->line + 3;
	if (strncmp(p, "0x", 2) || strlen(p + 2) != 2 * len)
		return -1;
	p += 2;
	for (size_t i = 0; i < len; i++) {
		unsigned int b;

		if (sscanf(p + 2 * i, "%2x", &b) != 1)
			return -1;
		buf[i] = b;
	}
	return 0;
}

static int l2_fill(struct qemu *q, uint64_t gpa, uint8_t val, size_t len)
{
	uint8_t buf[XFER];

	memset(buf, val, sizeof(buf));
	return l2_write(q, gpa, buf, len);
}

/* The assigned edu as L2 sees it: BAR0 placed, memory and bus master on. */
static void l2_edu_enable(struct __test_metadata *_metadata, struct qemu *q)
{
	uint32_t ids = 0, cmd = 0, bar = 0;
	uint64_t v = 0;

	ASSERT_EQ(0, cfg_read32(q, PCI_VENDOR_ID, &ids))
		TH_LOG("qtest: %s", q->line);
	ASSERT_EQ(EDU_VENDOR | EDU_DEVICE << 16, ids)
		TH_LOG("L2 slot %d holds %08x, not the edu", L2_SLOT, ids);
	ASSERT_EQ(0, cfg_write32(q, PCI_BASE_ADDRESS_0, (uint32_t)L2_BAR0));
	ASSERT_EQ(0, cfg_read32(q, PCI_BASE_ADDRESS_0, &bar));
	ASSERT_EQ((uint32_t)L2_BAR0, bar & PCI_BASE_ADDRESS_MEM_MASK);
	ASSERT_EQ(0, cfg_write32(q, PCI_COMMAND,
				 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	ASSERT_EQ(0, cfg_read32(q, PCI_COMMAND, &cmd));
	ASSERT_EQ(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
		  cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	ASSERT_EQ(0, qtest(q, &v, "readl 0x%llx", L2_BAR0 + EDU_IDENT));
	ASSERT_EQ(EDU_IDENT_VALUE, v) TH_LOG("edu ident through L2's BAR0");
	ASSERT_EQ(0, qtest(q, NULL, "writel 0x%llx 0x13572468",
			   L2_BAR0 + EDU_LIVENESS));
	ASSERT_EQ(0, qtest(q, &v, "readl 0x%llx", L2_BAR0 + EDU_LIVENESS));
	ASSERT_EQ(~0x13572468U, (uint32_t)v);
}

/* One edu transfer started through L2's BAR0; waits when wait is set. */
static int l2_dma(struct qemu *q, uint64_t src, uint64_t dst, uint64_t cmd,
		  bool wait)
{
	double end = now() + QEMU_DMA_TIMEOUT;
	uint64_t v;

	if (qtest(q, NULL, "writeq 0x%llx 0x%llx", L2_BAR0 + EDU_DMA_SRC,
		  (unsigned long long)src) ||
	    qtest(q, NULL, "writeq 0x%llx 0x%llx", L2_BAR0 + EDU_DMA_DST,
		  (unsigned long long)dst) ||
	    qtest(q, NULL, "writeq 0x%llx 0x%x", L2_BAR0 + EDU_DMA_COUNT,
		  XFER) ||
	    qtest(q, NULL, "writeq 0x%llx 0x%llx", L2_BAR0 + EDU_DMA_CMD,
		  (unsigned long long)(cmd | EDU_CMD_RUN)))
		return -1;
	while (wait) {
		if (qtest(q, &v, "readq 0x%llx", L2_BAR0 + EDU_DMA_CMD))
			return -1;
		if (!(v & EDU_CMD_RUN))
			break;
		if (now() > end)
			return -1;
		usleep(5000);
	}
	return 0;
}

/*
 * The whole round trip: a pattern at L2_SRC goes into the edu's buffer and
 * out to L2_DST; L2_UNTOUCHED keeps its mark.
 */
static void l2_dma_roundtrip(struct __test_metadata *_metadata,
			     struct qemu *q)
{
	static uint8_t pat[XFER], got[XFER];
	double t0;
	long off;

	fill_pattern(pat, sizeof(pat));
	ASSERT_EQ(0, l2_write(q, L2_SRC, pat, XFER)) TH_LOG("qtest: %s", q->line);
	ASSERT_EQ(0, l2_fill(q, L2_DST, MARK_DST, XFER));
	ASSERT_EQ(0, l2_fill(q, L2_UNTOUCHED, MARK_UNTOUCHED, XFER));
	/* The pattern is in L2 RAM as written. */
	ASSERT_EQ(0, l2_read(q, L2_SRC, got, XFER));
	ASSERT_EQ(-1, first_diff(pat, got, XFER));

	t0 = now();
	ASSERT_EQ(0, l2_dma(q, L2_SRC, EDU_BUF, 0, true))
		TH_LOG("RAM -> edu: %s", q->line);
	ASSERT_EQ(0, l2_dma(q, EDU_BUF, L2_DST, EDU_CMD_TO_RAM, true))
		TH_LOG("edu -> RAM: %s", q->line);
	printf("# two edu transfers through QEMU's IOAS took %.0f ms\n",
	       (now() - t0) * 1000);

	ASSERT_EQ(0, l2_read(q, L2_DST, got, XFER));
	off = first_diff(pat, got, XFER);
	ASSERT_EQ(-1, off)
		TH_LOG("L2 0x%llx differs at +%ld: 0x%02x, not 0x%02x (mark 0x%02x)",
		       (unsigned long long)L2_DST, off, got[off], pat[off],
		       MARK_DST);
	ASSERT_EQ(0, l2_read(q, L2_UNTOUCHED, got, XFER));
	ASSERT_EQ(-1, first_not(got, MARK_UNTOUCHED, XFER))
		TH_LOG("the untouched L2 region changed");
}

/* --- QMP, for system_reset ------------------------------------------------ */

/* Reads until a line holding want arrives (events come in between). */
static int qmp_expect(int fd, const char *want, char *buf, size_t len)
{
	size_t n = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t r;

		if (poll(&pfd, 1, REPLY_TIMEOUT) != 1)
			return -1;
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			return -1;
		n += r;
		buf[n] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			if (strstr(buf, want))
				return 0;
			if (strstr(buf, "\"error\""))
				return -1;
			n -= nl + 1 - buf;
			memmove(buf, nl + 1, n + 1);
		}
		if (n == len - 1)
			return -1;
	}
}

static int qmp_command(const char *path, const char *cmd, char *buf,
		       size_t len)
{
	char req[256], p[96];
	int in, out, rc = -1, n;

	snprintf(p, sizeof(p), "%s.in", path);
	in = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s.out", path);
	out = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0 || out < 0) {
		snprintf(buf, len, "cannot open the QMP FIFOs %s.{in,out}: %s",
			 path, strerror(errno));
		goto out;
	}
	/* One request at a time, each answered before the next. */
	n = snprintf(req, sizeof(req), "{\"execute\":\"qmp_capabilities\"}\n");
	if (qmp_expect(out, "\"QMP\"", buf, len) || write(in, req, n) != n ||
	    qmp_expect(out, "\"return\"", buf, len))
		goto out;
	n = snprintf(req, sizeof(req), "{\"execute\":\"%s\"}\n", cmd);
	if (write(in, req, n) == n &&
	    qmp_expect(out, "\"return\"", buf, len) == 0)
		rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* --- which ioctls QEMU issued (the Rust module's debugfs iommufd_rs/ioctls) --- */

#define IOCTLS_VIEW	"/sys/kernel/debug/iommufd_rs/ioctls"
#define MAX_IOCTLS	32

struct ioctl_counts {
	int n;
	struct {
		char name[32];
		long calls, failed;
	} e[MAX_IOCTLS];
};

/* false without the view (the C iommufd has none). */
static bool ioctls_read(struct ioctl_counts *c)
{
	FILE *f = fopen(IOCTLS_VIEW, "re");

	c->n = 0;
	if (!f)
		return false;
	while (c->n < MAX_IOCTLS &&
	       fscanf(f, "%31s %ld %ld", c->e[c->n].name, &c->e[c->n].calls,
		      &c->e[c->n].failed) == 3)
		c->n++;
	fclose(f);
	return true;
}

/* The ioctls issued between two readings, as TAP comments. */
static void ioctls_print(const struct ioctl_counts *a,
			 const struct ioctl_counts *b)
{
	printf("# ioctls on /dev/iommu during the QEMU run (debugfs %s): command calls failed\n",
	       IOCTLS_VIEW);
	for (int i = 0; i < b->n; i++) {
		long calls = b->e[i].calls, failed = b->e[i].failed;

		for (int j = 0; j < a->n; j++) {
			if (strcmp(a->e[j].name, b->e[i].name))
				continue;
			calls -= a->e[j].calls;
			failed -= a->e[j].failed;
		}
		if (calls)
			printf("#   IOMMU_%s %ld %ld\n", b->e[i].name, calls,
			       failed);
	}
}

/* --- the tests --------------------------------------------------------------- */

FIXTURE(qemu)
{
	char bdf[NAME_MAX + 1];
	char cdev[PATH_MAX];
	struct qemu q;
};

FIXTURE_SETUP(qemu)
{
	char why[512];

	self->q.pid = -1;
	self->q.in = -1;
	self->q.out = -1;
	if (!qemu_present(why, sizeof(why)))
		SKIP(return, "%s", why);
	if (!find_edu(self->bdf, sizeof(self->bdf)))
		SKIP(return, "no edu PCI device (%04x:%04x)", EDU_VENDOR,
		     EDU_DEVICE);
	ASSERT_EQ(0, bind_vfio_pci(self->bdf))
		TH_LOG("%s cannot be bound to vfio-pci", self->bdf);
	ASSERT_EQ(0, find_cdev(self->bdf, self->cdev, sizeof(self->cdev)))
		TH_LOG("%s has no VFIO device cdev", self->bdf);
	ASSERT_EQ(0, access("/dev/iommu", R_OK | W_OK));
}

FIXTURE_TEARDOWN(qemu)
{
	if (self->q.pid > 0) {
		qemu_stop(&self->q, SIGKILL);
		qemu_show_stderr(&self->q);
	}
}

/* QEMU came up: the first qtest reply (QEMU answers once it is ready). */
static void qemu_up(struct __test_metadata *_metadata, FIXTURE_DATA(qemu) *self,
		    const char *tag)
{
	double t0 = now();
	uint64_t v;

	ASSERT_EQ(0, qemu_start(&self->q, self->bdf, tag));
	if (qtest(&self->q, &v, "readl 0x%llx", L2_RAM)) {
		int st;

		TH_LOG("QEMU gave no qtest reply: %s", self->q.line);
		st = qemu_stop(&self->q, SIGKILL);
		TH_LOG("QEMU's wait status 0x%x", st);
		qemu_show_stderr(&self->q);
		ASSERT_TRUE(false);
	}
	printf("# QEMU with %s assigned through iommufd answered after %.0f ms\n",
	       self->bdf, (now() - t0) * 1000);
}

/* The end of a run: QEMU quits on SIGTERM; what it said goes to the log. */
static void qemu_down(struct __test_metadata *_metadata,
		      FIXTURE_DATA(qemu) *self)
{
	int st = qemu_stop(&self->q, SIGTERM);

	qemu_show_stderr(&self->q);
	ASSERT_TRUE(WIFEXITED(st) || WIFSIGNALED(st)) TH_LOG("status 0x%x", st);
}

TEST_F_TIMEOUT(qemu, dma_through_qemu, 300)
{
	static struct ioctl_counts before, after;
	bool counted = ioctls_read(&before);

	qemu_up(_metadata, self, "dma");
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	qemu_down(_metadata, self);
	if (counted && ioctls_read(&after))
		ioctls_print(&before, &after);
}

/*
 * After QEMU's process dies with its device, IOAS and mappings in place, the
 * device can be opened, bound to /dev/iommu and DMA through a new IOAS of our
 * own; then another QEMU run works too.
 */
static void own_dma(struct __test_metadata *_metadata, const char *cdev)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t bufsz = page > XFER ? page : XFER;
	struct edu_dev d = { .fd = -1 };
	uint32_t devid, ioas, pt;
	int iommufd, devfd = -1;
	uint8_t *mem;

	mem = mmap(NULL, 2 * bufsz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, iommufd);
	for (int i = 0; i < 50 && devfd < 0; i++) {
		devfd = open(cdev, O_RDWR | O_CLOEXEC);
		if (devfd < 0)
			usleep(100000);
	}
	ASSERT_LE(0, devfd) TH_LOG("open %s: %s", cdev, strerror(errno));
	ASSERT_EQ(0, dev_bind(devfd, iommufd, &devid))
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	ASSERT_EQ(0, ioas_alloc(iommufd, &ioas));
	pt = ioas;
	ASSERT_EQ(0, dev_attach(devfd, &pt))
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno));
	ASSERT_EQ(0, map_fixed(iommufd, ioas, 0x200000, mem, 2 * bufsz));
	edu_enable(_metadata, &d, devfd);
	fill_pattern(mem, XFER);
	memset(mem + bufsz, MARK_DST, XFER);
	ASSERT_EQ(0, dma_in(&d, 0x200000));
	ASSERT_EQ(0, dma_out(&d, 0x200000 + bufsz, 0));
	ASSERT_EQ(-1, first_diff(mem, mem + bufsz, XFER));
	edu_unmap_bar(&d);
	close(devfd);
	close(iommufd);
	munmap(mem, 2 * bufsz);
}

TEST_F_TIMEOUT(qemu, qemu_killed, 300)
{
	int st;

	qemu_up(_metadata, self, "killed");
	l2_edu_enable(_metadata, &self->q);
	ASSERT_EQ(0, l2_fill(&self->q, L2_SRC, 0x33, XFER));
	/* A transfer is running (edu's 100 ms timer) when QEMU dies. */
	ASSERT_EQ(0, l2_dma(&self->q, L2_SRC, EDU_BUF, 0, false));
	st = qemu_stop(&self->q, SIGKILL);
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		TH_LOG("status 0x%x", st);
	ASSERT_TRUE(bound_to_vfio(self->bdf));
	/* Our own iommufd client on the same device. */
	own_dma(_metadata, self->cdev);
	/* And QEMU again. */
	qemu_up(_metadata, self, "again");
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	qemu_down(_metadata, self);
}

/*
 * A system_reset through QMP: QEMU resets the machine and its vfio-pci device
 * (config space back to reset values); the BAR is placed again and DMA works
 * as before, through the same IOAS.
 */
TEST_F_TIMEOUT(qemu, device_reset, 300)
{
	char buf[4096];
	uint32_t cmd = ~0U;

	qemu_up(_metadata, self, "reset");
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	ASSERT_EQ(0, qmp_command(self->q.qmp, "system_reset", buf, sizeof(buf)))
		TH_LOG("QMP system_reset: %s", buf);
	/* The reset request is handled by QEMU's main loop: wait for it. */
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, cfg_read32(&self->q, PCI_COMMAND, &cmd));
		if (!(cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)))
			break;
		usleep(50000);
	}
	ASSERT_EQ(0, cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
		TH_LOG("the command register after system_reset: 0x%x", cmd);
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	qemu_down(_metadata, self);
}

TEST_HARNESS_MAIN
