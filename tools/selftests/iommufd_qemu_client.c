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
 * The tests: that round trip; QEMU killed mid-transfer; a system_reset;
 * a hot-unplug (device_del, with the program answering the hot-plug
 * handshake in place of L2's OS) and the device added back.
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

#define QMP_BUF		32768

struct qemu {
	pid_t pid;
	int in;		/* QEMU's stdin: qtest commands */
	int out;	/* QEMU's stdout: qtest replies */
	char rbuf[4 * XFER];	/* what was read from out and not used yet */
	size_t rlen;
	char errlog[64];	/* QEMU's stderr */
	char qmp[64];		/* its QMP FIFOs, <qmp>.in and <qmp>.out */
	char line[2 * XFER + 64];
	/* Where L2 sees the assigned device: bus 0, or behind the root port. */
	unsigned int ebus, eslot;
	/* The QMP session (opened on first use): FIFOs, unread input. */
	int qin, qout;
	char qbuf[QMP_BUF];
	size_t qlen;
	char qreply[QMP_BUF];	/* the last "return" or "error" line */
	char events[QMP_BUF];	/* the events seen so far, one per line */
	size_t evlen;
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

/*
 * With port set the device sits behind a PCIe root port (the root port in
 * L2's slot L2_SLOT, the device in slot 0 of its secondary bus 1), where it
 * can be unplugged: q35 and virt have no hot-plug on their root bus.
 */
static int qemu_start(struct qemu *q, const char *bdf, const char *tag,
		      bool port)
{
	char root[256], ld[PATH_MAX], libdir[PATH_MAX], bin[PATH_MAX];
	char bios[64], dev[160], rp[96], qmparg[96], datadir[PATH_MAX];
	int to[2], from[2], err;

	memset(q, 0, sizeof(*q));
	q->pid = -1;
	q->in = -1;
	q->out = -1;
	q->qin = -1;
	q->qout = -1;
	q->ebus = port ? 1 : 0;
	q->eslot = port ? 0 : L2_SLOT;
	snprintf(root, sizeof(root), "%.255s", qemu_root());
	snprintf(ld, sizeof(ld), "%s/%s", root, QEMU_LD);
	snprintf(libdir, sizeof(libdir), "%s/%s", root, QEMU_LIBDIR);
	snprintf(bin, sizeof(bin), "%s/%s", root, QEMU_BIN);
	/* Started through the loader, QEMU cannot find its data files itself. */
	snprintf(datadir, sizeof(datadir), "%s/usr/share/qemu", root);
	snprintf(bios, sizeof(bios), "/tmp/qemu-client-bios.bin");
	snprintf(q->errlog, sizeof(q->errlog), "/tmp/qemu-client-%s.err", tag);
	snprintf(q->qmp, sizeof(q->qmp), "/tmp/qemu-client-%s.qmp", tag);
	snprintf(rp, sizeof(rp), "pcie-root-port,id=rp0,chassis=1,slot=1,addr=%x.0",
		 L2_SLOT);
	if (port)
		snprintf(dev, sizeof(dev),
			 "vfio-pci,host=%s,iommufd=fd0,bus=rp0,id=hostdev0", bdf);
	else
		snprintf(dev, sizeof(dev),
			 "vfio-pci,host=%s,iommufd=fd0,addr=%x.0,id=hostdev0",
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
			"-device", port ? rp : dev,
			port ? "-device" : NULL, dev,
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
	if (q->qin >= 0)
		close(q->qin);
	if (q->qout >= 0)
		close(q->qout);
	q->qin = -1;
	q->qout = -1;
	qmp_fifos(q->qmp, false);
	return status;
}

/* --- the L2 machine through qtest --------------------------------------- */

/* Configuration space of function 0 of bus:slot in L2. */
#if defined(__x86_64__)
static int cfg_write32_at(struct qemu *q, unsigned int bus, unsigned int slot,
			  unsigned int reg, uint32_t val)
{
	uint32_t addr = 0x80000000U | bus << 16 | slot << 11 | (reg & 0xfc);

	if (qtest(q, NULL, "outl 0xcf8 0x%x", addr))
		return -1;
	return qtest(q, NULL, "outl 0xcfc 0x%x", val);
}

static int cfg_read32_at(struct qemu *q, unsigned int bus, unsigned int slot,
			 unsigned int reg, uint32_t *val)
{
	uint32_t addr = 0x80000000U | bus << 16 | slot << 11 | (reg & 0xfc);
	uint64_t v;

	if (qtest(q, NULL, "outl 0xcf8 0x%x", addr) ||
	    qtest(q, &v, "inl 0xcfc"))
		return -1;
	*val = v;
	return 0;
}
#else
static unsigned long long ecam(unsigned int bus, unsigned int slot,
			       unsigned int reg)
{
	return L2_ECAM + ((unsigned long long)bus << 20) + (slot << 15) +
	       (reg & 0xffc);
}

static int cfg_write32_at(struct qemu *q, unsigned int bus, unsigned int slot,
			  unsigned int reg, uint32_t val)
{
	return qtest(q, NULL, "writel 0x%llx 0x%x", ecam(bus, slot, reg), val);
}

static int cfg_read32_at(struct qemu *q, unsigned int bus, unsigned int slot,
			 unsigned int reg, uint32_t *val)
{
	uint64_t v;

	if (qtest(q, &v, "readl 0x%llx", ecam(bus, slot, reg)))
		return -1;
	*val = v;
	return 0;
}
#endif

/* The assigned device's configuration space. */
static int cfg_write32(struct qemu *q, unsigned int reg, uint32_t val)
{
	return cfg_write32_at(q, q->ebus, q->eslot, reg, val);
}

static int cfg_read32(struct qemu *q, unsigned int reg, uint32_t *val)
{
	return cfg_read32_at(q, q->ebus, q->eslot, reg, val);
}

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
		TH_LOG("L2 %02x:%02x.0 holds %08x, not the edu", q->ebus,
		       q->eslot, ids);
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

/* --- QMP: system_reset, device_del, device_add, query-pci ------------------- */

/*
 * The next line QEMU's monitor wrote, into line (NUL-terminated); -1 when
 * none came within timeout_ms or the stream closed.
 */
static int qmp_line(struct qemu *q, char *line, size_t len, int timeout_ms)
{
	double end = now() + timeout_ms / 1000.0;

	for (;;) {
		char *nl = memchr(q->qbuf, '\n', q->qlen);
		struct pollfd pfd = { .fd = q->qout, .events = POLLIN };
		int left = (int)((end - now()) * 1000);
		ssize_t r;

		if (nl) {
			size_t n = nl - q->qbuf;

			if (n >= len)
				n = len - 1;
			memcpy(line, q->qbuf, n);
			line[n] = '\0';
			q->qlen -= nl + 1 - q->qbuf;
			memmove(q->qbuf, nl + 1, q->qlen);
			return 0;
		}
		if (q->qlen == sizeof(q->qbuf) || left <= 0 ||
		    poll(&pfd, 1, left) != 1)
			return -1;
		r = read(q->qout, q->qbuf + q->qlen, sizeof(q->qbuf) - q->qlen);
		if (r <= 0)
			return -1;
		q->qlen += r;
	}
}

/* An event line is kept (for qmp_wait_event) and is no reply. */
static bool qmp_keep_event(struct qemu *q, const char *line)
{
	size_t n = strlen(line);

	if (!strstr(line, "\"event\""))
		return false;
	if (q->evlen + n + 2 <= sizeof(q->events)) {
		memcpy(q->events + q->evlen, line, n);
		q->evlen += n;
		q->events[q->evlen++] = '\n';
		q->events[q->evlen] = '\0';
	}
	return true;
}

/*
 * One request, answered before the next; its reply line in q->qreply. 0 on
 * "return", -1 on "error" or no answer (q->qreply says which).
 */
static int qmp_exec(struct qemu *q, const char *req)
{
	size_t n = strlen(req);

	if (q->qin < 0) {
		char p[96];

		snprintf(p, sizeof(p), "%s.in", q->qmp);
		q->qin = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		snprintf(p, sizeof(p), "%s.out", q->qmp);
		q->qout = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (q->qin < 0 || q->qout < 0) {
			snprintf(q->qreply, sizeof(q->qreply),
				 "cannot open the QMP FIFOs %s.{in,out}: %s",
				 q->qmp, strerror(errno));
			return -1;
		}
		/* The greeting, then capabilities negotiation. */
		do {
			if (qmp_line(q, q->qreply, sizeof(q->qreply),
				     REPLY_TIMEOUT)) {
				snprintf(q->qreply, sizeof(q->qreply),
					 "no QMP greeting");
				return -1;
			}
		} while (!strstr(q->qreply, "\"QMP\""));
		if (qmp_exec(q, "{\"execute\":\"qmp_capabilities\"}"))
			return -1;
	}
	if (write(q->qin, req, n) != (ssize_t)n || write(q->qin, "\n", 1) != 1) {
		snprintf(q->qreply, sizeof(q->qreply), "QMP write: %s",
			 strerror(errno));
		return -1;
	}
	for (;;) {
		if (qmp_line(q, q->qreply, sizeof(q->qreply), REPLY_TIMEOUT)) {
			snprintf(q->qreply, sizeof(q->qreply),
				 "no QMP reply within %d ms to %s",
				 REPLY_TIMEOUT, req);
			return -1;
		}
		if (qmp_keep_event(q, q->qreply))
			continue;
		if (strstr(q->qreply, "\"return\""))
			return 0;
		if (strstr(q->qreply, "\"error\""))
			return -1;
	}
}

/* Waits for an event line holding both name and what (seen before or new). */
static int qmp_wait_event(struct qemu *q, const char *name, const char *what,
			  int timeout_ms)
{
	double end = now() + timeout_ms / 1000.0;
	char line[1024];

	for (;;) {
		for (char *l = q->events; *l;) {
			char *nl = strchr(l, '\n');
			bool hit;

			*nl = '\0';
			hit = strstr(l, name) && strstr(l, what);
			*nl = '\n';
			if (hit)
				return 0;
			l = nl + 1;
		}
		if (now() > end)
			return -1;
		if (qmp_line(q, line, sizeof(line), (int)((end - now()) * 1000) + 1))
			return -1;
		qmp_keep_event(q, line);
	}
}

/* --- hot-unplug and hot-plug behind L2's root port -------------------------- */

#define PCI_HEADER_TYPE_REG	0x0c	/* the dword holding the header type */
#define PCI_BRIDGE_BUSES	0x18	/* primary, secondary, subordinate */
#define PCI_BRIDGE_MEM		0x20	/* memory base and limit */
#define PCI_BRIDGE_PREF		0x24	/* prefetchable base and limit */
#define PCI_CAP_PTR		0x34
#define PCI_CAP_EXP		0x10
#define EXP_SLTCTL		0x18	/* slot control; slot status above it */
#define SLTCTL_PIC_MASK		0x0300
#define SLTCTL_PIC_ON		0x0100
#define SLTCTL_PIC_OFF		0x0300
#define SLTCTL_PCC_OFF		0x0400	/* power controller: slot power off */
#define SLTSTA_ABP		0x0001	/* attention button pressed */
#define SLTSTA_PDS		0x0040	/* presence detect state */

/* The root port: L2 slot L2_SLOT, its secondary bus 1 holding the device. */
static void l2_port_enable(struct __test_metadata *_metadata, struct qemu *q)
{
	uint32_t hdr = 0, buses = 0, win;

	ASSERT_EQ(0, cfg_read32_at(q, 0, L2_SLOT, PCI_HEADER_TYPE_REG, &hdr))
		TH_LOG("qtest: %s", q->line);
	ASSERT_EQ(1, hdr >> 16 & 0x7f)
		TH_LOG("L2 slot %d is no bridge (header 0x%08x)", L2_SLOT, hdr);
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, PCI_BRIDGE_BUSES, 0x010100));
	ASSERT_EQ(0, cfg_read32_at(q, 0, L2_SLOT, PCI_BRIDGE_BUSES, &buses));
	ASSERT_EQ(0x010100, buses & 0xffffff);
	/* The memory window: the 1 MiB from BAR0 (bits 31:20 in 15:4). */
	win = (uint32_t)(L2_BAR0 >> 16) & 0xfff0;
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, PCI_BRIDGE_MEM,
				    win | win << 16));
	/* No prefetchable window (base above limit). */
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, PCI_BRIDGE_PREF, 0xfff0));
	/* The port forwards memory and, as bus master, the device's DMA. */
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, PCI_COMMAND,
				    PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
}

