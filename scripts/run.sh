#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job (make run): set-up, the patched kernels (x86_64 and arm64)
# and the Rust module, then a VM per arch in which the module provides
# /dev/iommu and tools/iommufd-demo drives it (IOAS, then nesting on the
# mock IOMMU; the C iommufd runs the same, for comparison), and an edu PCI
# device is assigned through vfio-pci on the Rust iommufd with its DMA
# translated. On arm64 the edu then DMAs through real nested translation
# on the emulated SMMUv3 (the guest's stage 1 over iommufd's stage 2, an
# invalidation, a fault forwarded as a vEVENT), step by step. ARCH= runs
# one arch only. Ends with one SUCCESS or FAILURE line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
archs=${ARCH:-x86_64 arm64}
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/run-$VARIANT
mkdir -p "$OUT"

"$TOP/scripts/setup.sh"
for arch in $archs; do
	"$TOP/scripts/build-kernel.sh" "$arch"
	"$TOP/scripts/build-tests.sh" "$arch"
done
"$TOP/scripts/kvm-probe.sh"
ok=1
for arch in $archs; do
	log "booting the $arch VM"
	"$TOP/scripts/vm.sh" "$arch" run "$OUT/$arch.log" || ok=0
	# Show what the guest did: the demo's own lines.
	sed -n '/^@@ suite/,/^@@ end/p' "$OUT/$arch.log" |
		sed 's/^@@ suite demo_\(c\|rust\) impl=.*/--- '"$arch"': iommufd-demo against the \1 iommufd ---/;
		     s/^@@ suite demo_smmuv3 impl=.*/--- '"$arch"': nested DMA through the Rust SMMUv3 backend ---/;
		     s/^@@ suite demo_vtd_shadow impl=.*/--- '"$arch"': nested DMA on the VT-d without nesting, shadowed by the Rust core ---/; /^@@ end/d'
	for demo in c rust; do
		grep -q "^@@ end demo_$demo rc=0" "$OUT/$arch.log" || ok=0
	done
	if [ "$arch" = arm64 ]; then
		grep -q "^@@ end demo_smmuv3 rc=0" "$OUT/$arch.log" || ok=0
	else
		grep -q "^@@ end demo_vtd_shadow rc=0" "$OUT/$arch.log" || ok=0
	fi
done
if [ $ok = 1 ]; then
	echo "make run: SUCCESS: $archs: iommufd_rs served /dev/iommu, nested on the mock and assigned an edu device whose DMA was translated; on arm64 the edu's DMA went through the guest's stage 1 and iommufd's stage 2 on the emulated SMMUv3, with an invalidation and a forwarded fault; on x86_64 through the guest's stage 1 shadowed over the IOAS on the emulated VT-d, which cannot nest (logs: $OUT/)"
else
	echo "make run: FAILURE (logs: $OUT/)"
	exit 1
fi
