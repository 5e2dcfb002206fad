#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# qemu11.sh ARCH: a QEMU 11 root for the test VM of ARCH (x86_64 or arm64),
# to run inside that VM as a VMM on /dev/iommu (issue 15, stage 1). Prints
# the root's path.
#
# Debian's trixie-backports has QEMU 11 binaries; they need trixie's
# libraries, so the package and its whole dependency closure are downloaded
# with a private apt state (an empty status file: nothing counts as
# installed) and unpacked with dpkg -x into one root, which the guest starts
# through the root's own dynamic loader. Nothing is installed on the host.
# The root is cached under $CACHE/qemu11/<deb-arch>-<version>/root and made
# again only when missing. Documentation, locales, man pages and firmware the
# VMs never load are left out: the root goes into the guest's initramfs. For
# arm64 the UEFI firmware of Debian's qemu-efi-aarch64 (trixie) is kept beside
# the root, as <base>/QEMU_EFI.fd, for the second-level guest of
# scripts/qemu-nested.sh (QEMU's accelerated vSMMUv3 needs ACPI, so a UEFI
# boot); the check VMs do not carry it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1
case $arch in
x86_64) darch=amd64 pkg=qemu-system-x86 bin=qemu-system-x86_64 efi=
	ld=usr/lib64/ld-linux-x86-64.so.2 libdir=usr/lib/x86_64-linux-gnu ;;
arm64) darch=arm64 pkg=qemu-system-arm bin=qemu-system-aarch64 efi=qemu-efi-aarch64
	ld=usr/lib/ld-linux-aarch64.so.1 libdir=usr/lib/aarch64-linux-gnu ;;
*) die "qemu11.sh: unknown arch $arch (x86_64 or arm64)" ;;
esac
ver=$QEMU11_VERSION
base=$CACHE/qemu11/$darch-${ver/:/_}
root=$base/root
# Bumped whenever what this script keeps in the root changes.
layout=2
ready() {
	[ "$(cat "$root/.complete" 2>/dev/null)" = "$layout" ] && { [ -z "$efi" ] || [ -s "$base/QEMU_EFI.fd" ]; }
}
if ready; then
	echo "$root"
	exit 0
fi
# Two VMs of one architecture may be packed at once (make check's variants).
mkdir -p "$CACHE/qemu11"
exec 9>"$CACHE/qemu11/.lock-$darch"
flock 9
if ready; then
	echo "$root"
	exit 0
fi

# --- a private apt state for trixie-backports + trixie of one architecture --
papt_dir=$CACHE/qemu11/apt-$darch
mkdir -p "$papt_dir/lists/partial" "$papt_dir/cache/archives/partial" "$papt_dir/etc"
: >"$papt_dir/status"
cat >"$papt_dir/etc/sources.list" <<EOF
deb [arch=$darch] $DEBIAN_MIRROR trixie-backports main
deb [arch=$darch] $DEBIAN_MIRROR trixie main
EOF
papt() {
	local tool=$1
	shift
	$tool -q -o Dir::Etc::sourcelist="$papt_dir/etc/sources.list" \
		-o Dir::Etc::sourceparts=/dev/null \
		-o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=/dev/null \
		-o Dir::State::Lists="$papt_dir/lists" \
		-o Dir::State::status="$papt_dir/status" \
		-o Dir::Cache="$papt_dir/cache" \
		-o APT::Architecture="$darch" -o APT::Architectures::="$darch" \
		-o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}
log "qemu11: refreshing the private apt index (trixie-backports + trixie, $darch)"
papt apt-get update >/dev/null
if [ -n "$efi" ] && [ ! -s "$base/QEMU_EFI.fd" ]; then
	log "qemu11: downloading $efi (trixie)"
	papt apt-get install -y --download-only --no-install-recommends "$efi" >"$base.efi.log" 2>&1 ||
		{ tail -20 "$base.efi.log"; die "apt could not fetch $efi (log: $base.efi.log)"; }
	rm -rf "$base.efi"
	dpkg-deb -x "$(ls "$papt_dir"/cache/archives/"$efi"_*.deb | tail -1)" "$base.efi"
	[ -s "$base.efi/usr/share/qemu-efi-aarch64/QEMU_EFI.fd" ] || die "qemu11: $efi has no QEMU_EFI.fd"
	mkdir -p "$base"
	cp "$base.efi/usr/share/qemu-efi-aarch64/QEMU_EFI.fd" "$base/QEMU_EFI.fd.tmp"
	mv "$base/QEMU_EFI.fd.tmp" "$base/QEMU_EFI.fd"
	rm -rf "$base.efi"
fi
if [ "$(cat "$root/.complete" 2>/dev/null)" = "$layout" ]; then
	echo "$root"
	exit 0
fi
log "qemu11: downloading $pkg=$ver and its dependency closure ($darch)"
papt apt-get install -y --download-only --no-install-recommends \
	-t trixie-backports "$pkg=$ver" >"$base.apt.log" 2>&1 || {
	tail -20 "$base.apt.log"
	die "apt could not fetch $pkg=$ver for $darch (log: $base.apt.log). If Debian no longer serves it, set QEMU11_VERSION in scripts/lib.sh to a version 'apt-cache madison $pkg' lists for trixie-backports."
}

