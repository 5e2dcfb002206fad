#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# qemu-nested.sh (make qemu-nested): only the VM of make check that runs the
# whole nested stack on arm64 with a real QEMU 11 as the VMM (job
# qemu_nested in tools/vm/init, issue 15 stage 2). The arm64 VM boots at EL2
# (KVM); inside it QEMU 11 runs a second-level guest under KVM, booted by
# UEFI on ACPI, with an edu assigned through vfio-pci on the Rust iommufd
# behind QEMU's accelerated vSMMUv3 (arm-smmuv3,accel=on). That guest's
# kernel DMAs through its own SMMU: QEMU turns its STEs and commands into
# vIOMMU, vDEVICE, nested HWPT and invalidation ioctls, and the Rust SMMUv3
# backend installs them in the emulated SMMU of the first VM. The same QEMU
# command against the C iommufd, and against the Rust one without its
# opt-in, is the control.
#
#   DEBUG=1   the debug kernel
#
# Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/qemu-nested-$VARIANT
mkdir -p "$OUT"
"$TOP/scripts/setup.sh"
"$TOP/scripts/qemu11.sh" arm64 >/dev/null
"$TOP/scripts/build-kernel.sh" arm64
"$TOP/scripts/build-tests.sh" arm64
log "running the arm64 VM ($VARIANT kernel at EL2, job qemu_nested)"
"$TOP/scripts/vm.sh" arm64 qemu_nested "$OUT/arm64.log" || true
"$TOP/scripts/results.py" "arm64-$VARIANT-qemu_nested=$OUT/arm64.log"
