#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt (edition 2021, as the kernel runs it) and clippy (CLIPPY=1) on the
# module, against the object dir of ARCH (default x86_64).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$TOP/scripts/overlay.sh"
rs=$(cd "$TOP" && find drivers rust -name '*.rs' 2>/dev/null || true)
[ -n "$rs" ] || die "no Rust sources found"
(cd "$TOP" && rustfmt --edition 2021 --check $rs) || die "rustfmt: run rustfmt --edition 2021 on the files above"
arch=${1:-x86_64}
obj=$(objdir "$arch")
# A fresh output dir, so that clippy really runs on every file.
rm -rf "$obj/iommufd_rs-clippy"
kmake "$arch" M="$BUILDSRC/drivers/iommu/iommufd_rs" MO="$obj/iommufd_rs-clippy" CLIPPY=1 modules 2>&1 |
	tee "$obj/clippy.log" | grep -E 'warning|error' && die "clippy found problems (log: $obj/clippy.log)"
log "rustfmt and clippy are clean"
