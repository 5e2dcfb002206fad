#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Decides whether the x86_64 VMs may use KVM: only when /dev/kvm is usable,
# the CPU shows vmx or svm, and a KVM guest really boots the test kernel
# (on some machines /dev/kvm exists but guests hang). Result: $CACHE/kvm-ok.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
res=no
# vm.sh reads the decision from $CACHE/kvm-ok; the probe boot itself needs
# "yes" there. Whatever happens to the probe, the file ends up "no" unless
# the probe guest really booted.
trap 'echo no >"$CACHE/kvm-ok"' EXIT
if [ "${USE_KVM:-auto}" != no ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo yes >"$CACHE/kvm-ok"
	if VM_TIMEOUT=60 "$TOP/scripts/vm.sh" x86_64 probe "$CACHE/kvm-probe.log" 2>/dev/null &&
		grep -q '^@@ probe-ok' "$CACHE/kvm-probe.log"; then
		res=yes
	fi
fi
trap - EXIT
echo $res >"$CACHE/kvm-ok"
log "KVM for x86_64 guests: $res"
