#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check): set-up, host checks, the kernels and guest
# programs, then every suite in a VM per kernel. Ends with
# "N passed, N failed, N skipped"; exits non-zero on any failure.
#
#   ARCHS="x86_64 arm64"  architectures to run
#   IMPL=c|rust|both      which iommufd the upstream selftests run against
#   DEBUG=1               the debug variant (KASAN, lockdep, kmemleak) instead
#                         of the normal one
#
# Kernels: <variant>:<arch> for every arch, plus rustonly:<arch> (the kernel
# built with CONFIG_IOMMUFD_RUST=y; on arm64 without the SMMUv3 C glue) with
# the normal variant.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ARCHS=${ARCHS:-x86_64 arm64}
IMPL=${IMPL:-both}
case $IMPL in
c | rust) impls=$IMPL ;;
both) impls=c,rust ;;
*) die "IMPL must be c, rust or both" ;;
esac
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/check-$VARIANT
rm -rf "$OUT"
mkdir -p "$OUT"

kernels=()
for arch in $ARCHS; do kernels+=("$VARIANT:$arch"); done
if [ "$VARIANT" = normal ]; then
	for arch in $ARCHS; do kernels+=("rustonly:$arch"); done
fi

t_start=$(date +%s)
stamp() { echo "$1=$(($(date +%s) - t_start))s" >>"$OUT/times"; }
"$TOP/scripts/setup.sh"
stamp setup
# QEMU 11 for the suite that runs it inside the VMs as a client of /dev/iommu
# (iommufd_qemu_client in the check job): Debian's binaries with their
# libraries, unpacked into the cache once per version (scripts/qemu11.sh;
# scripts/vm.sh packs the root into the check VMs' initramfs).
for arch in $ARCHS; do "$TOP/scripts/qemu11.sh" "$arch" >/dev/null; done
stamp qemu11
"$TOP/scripts/host-tests.sh" "$OUT/host.log"
for k in "${kernels[@]}"; do
	VARIANT=${k%%:*} "$TOP/scripts/build-kernel.sh" "${k#*:}"
	VARIANT=${k%%:*} "$TOP/scripts/build-tests.sh" "${k#*:}"
	stamp "build-${k/:/-}"
done
"$TOP/scripts/kvm-probe.sh"

# The rustonly kernels have no C nesting entry points (the SMMUv3 C iommufd
# glue, VT-d's domain_alloc_nested and nested cache_invalidate_user), so the
# nesting in their VM runs can only be the Rust backends' (the kernels have no
# kallsyms for the guest to look this up itself). The normal kernel of the
# same arch is the control: it has both.
# rustonly_build ARCH NM "C SYMBOLS" "RUST SYMBOLS"
rustonly_build() {
	local arch=$1 nm=$2 c_syms=$3 rust_syms=$4 ro normal syms nsyms n=0 s
	ro=$(VARIANT=rustonly objdir "$arch")
	normal=$(VARIANT=normal objdir "$arch")
	syms=$($nm "$ro/vmlinux" | awk '{print $3}')
	nsyms=$($nm "$normal/vmlinux" | awk '{print $3}')
	echo "@@ suite rustonly_${arch}_build impl=rust"
	for s in $c_syms; do
		n=$((n + 1))
		if grep -qx "$s" <<<"$syms"; then echo "not ok $n no $s (C nesting) in vmlinux"; else echo "ok $n no $s (C nesting) in vmlinux"; fi
		n=$((n + 1))
		if grep -qx "$s" <<<"$nsyms"; then echo "ok $n $s in the normal kernel (the control)"; else echo "not ok $n $s in the normal kernel (the control)"; fi
	done
	for s in $rust_syms; do
		n=$((n + 1))
		if grep -qx "$s" <<<"$syms"; then echo "ok $n $s (the Rust surface) in vmlinux"; else echo "not ok $n $s (the Rust surface) in vmlinux"; fi
	done
	echo "@@ end rustonly_${arch}_build rc=0"
}
if [ "$VARIANT" = normal ]; then
	{
		if [[ " $ARCHS " = *" arm64 "* ]]; then
			rustonly_build arm64 aarch64-linux-gnu-nm \
				"arm_vsmmu_init arm_vsmmu_cache_invalidate arm_vsmmu_alloc_domain_nested arm_smmu_hw_info" \
				"arm_smmu_rust_vsmmu_alloc arm_smmu_rust_nested_alloc arm_smmu_rust_issue_cmds"
		fi
		if [[ " $ARCHS " = *" x86_64 "* ]]; then
			rustonly_build x86_64 nm \
				"intel_iommu_domain_alloc_nested intel_nested_cache_invalidate_user" \
				"intel_iommu_rust_nested_alloc intel_iommu_rust_nested_flush intel_iommu_rust_pasid_entry"
		fi
		echo "@@ done"
	} >"$OUT/rustonly-build.log"
