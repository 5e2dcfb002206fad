#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vm.sh ARCH JOB LOG [KERNEL-ARGS...]: packs the initramfs for ARCH and boots
# the patched kernel in QEMU with the emulated IOMMU and edu devices, runs
# JOB (see tools/vm/init) and writes the serial console to LOG.
# IOMMU= picks another x86_64 IOMMU for the edu devices:
#   virtio  QEMU's virtio-iommu-pci instead of the emulated VT-d. It has no
#           interrupt remapping, so both implementations are loaded with
#           allow_unsafe_interrupts=1 (module options on the kernel command
#           line, which modprobe applies).
#   vtd-ss  the emulated VT-d with snoop control and without first-stage
#           tables: paging domains are second-stage and enforce cache
#           coherency per PTE.
# Exit status: 0 when the guest reached the end of its job, 1 when it hung,
# panicked or was killed by the time limit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 job=$2 logf=$3
shift 3
obj=$(objdir "$arch")
VM_TIMEOUT=${VM_TIMEOUT:-3600}
IOMMU=${IOMMU:-default}
case $arch:$IOMMU in
*:default | x86_64:virtio | x86_64:vtd-ss) ;;
*) die "IOMMU=$IOMMU: not available on $arch (default; virtio or vtd-ss on x86_64)" ;;
esac
# Where the initramfs is packed and what goes in (scripts/dev.sh points these
# at a checkout's own module and programs; the defaults are the cached build).
VM_WORK=${VM_WORK:-$obj}
GUEST_BIN=${GUEST_BIN:-$obj/guest-bin}
MODROOT=${MODROOT:-$obj/modroot}

# --- initramfs -----------------------------------------------------------
root=$VM_WORK/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib}
if [ "$arch" = arm64 ]; then
	cp "$ARM64_SYSROOT/bin/busybox" "$root/bin/busybox"
else
	cp /bin/busybox "$root/bin/busybox"