# --- unpack into the root ------------------------------------------------------
rm -rf "$root"
mkdir -p "$root"
debs=("$papt_dir"/cache/archives/*.deb)
n=0
for deb in "${debs[@]}"; do
	dpkg-deb -x "$deb" "$root"
	n=$((n + 1))
done
debs_mb=$(du -cm "${debs[@]}" | tail -1 | cut -f1)
# The package set of this root, for the record.
for deb in "${debs[@]}"; do basename "$deb"; done >"$base/packages"
# Debian's usrmerge: /lib and /lib64 are links in the real system; the root
# is started through usr/ directly, but keep the links for scripts.
[ -e "$root/lib" ] || ln -s usr/lib "$root/lib"
[ -e "$root/lib64" ] || ln -s usr/lib64 "$root/lib64"

# --- keep it small ------------------------------------------------------------
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,zsh,fish,menu,applications,icons,pixmaps,polkit-1,perl5,perl} \
	"$root"/usr/share/common-licenses "$root"/etc/{init.d,logrotate.d,cron.*} \
	"$root"/usr/lib/systemd "$root"/lib/systemd "$root"/usr/lib/udev "$root"/var
# Firmware: the VMs pass their own -bios; none of the ROM images (SeaBIOS,
# iPXE, OVMF, VGA BIOS) is loaded with -nodefaults and vfio-pci on edu. The
# x86 machines look for the 9 KiB kvmvapic.bin (an error message without it).
vapic=
[ -f "$root/usr/share/qemu/kvmvapic.bin" ] && vapic=$(mktemp) &&
	cp "$root/usr/share/qemu/kvmvapic.bin" "$vapic"
rm -rf "$root"/usr/share/qemu "$root"/usr/share/seabios "$root"/usr/share/ipxe \
	"$root"/usr/share/ovmf "$root"/usr/share/OVMF "$root"/usr/share/qemu-efi* \
	"$root"/usr/lib/ipxe "$root"/usr/share/AAVMF
mkdir -p "$root/usr/share/qemu"
[ -n "$vapic" ] && mv "$vapic" "$root/usr/share/qemu/kvmvapic.bin" && chmod 644 "$root/usr/share/qemu/kvmvapic.bin"
# Only the one emulator binary the VM of ARCH needs, and the loader's friends.
find "$root/usr/bin" -mindepth 1 ! -name "$bin" -delete
rm -rf "$root"/usr/sbin "$root"/sbin "$root"/bin "$root"/usr/libexec/qemu-bridge-helper
# Static archives, headers, gconv modules and Perl are never used.
find "$root" \( -name '*.a' -o -name '*.h' \) -type f -delete
rm -rf "$root"/usr/include "$root/$libdir"/gconv "$root/$libdir"/perl* \
	"$root/$libdir"/gdk-pixbuf-2.0 "$root/$libdir"/gio
# QEMU's loadable modules (display devices, the qtest accelerator) are not
# used: -accel tcg is built in.
rm -rf "$root/$libdir/qemu"
# Of the libraries, only the closure of the emulator's DT_NEEDED entries
# (readelf reads either architecture's ELF on the host). The libraries QEMU
# or glib would dlopen (modules, NSS, SASL, PAM plug-ins) are not needed by
# -nodefaults -display none with -qtest stdio.
declare -A keep=()
todo=("$root/usr/bin/$bin")
while [ ${#todo[@]} -gt 0 ]; do
	f=${todo[0]}
	todo=("${todo[@]:1}")
	for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[ -n "${keep[$lib]:-}" ] && continue
		keep[$lib]=1
		p=$root/$libdir/$lib
		[ -e "$p" ] || die "qemu11: $bin needs $lib, which no package of the closure has"
		todo+=("$(readlink -f "$p")")
	done
done
for f in "$root/$libdir"/* "$root/$libdir"/.[!.]*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	name=${f##*/}
	[ -n "${keep[$name]:-}" ] && continue
	# A library's real file is kept when a kept soname links to it.
	real=0
	for k in "${!keep[@]}"; do
		[ "$(readlink -f "$root/$libdir/$k")" = "$(readlink -f "$f")" ] && { real=1; break; }
	done
	[ $real = 1 ] && continue
	case $name in ld-linux*) continue ;; esac
	rm -rf "$f"
done
rm -rf "$root"/usr/lib/{python3,python3.*,apt,dpkg,mime,tmpfiles.d,sysusers.d,sasl2,ssl,modprobe.d,binfmt.d} \
	"$root"/usr/share/{glib-2.0,alsa,pam-configs,pmdk,debconf,doc-base,base-passwd} "$root"/etc
[ -x "$root/usr/bin/$bin" ] || die "qemu11: $pkg has no usr/bin/$bin"
[ -e "$root/$ld" ] || die "qemu11: no dynamic loader $ld in the root"
echo "$ld" >"$base/loader"
echo "$libdir" >"$base/libdir"
echo "$bin" >"$base/bin"

# --- check it on the host where the host can run it ----------------------------
if [ "$darch" = amd64 ] && [ "$(uname -m)" = x86_64 ]; then
	out=$("$root/$ld" --library-path "$root/$libdir" "$root/usr/bin/$bin" --version | head -1)
	case $out in
	"QEMU emulator version 11."*) ;;
	*) die "qemu11: the root's $bin does not run: '$out'" ;;
	esac
	log "qemu11: $out"
fi
log "qemu11: $n packages ($debs_mb MB of .debs), root $(du -sm "$root" | cut -f1) MB: $root"
echo "$layout" >"$root/.complete"
echo "$root"