fi

# rustfmt and clippy on the module, as one more suite.
{
	echo "@@ suite rust_lint impl=rust"
	if "$TOP/scripts/lint.sh" "${ARCHS%% *}" >"$OUT/lint.out" 2>&1; then
		echo "ok 1 rust_lint.rustfmt_and_clippy_clean"
	else
		sed 's/^/# /' "$OUT/lint.out"
		echo "not ok 1 rust_lint.rustfmt_and_clippy_clean"
	fi
	echo "@@ end rust_lint rc=0"
	echo "@@ done"
} >"$OUT/lint.log"

logs=("host=$OUT/host.log" "lint=$OUT/lint.log")
[ -e "$OUT/rustonly-build.log" ] && logs+=("rustonly-build=$OUT/rustonly-build.log")
for k in "${kernels[@]}"; do
	variant=${k%%:*} arch=${k#*:}
	job=check
	[ "$variant" = rustonly ] && job=rustonly
	log "running the $arch VM ($variant kernel, job $job, upstream selftests against: $impls)"
	VARIANT=$variant "$TOP/scripts/vm.sh" "$arch" $job "$OUT/$arch-$variant.log" "impls=$impls" || true
	stamp "vm-$arch-$variant"
	logs+=("$arch-$variant=$OUT/$arch-$variant.log")
done
# The fuzzer (tools/iommufd_fuzz.c) against both implementations, Rust first:
# 3 seeds of 100000 calls and a 4-thread run each, then the counters, the
# unload and the kernel log (the C iommufd's known failure is named as such),
# then each seed's trace against C compared with its trace against Rust.
for arch in $ARCHS; do
	log "running the $arch VM ($VARIANT kernel, job fuzz, against: c,rust)"
	"$TOP/scripts/vm.sh" "$arch" fuzz "$OUT/$arch-$VARIANT-fuzz.log" impls=c,rust \
		fuzz_seeds=1,2,3 fuzz_count=100000 fuzz_time=300 || true
	stamp "vm-$arch-$VARIANT-fuzz"
	logs+=("$arch-$VARIANT-fuzz=$OUT/$arch-$VARIANT-fuzz.log")
done
# The whole nested stack with QEMU 11 as the VMM (arm64, job qemu_nested):
# the VM boots at EL2 and QEMU 11 runs a second-level guest under KVM behind
# its accelerated vSMMUv3 on the Rust iommufd (scripts/qemu-nested.sh).
if [[ " $ARCHS " = *" arm64 "* ]]; then
	log "running the arm64 VM ($VARIANT kernel at EL2, job qemu_nested)"
	"$TOP/scripts/vm.sh" arm64 qemu_nested "$OUT/arm64-$VARIANT-qemu_nested.log" || true
	stamp "vm-arm64-$VARIANT-qemu_nested"
	logs+=("arm64-$VARIANT-qemu_nested=$OUT/arm64-$VARIANT-qemu_nested.log")
fi
# MSI isolation: the x86_64 kernel once more, booted without interrupt
# remapping, where binding a device must fail unless allowed.
if [[ " $ARCHS " = *" x86_64 "* ]]; then
	log "running the x86_64 VM ($VARIANT kernel, job msi_unsafe, booted with intremap=off)"
	"$TOP/scripts/vm.sh" x86_64 msi_unsafe "$OUT/x86_64-$VARIANT-msi_unsafe.log" intremap=off || true
	stamp "vm-x86_64-$VARIANT-msi_unsafe"
	logs+=("x86_64-$VARIANT-msi_unsafe=$OUT/x86_64-$VARIANT-msi_unsafe.log")
	# The VFIO selftest behind two other IOMMUs (scripts/vm.sh IOMMU=): the
	# paravirtual virtio-iommu, whose driver has no domain_alloc_paging_flags,
	# and VT-d with snoop control and second-stage domains only.
	for iommu in virtio vtd-ss; do
		log "running the x86_64 VM ($VARIANT kernel, job vfio, IOMMU=$iommu)"
		IOMMU=$iommu "$TOP/scripts/vm.sh" x86_64 vfio "$OUT/x86_64-$VARIANT-$iommu.log" impls=c,rust || true
		stamp "vm-x86_64-$VARIANT-$iommu"
		logs+=("x86_64-$VARIANT-$iommu=$OUT/x86_64-$VARIANT-$iommu.log")
	done
fi
echo
log "times since start: $(tr '\n' ' ' <"$OUT/times")"
"$TOP/scripts/results.py" --markdown "$OUT/results.md" "${logs[@]}"
