#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-tests.sh ARCH: builds the guest programs, statically linked:
#  - the upstream iommu kselftests, from the pristine tree, unchanged;
#  - the project's own programs (tools/*.c, tools/selftests/*.c).
# Output: <objdir>/guest-bin/
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1
obj=$(objdir "$arch")
out=${GUEST_BIN:-$obj/guest-bin}
mkdir -p "$out"

[ -d "$obj/usr/include/linux" ] || die "no kernel headers in $obj; build the kernel first"
cc=gcc
extra=()
if [ "$arch" = arm64 ]; then
	cc=aarch64-linux-gnu-gcc
	extra=(-I"$ARM64_SYSROOT/usr/include" -L"$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu")
fi
cflags=(-static -D_GNU_SOURCE -Wall -O2 -Wno-unused-function -isystem "$obj/usr/include" "${extra[@]}")

# A program is rebuilt only when its inputs (sources, headers, flags) changed.
inputs_key() {
	{
		echo "$cc ${cflags[*]}"
		cat "$@" "$obj/usr/include/linux/iommufd.h"
	} | sha256sum | cut -c1-16
}
# build OUT KEY-INPUTS... -- COMPILE-ARGS...
build() {
	local out_bin=$1 key inputs=()
	shift
	while [ "$1" != -- ]; do inputs+=("$1"); shift; done
	shift
	key=$(inputs_key "${inputs[@]}")
	[ -x "$out_bin" ] && [ "$(cat "$out_bin.key" 2>/dev/null)" = "$key" ] && return 0
	log "building $(basename "$out_bin") ($arch)"
	$cc "${cflags[@]}" -o "$out_bin" "$@"
	echo "$key" >"$out_bin.key"
}

st=$PRISTINE/tools/testing/selftests
deps=("$st/iommu/iommufd_utils.h" "$st/kselftest_harness.h" "$PRISTINE/drivers/iommu/iommufd/iommufd_test.h")
build "$out/iommufd" "$st/iommu/iommufd.c" "${deps[@]}" -- \
	-I"$st" "$st/iommu/iommufd.c" -lcap
build "$out/iommufd_fail_nth" "$st/iommu/iommufd_fail_nth.c" "${deps[@]}" -- \
	-I"$st" "$st/iommu/iommufd_fail_nth.c" -lcap -lpthread

# The project's own guest programs.
for src in "$TOP"/tools/*.c "$TOP"/tools/selftests/*.c "$TOP"/tools/bench/*.c; do
	[ -e "$src" ] || continue
	hdrs=("$TOP"/tools/selftests/*.h)
	[ -e "${hdrs[0]}" ] || hdrs=()
	build "$out/$(basename "$src" .c)" "$src" "${hdrs[@]}" -- \
		-I"$TOP/tools/selftests" -I"$st" "$src" -lpthread
done

# The bench's physical limit (make bench): a module built against the bench
# kernel (tools/bench/limit).
if [ "$VARIANT" = bench ]; then
	mkdir -p "$out/limit"
	kmake "$arch" M="$TOP/tools/bench/limit" MO="$out/limit" modules >"$out/limit.log" 2>&1 ||
		{ tail -20 "$out/limit.log"; die "iommufd_limit.ko build failed (log: $out/limit.log)"; }
	cp "$out/limit/iommufd_limit.ko" "$out/iommufd_limit.ko"
fi

# The second-level guest of job qemu_nested (arm64) runs an edu DMA test
# module (tools/selftests/edu_dma), built against this kernel.
if [ "$arch" = arm64 ]; then
	mkdir -p "$out/edu_dma"
	kmake "$arch" M="$TOP/tools/selftests/edu_dma" MO="$out/edu_dma" modules >"$out/edu_dma.log" 2>&1 ||
		{ tail -20 "$out/edu_dma.log"; die "edu_dma_test.ko build failed (log: $out/edu_dma.log)"; }
	cp "$out/edu_dma/edu_dma_test.ko" "$out/edu_dma_test.ko"
fi
