#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make reference: runs the tests with the upstream selftests against the C
# iommufd on both architectures and writes the per-fixture counts to
# Documentation/reference-counts.md (the numbers the Rust core must match).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# REFERENCE_FROM=FILE takes the tables of an earlier run (the results.md
# that check.sh or results.py --markdown wrote) instead of running again.
rc=0
if [ -n "${REFERENCE_FROM:-}" ]; then
	res=$REFERENCE_FROM
else
	IMPL=c "$TOP/scripts/check.sh" || rc=$?
	res=${IOMMUFD_RS_OUT:-$TOP/out}/check-$VARIANT/results.md
fi
doc=$TOP/Documentation/reference-counts.md
[ "$VARIANT" = normal ] || doc=$TOP/Documentation/reference-counts.$VARIANT.md
{
	echo "# Upstream iommu selftests against the C iommufd ($VARIANT variant)"
	echo
	if [ -n "${REFERENCE_FROM:-}" ]; then
		echo "Written by scripts/reference.sh from the tables of an earlier run of the"
		echo "runner's VMs (REFERENCE_FROM), on $(date -u +%Y-%m-%d): Linux $LINUX_SOURCE_VERSION (Debian), the C"
	else
		echo "Written by \`make reference\` (scripts/reference.sh) from one run of the"
		echo "runner on $(date -u +%Y-%m-%d): Linux $LINUX_SOURCE_VERSION (Debian), the C"
	fi
	echo "iommufd as a module with CONFIG_IOMMUFD_TEST, selftests built unchanged"
	echo "from the pristine tree, $(qemu-system-x86_64 --version | head -1) under"
	echo "$(if [ "$(cat "$CACHE/kvm-ok" 2>/dev/null)" = yes ]; then echo KVM; else echo TCG; fi)."
	echo "Columns are passed / failed / skipped test instances. Why anything"
	echo "fails or skips: Documentation/testing.md."
	echo
	cat "$res"
} >"$doc"
log "wrote $doc"
exit $rc
