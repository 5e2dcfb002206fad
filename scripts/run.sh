#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job (make run): set-up, the patched x86_64 kernel and the Rust
# module, then a VM with emulated VT-d in which the module provides
# /dev/iommu and tools/iommufd-demo drives it (IOAS, then nesting on the
# mock IOMMU; the C iommufd runs the same, for comparison), and an edu PCI
# device is assigned through vfio-pci on the Rust iommufd with its DMA
# translated. Ends with one SUCCESS or FAILURE line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=${ARCH:-x86_64}
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/run-$VARIANT
mkdir -p "$OUT"

"$TOP/scripts/setup.sh"
"$TOP/scripts/build-kernel.sh" "$arch"
"$TOP/scripts/build-tests.sh" "$arch"
"$TOP/scripts/kvm-probe.sh"
log "booting the $arch VM"
ok=1
"$TOP/scripts/vm.sh" "$arch" run "$OUT/$arch.log" || ok=0
# Show what the guest did: the demo's own lines.
sed -n '/^@@ suite/,/^@@ end/p' "$OUT/$arch.log" | sed 's/^@@ suite demo_\(.*\) impl=.*/--- iommufd-demo against the \1 iommufd ---/; /^@@ end/d'
for impl in c rust; do
	grep -q "^@@ end demo_$impl rc=0" "$OUT/$arch.log" || ok=0
done
if [ $ok = 1 ]; then
	echo "make run: SUCCESS: $arch kernel booted with emulated IOMMU; iommufd_rs served /dev/iommu, nested on the mock, and assigned an edu device whose DMA was translated (log: $OUT/$arch.log)"
else
	echo "make run: FAILURE (log: $OUT/$arch.log)"
	exit 1
fi