/* The root port's PCI Express capability (its offset), 0 if none. */
static unsigned int l2_port_expcap(struct qemu *q)
{
	uint32_t v = 0;
	unsigned int pos;

	if (cfg_read32_at(q, 0, L2_SLOT, PCI_CAP_PTR, &v))
		return 0;
	for (pos = v & 0xfc; pos; pos = v >> 8 & 0xfc) {
		if (cfg_read32_at(q, 0, L2_SLOT, pos, &v))
			return 0;
		if ((v & 0xff) == PCI_CAP_EXP)
			return pos;
	}
	return 0;
}

#if defined(__x86_64__)
/*
 * q35 (since QEMU 6.1) hot-plugs devices behind root ports through ACPI: a
 * device_del only marks the slot in the PCI hot-plug block of the ICH9 (I/O
 * 0xcc0) and raises a GPE, and the device goes when the guest's ACPI code
 * writes the slot to the eject register. The root port's bus has the first
 * bus selector (0): the root bus of q35 is no hot-plug bus.
 */
#define ACPI_PCIHP		0xcc0
#define ACPI_PCIHP_DOWN		(ACPI_PCIHP + 0x04)
#define ACPI_PCIHP_EJ		(ACPI_PCIHP + 0x08)
#define ACPI_PCIHP_SEL		(ACPI_PCIHP + 0x10)
#define ACPI_PCIHP_BSEL		0

