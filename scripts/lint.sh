#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt (edition 2021, as the kernel runs it) and clippy (CLIPPY=1) on the
# module, against the x86_64 object dir.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$TOP/scripts/overlay.sh"
rs=$(cd "$TOP" && find drivers rust -name '*.rs')
(cd "$TOP" && rustfmt --edition 2021 --check $rs) || die "rustfmt: run rustfmt --edition 2021 on the files above"
obj=$(objdir x86_64)
kmake x86_64 M="$BUILDSRC/drivers/iommu/iommufd_rs" MO="$obj/iommufd_rs-clippy" CLIPPY=1 modules 2>&1 |
	tee "$obj/clippy.log" | grep -E 'warning|error' && die "clippy found problems (log: $obj/clippy.log)"
log "rustfmt and clippy are clean"