fi
cp "$TOP/tools/vm/init" "$root/init"
chmod +x "$root/init"
for f in "$GUEST_BIN"/*; do
	[ -f "$f" ] || continue
	case $f in *.key | *.log) continue ;; esac
	cp "$f" "$root/bin/"
done
cp -a "$MODROOT/lib/modules" "$root/lib/"
kver=$(ls "$root/lib/modules")
depmod -b "$root" "$kver"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM_WORK/initramfs.cpio.gz"
# QEMU 11 under /opt/qemu11 for the suite that runs it as the client of
# /dev/iommu (tools/selftests/iommufd_qemu_client.c): only for the jobs that
# run it (or QEMU11=1), as a second cpio archive appended to the first (the
# kernel unpacks each in turn). The archive is cached beside the root that
# scripts/qemu11.sh keeps.
case ${QEMU11:-auto}:$job in
1:* | auto:qemu | auto:check | auto:qemu_nested)
	q11root=$("$TOP/scripts/qemu11.sh" "$arch")
	q11cpio=$(dirname "$q11root")/opt-qemu11.cpio.gz
	if [ ! -s "$q11cpio" ] || [ "$q11root/.complete" -nt "$q11cpio" ]; then
		stage=$(dirname "$q11root")/stage.$$
		rm -rf "$stage"
		mkdir -p "$stage/opt"
		cp -al "$q11root" "$stage/opt/qemu11"
		rm -f "$stage/opt/qemu11/.complete"
		(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$q11cpio.$$"
		mv "$q11cpio.$$" "$q11cpio"
		rm -rf "$stage"
	fi
	cat "$q11cpio" >>"$VM_WORK/initramfs.cpio.gz"
	;;
esac
# The second-level guest of job qemu_nested (scripts/qemu-nested.sh): this
# kernel, this initramfs (without QEMU 11) and the UEFI firmware, under
# /opt/l2 in a third archive.
if [ "$job" = qemu_nested ]; then
	[ "$arch" = arm64 ] || die "job qemu_nested runs on arm64 only"
	l2=$VM_WORK/l2stage
	rm -rf "$l2"
	mkdir -p "$l2/opt/l2"
	cp "$obj/arch/arm64/boot/Image" "$l2/opt/l2/Image"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$l2/opt/l2/initramfs.cpio.gz"
	cp "$(dirname "$q11root")/QEMU_EFI.fd" "$l2/opt/l2/QEMU_EFI.fd"
	(cd "$l2" && find . | cpio -o -H newc --quiet | gzip -1) >>"$VM_WORK/initramfs.cpio.gz"
	rm -rf "$l2"
fi

# --- QEMU ------------------------------------------------------------------
accel=tcg
if [ "$arch" = x86_64 ] && [ "$(cat "$CACHE/kvm-ok" 2>/dev/null)" = yes ]; then
	accel=kvm
fi
cmdline="panic=-1 oops=panic loglevel=1 log_buf_len=8M job=$job $*"
case $arch in
x86_64)
	qemu=(qemu-system-x86_64 -M q35,kernel-irqchip=split -accel "$accel" -cpu max
		-kernel "$obj/arch/x86/boot/bzImage")
	# no_timer_check: under TCG on a loaded host the IO-APIC timer check can
	# fail at boot ("timer doesn't work through Interrupt-remapped IO-APIC").
	case $IOMMU in
	virtio)
		qemu+=(-device virtio-iommu-pci)
		cmdline="console=ttyS0 no_timer_check iommufd.allow_unsafe_interrupts=1 iommufd_rs.allow_unsafe_interrupts=1 $cmdline"
		;;
	vtd-ss)
		qemu+=(-device intel-iommu,intremap=on,caching-mode=on,x-scalable-mode=on,snoop-control=on,aw-bits=48)
		cmdline="console=ttyS0 intel_iommu=on,sm_on no_timer_check $cmdline"
		;;
	*)
		qemu+=(-device intel-iommu,intremap=on,caching-mode=on,x-scalable-mode=on,x-flts=on,aw-bits=48)
		cmdline="console=ttyS0 intel_iommu=on,sm_on no_timer_check $cmdline"
		;;
	esac
	;;
arm64)
	# Job qemu_nested boots at EL2, so that the kernel offers KVM to the
	# QEMU 11 inside (the arm64 kernel has CONFIG_KVM).
	virt=virt,iommu=smmuv3,gic-version=3
	[ "$job" = qemu_nested ] && virt=$virt,virtualization=on
	qemu=(qemu-system-aarch64 -M $virt -accel tcg
		-global arm-smmuv3.stage=nested -cpu max,pauth-impdef=on
		-kernel "$obj/arch/arm64/boot/Image")
	cmdline="console=ttyAMA0 $cmdline"
	;;
esac
# The debug kernel (KASAN, lockdep, kmemleak) runs many times slower under
# TCG, and the kselftest harness kills a test after 30 s of guest time. With
# -icount the guest's clock follows the instructions it executes (1 ns each)
# instead of the host's clock, so the harness limits measure the guest's work,
# not the emulation speed or the host's load.
# The bench job runs under -icount too, so that its numbers count the
# guest's instructions and do not move with the host's load.
if [ "$VARIANT" = debug ] || [ "$job" = bench ]; then
	[ "$accel" = tcg ] && qemu+=(-icount shift=0,sleep=off)
fi
# Four edu devices for the VFIO selftest: two alone in their IOMMU groups, and
# the two functions of a multifunction device without ACS, which share one.
# On arm64 the edus take 40-bit DMA addresses (the default mask is 28 bits):
# a second-level QEMU's RAM starts at 0x40000000 (iommufd_qemu_client).
edu=edu
[ "$arch" = arm64 ] && edu=edu,dma_mask=0xffffffffff
mem=2G
case $job in qemu_nested) mem=3G ;; bench) mem=4G ;; esac
qemu+=(-m $mem -smp 2 -nographic -no-reboot -nic none -device $edu -device $edu
	-device $edu,addr=0x10.0,multifunction=on -device $edu,addr=0x10.1
	-initrd "$VM_WORK/initramfs.cpio.gz" -append "$cmdline")

# Development: VM_QMP=<socket> opens a QMP socket, for scripts/profile.py.
[ -n "${VM_QMP:-}" ] && qemu+=(-qmp "unix:$VM_QMP,server=on,wait=off")

mkdir -p "$(dirname "$logf")"
echo "# ${qemu[*]}" >"$logf"
t0=$(date +%s)
rc=0
timeout -k 10 "$VM_TIMEOUT" "${qemu[@]}" </dev/null >>"$logf" 2>&1 || rc=$?
echo "# vm exited with $rc after $(($(date +%s) - t0)) s" >>"$logf"
if ! grep -q '^@@ done' "$logf"; then
	[ $rc = 124 ] && echo "vm: $arch $job timed out after ${VM_TIMEOUT}s (log: $logf)" >&2
	grep -q 'Kernel panic' "$logf" && echo "vm: $arch $job: kernel panic (log: $logf)" >&2
	echo "vm: $arch $job did not finish (log: $logf)" >&2
	exit 1
fi
