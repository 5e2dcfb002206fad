#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt (edition 2021, as the kernel runs it) and clippy (CLIPPY=1) on the
# module of this checkout, against the object dir of ARCH (default x86_64).
# Nothing in the cache is written (the module is built into out/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
rs=$(cd "$TOP" && find drivers rust -name '*.rs' 2>/dev/null || true)
[ -n "$rs" ] || die "no Rust sources found"
(cd "$TOP" && rustfmt --edition 2021 --check $rs) || die "rustfmt: run rustfmt --edition 2021 on the files above"
arch=${1:-x86_64}
obj=$(objdir "$arch")
# A fresh output dir, so that clippy really runs on every file.
out=${IOMMUFD_RS_OUT:-$TOP/out}/clippy-$arch-$VARIANT
rm -rf "$out"
mkdir -p "$out"
# A build that fails is a problem too (the exit status of the build, not of the grep, decides).
rc=0
kmake "$arch" M="$TOP" MO="$out" CLIPPY=1 modules >"$out.log" 2>&1 || rc=$?
if grep -E 'warning|error' "$out.log" || [ "$rc" != 0 ]; then
	die "clippy found problems or the build failed (rc $rc, log: $out.log)"
fi
log "rustfmt and clippy are clean"
