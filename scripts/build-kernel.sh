#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-kernel.sh ARCH: configure and build the patched kernel for ARCH
# (x86_64 or arm64) in its cached object dir, then the Rust module as an
# external module and the kernel's own modules, installed into
# <objdir>/modroot for the initramfs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1
obj=$(objdir "$arch")
mkdir -p "$obj"

"$TOP/scripts/overlay.sh"

frags=("$TOP/kernel/configs/common.config" "$TOP/kernel/configs/$arch.config")
[ "$VARIANT" = normal ] || frags+=("$TOP/kernel/configs/$VARIANT.config")
[ -e "${frags[-1]}" ] || die "no config fragment for variant $VARIANT"

# Regenerate .config only when a fragment (or the toolchain) changed.
# (Patches count only where they touch a Kconfig file.)
kconfig_patches=$(grep -l '^+++ b/.*Kconfig' "$TOP"/kernel/patches/*.patch || true)
key=$( {
	cat "${frags[@]}" "$TOP/Kconfig" $kconfig_patches
	echo "$VARIANT $(rustc_version)"
} | sha256sum | cut -c1-16)
if [ "$(cat "$obj/.config-key" 2>/dev/null)" != "$key" ]; then
	log "configuring $arch ($VARIANT)"
	kmake "$arch" tinyconfig >/dev/null
	cat "${frags[@]}" >"$obj/fragment.config"
	(cd "$obj" && KCONFIG_CONFIG=.config "$BUILDSRC/scripts/kconfig/merge_config.sh" -m -O "$obj" .config fragment.config >"$obj/merge_config.log" 2>&1)
	kmake "$arch" olddefconfig >"$obj/olddefconfig.log" 2>&1
	# Every requested option must have survived the dependency checks. A
	# later fragment overrides an earlier one, as in merge_config.sh.
	bad=0
	while IFS='=' read -r sym val; do
		got=$(grep "^$sym=" "$obj/.config" | cut -d= -f2- || true)
		if [ "$val" = n ]; then
			[ -z "$got" ] || { echo "config: $sym=$got, wanted off" >&2; bad=1; }
		elif [ "$got" != "$val" ]; then
			echo "config: wanted $sym=$val, got ${got:-unset}" >&2
			bad=1
		fi
	done < <(grep '^CONFIG_' "$obj/fragment.config" | tac | awk -F= '!seen[$1]++' )
	[ $bad = 0 ] || die "the $arch config lost options (see above); fix kernel/configs/"
	echo "$key" >"$obj/.config-key"
fi

log "building the $arch kernel ($VARIANT) in $obj"
t0=$(date +%s)
kmake "$arch" >"$obj/build.log" 2>&1 || { tail -40 "$obj/build.log"; die "kernel build failed (log: $obj/build.log)"; }
log "kernel built in $(($(date +%s) - t0)) s"

rm -rf "$obj/modroot"
kmake "$arch" INSTALL_MOD_PATH="$obj/modroot" INSTALL_MOD_STRIP=1 DEPMOD=true modules_install >/dev/null

# Unless the kernel builds it in-tree (the rustonly variant), the Rust
# iommufd is built as an external module from the overlaid sources. It goes
# to extra/, which depmod ranks below kernel/: where both implementations
# export a symbol, module dependencies (vfio -> iommufd) keep naming the C one.
if [ "$VARIANT" != rustonly ]; then
	kmake "$arch" M="$BUILDSRC/drivers/iommu/iommufd_rs" MO="$obj/iommufd_rs" modules >"$obj/module.log" 2>&1 ||
		{ tail -40 "$obj/module.log"; die "iommufd_rs build failed (log: $obj/module.log)"; }
	kmake "$arch" M="$BUILDSRC/drivers/iommu/iommufd_rs" MO="$obj/iommufd_rs" INSTALL_MOD_DIR=extra \
		INSTALL_MOD_PATH="$obj/modroot" INSTALL_MOD_STRIP=1 DEPMOD=true modules_install >/dev/null
fi
kmake "$arch" headers >/dev/null
log "$arch ($VARIANT): kernel, modules and headers ready"