static void l2_unplug_ack(struct __test_metadata *_metadata, struct qemu *q)
{
	uint64_t down = 0;

	ASSERT_EQ(0, qtest(q, NULL, "outl 0x%x 0x%x", ACPI_PCIHP_SEL,
			   ACPI_PCIHP_BSEL));
	ASSERT_EQ(0, qtest(q, &down, "inl 0x%x", ACPI_PCIHP_DOWN));
	printf("# ACPI PCI hot-plug: slots with an unplug request on bus selector %d: 0x%llx\n",
	       ACPI_PCIHP_BSEL, (unsigned long long)down);
	ASSERT_EQ(1, down & 1)
		TH_LOG("no unplug request for slot 0 behind the root port");
	ASSERT_EQ(0, qtest(q, NULL, "outl 0x%x 0x1", ACPI_PCIHP_EJ));
}

/* With ACPI hot-plug a device added is there at once. */
static void l2_plug_ack(struct __test_metadata *_metadata, struct qemu *q)
{
}
#else
/*
 * virt (without ACPI PCI hot-plug, which is off by default) uses the root
 * port's native PCIe hot-plug: a device_del presses the attention button
 * (slot status ABP), and the device goes when the guest turns the slot's
 * power indicator and power off in slot control, as Linux's pciehp does
 * after its 5 s wait. A device added to a slot that is powered off stays
 * hidden until the guest powers the slot on.
 */
