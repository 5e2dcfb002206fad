#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check): set-up, both kernels, the guest programs,
# then every suite in a VM per architecture. Ends with
# "N passed, N failed, N skipped"; exits non-zero on any failure.
#
#   ARCHS="x86_64 arm64"  architectures to run
#   IMPL=c|rust|both      which iommufd the upstream selftests run against
#   DEBUG=1               the debug variant (KASAN, lockdep, kmemleak)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ARCHS=${ARCHS:-x86_64 arm64}
IMPL=${IMPL:-c}
case $IMPL in
c | rust) impls=$IMPL ;;
both) impls=c,rust ;;
*) die "IMPL must be c, rust or both" ;;
esac
OUT=${IOMMUFD_RS_OUT:-$TOP/out}/check-$VARIANT
rm -rf "$OUT"
mkdir -p "$OUT"

t_start=$(date +%s)
stamp() { echo "$1 $(($(date +%s) - t_start))" >>"$OUT/times"; }
"$TOP/scripts/setup.sh"
stamp setup
"$TOP/scripts/host-tests.sh" "$OUT/host.log"
for arch in $ARCHS; do
	"$TOP/scripts/build-kernel.sh" "$arch"
	"$TOP/scripts/build-tests.sh" "$arch"
	stamp "build-$arch"
done
"$TOP/scripts/kvm-probe.sh"

# rustfmt and clippy on the module, as one more suite.
{
	echo "@@ suite rust_lint impl=rust"
	if "$TOP/scripts/lint.sh" "${ARCHS%% *}" >"$OUT/lint.out" 2>&1; then echo "ok 1 rust_lint.rustfmt_and_clippy_clean"; else
		sed 's/^/# /' "$OUT/lint.out"
		echo "not ok 1 rust_lint.rustfmt_and_clippy_clean"
	fi
	echo "@@ end rust_lint rc=0"
	echo "@@ done"
} >"$OUT/lint.log"

logs=("host=$OUT/host.log" "lint=$OUT/lint.log")
for arch in $ARCHS; do
	log "running the $arch VM ($VARIANT, upstream selftests against: $impls)"
	"$TOP/scripts/vm.sh" "$arch" check "$OUT/$arch.log" "impls=$impls" || true
	stamp "vm-$arch"
	logs+=("$arch-$VARIANT=$OUT/$arch.log")
done
echo
log "times (s since start): $(tr '\n' ' ' <"$OUT/times")"
"$TOP/scripts/results.py" --markdown "$OUT/results.md" "${logs[@]}"
