#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Decides whether the x86_64 VMs may use KVM: only when /dev/kvm is usable,
# the CPU shows vmx or svm, and a KVM guest really boots the test kernel
# (on some machines /dev/kvm exists but guests hang). Result: $CACHE/kvm-ok.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
res=no
if [ "${USE_KVM:-auto}" != no ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo yes >"$CACHE/kvm-ok"
	if VM_TIMEOUT=60 "$TOP/scripts/vm.sh" x86_64 probe "$CACHE/kvm-probe.log" 2>/dev/null &&
		grep -q '^@@ probe-ok' "$CACHE/kvm-probe.log"; then
		res=yes
	fi
fi
echo $res >"$CACHE/kvm-ok"
log "KVM for x86_64 guests: $res"