static void l2_unplug_ack(struct __test_metadata *_metadata, struct qemu *q)
{
	unsigned int exp = l2_port_expcap(q);
	uint32_t v = 0;

	ASSERT_NE(0, exp) TH_LOG("the root port has no PCIe capability");
	ASSERT_EQ(0, cfg_read32_at(q, 0, L2_SLOT, exp + EXP_SLTCTL, &v));
	printf("# PCIe slot control 0x%04x, status 0x%04x after device_del\n",
	       v & 0xffff, v >> 16);
	ASSERT_EQ(SLTSTA_ABP | SLTSTA_PDS, v >> 16 & (SLTSTA_ABP | SLTSTA_PDS))
		TH_LOG("no attention button press on the occupied slot");
	/* Slot status is write-1-to-clear: 0 there leaves it. */
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, exp + EXP_SLTCTL,
				    ((v & ~SLTCTL_PIC_MASK) | SLTCTL_PIC_OFF |
				     SLTCTL_PCC_OFF) & 0xffff));
}

static void l2_plug_ack(struct __test_metadata *_metadata, struct qemu *q)
{
	unsigned int exp = l2_port_expcap(q);
	uint32_t v = 0;

	ASSERT_NE(0, exp);
	ASSERT_EQ(0, cfg_read32_at(q, 0, L2_SLOT, exp + EXP_SLTCTL, &v));
	printf("# PCIe slot control 0x%04x, status 0x%04x after device_add\n",
	       v & 0xffff, v >> 16);
	ASSERT_EQ(SLTSTA_PDS, v >> 16 & SLTSTA_PDS)
		TH_LOG("the slot shows no device present");
	ASSERT_EQ(0, cfg_write32_at(q, 0, L2_SLOT, exp + EXP_SLTCTL,
				    ((v & ~(SLTCTL_PIC_MASK | SLTCTL_PCC_OFF)) |
				     SLTCTL_PIC_ON) & 0xffff));
}
#endif

/* One counter of the Rust module's debugfs iommufd_rs/stats, -1 without. */
static long rs_stat(const char *key)
{
	FILE *f = fopen("/sys/kernel/debug/iommufd_rs/stats", "re");
	char name[64];
	long v, found = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2)
		if (!strcmp(name, key))
			found = v;
	fclose(f);
	return found;
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
		    const char *tag, bool port)
{
	double t0 = now();
	uint64_t v;

	ASSERT_EQ(0, qemu_start(&self->q, self->bdf, tag, port));
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

	qemu_up(_metadata, self, "dma", false);
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

	qemu_up(_metadata, self, "killed", false);
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
	qemu_up(_metadata, self, "again", false);
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
	uint32_t cmd = ~0U;

	qemu_up(_metadata, self, "reset", false);
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	ASSERT_EQ(0, qmp_exec(&self->q, "{\"execute\":\"system_reset\"}"))
		TH_LOG("QMP system_reset: %s", self->q.qreply);
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

/*
 * Hot-unplug: the device sits behind a root port of L2, the round trip
 * works, then QMP device_del; the program answers the hot-plug handshake as
 * L2's OS would (ACPI eject on q35, slot power off on virt), and QEMU
 * reports DEVICE_DELETED. QEMU runs on without the device: query-pci has
 * it no more, L2 reads all ones from its configuration space, QEMU has
 * nothing pinned (VmPin), and against Rust the module's objects and pinned
 * pages are back where they were before QEMU started (QEMU freed its IOAS
 * and HWPT with the container's last device). The device, still on
 * vfio-pci, binds to an iommufd of our own and DMAs; then device_add puts it
 * back into the same QEMU and the round trip works again.
 */
TEST_F_TIMEOUT(qemu, hot_unplug, 300)
{
	static struct ioctl_counts before, mid, ours, after;
	bool counted = ioctls_read(&before);
	long objects0 = rs_stat("objects"), pinned0 = rs_stat("pinned_pages");
	char req[512];
	uint32_t ids = 0;
	long kb;
	int i;

	qemu_up(_metadata, self, "unplug", true);
	l2_port_enable(_metadata, &self->q);
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	kb = pid_vm_pin_kb(self->q.pid);
	printf("# QEMU's VmPin with the device: %ld kB\n", kb);
	ASSERT_LT(0, kb) TH_LOG("QEMU pins L2's RAM through the IOAS");
	if (objects0 >= 0) {
		ASSERT_LT(objects0, rs_stat("objects"));
		ASSERT_LT(pinned0, rs_stat("pinned_pages"));
	}

	ASSERT_EQ(0, qmp_exec(&self->q,
			      "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"hostdev0\"}}"))
		TH_LOG("QMP device_del: %s", self->q.qreply);
	l2_unplug_ack(_metadata, &self->q);
	ASSERT_EQ(0, qmp_wait_event(&self->q, "\"DEVICE_DELETED\"",
				    "\"hostdev0\"", 30000))
		TH_LOG("no DEVICE_DELETED for hostdev0; events: %s",
		       self->q.events);
	ASSERT_EQ(0, qmp_exec(&self->q, "{\"execute\":\"query-pci\"}"))
		TH_LOG("QMP query-pci: %s", self->q.qreply);
	ASSERT_EQ(NULL, strstr(self->q.qreply, "\"hostdev0\""))
		TH_LOG("query-pci still lists hostdev0");
	ASSERT_EQ(0, cfg_read32(&self->q, PCI_VENDOR_ID, &ids));
	ASSERT_EQ(0xffffffffU, ids) TH_LOG("L2 still sees %08x", ids);
	kb = pid_vm_pin_kb(self->q.pid);
	printf("# QEMU's VmPin after the unplug: %ld kB\n", kb);
	ASSERT_EQ(0, kb);
	if (objects0 >= 0) {
		ASSERT_EQ(objects0, rs_stat("objects"))
			TH_LOG("objects held while QEMU runs without the device");
		ASSERT_EQ(pinned0, rs_stat("pinned_pages"));
	}
	if (counted && ioctls_read(&mid)) {
		printf("# QEMU, from its start to the unplug:\n");
		ioctls_print(&before, &mid);
	}

	/* Free for another user while QEMU still runs. */
	ASSERT_TRUE(bound_to_vfio(self->bdf));
	own_dma(_metadata, self->cdev);
	/* Our own ioctls are not QEMU's. */
	counted = counted && ioctls_read(&ours);

	/* And back into the same QEMU. */
	snprintf(req, sizeof(req),
		 "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vfio-pci\",\"host\":\"%s\",\"iommufd\":\"fd0\",\"bus\":\"rp0\",\"id\":\"hostdev1\"}}",
		 self->bdf);
	ASSERT_EQ(0, qmp_exec(&self->q, req))
		TH_LOG("QMP device_add: %s", self->q.qreply);
	l2_plug_ack(_metadata, &self->q);
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, cfg_read32(&self->q, PCI_VENDOR_ID, &ids));
		if (ids != 0xffffffffU)
			break;
		usleep(50000);
	}
	l2_edu_enable(_metadata, &self->q);
	l2_dma_roundtrip(_metadata, &self->q);
	qemu_down(_metadata, self);
	if (counted && ioctls_read(&after)) {
		printf("# QEMU, from device_add to its end:\n");
		ioctls_print(&ours, &after);
	}
}

TEST_HARNESS_MAIN
