# SPDX-License-Identifier: GPL-2.0
# Shared settings for the iommufd-rs scripts. Sourced, never run.
#
# Every pinned version lives here. When Debian stops serving a pinned package,
# bump the variable named in the error message and rerun.

# Debian's Linux 7.3 source package (suite trixie-backports, arch all).
LINUX_SOURCE_VERSION=${LINUX_SOURCE_VERSION:-7.3.4-1~bpo13+1}
# bindgen-cli from crates.io (kernel minimum is 0.71.1).
BINDGEN_VERSION=${BINDGEN_VERSION:-0.73.2}
# libclang from PyPI (the kernel wants >= 17.0.1; bookworm only has 14).
LIBCLANG_VERSION=${LIBCLANG_VERSION:-18.1.1}
# Debian mirror, as named by the machine's own apt sources.
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Minimum QEMU (bookworm-backports carries 10.0.2).
QEMU_MIN_MAJOR=10
# QEMU that runs inside the test VMs as a client of /dev/iommu (scripts/qemu11.sh;
# Debian trixie-backports, qemu-system-x86 for x86_64, qemu-system-arm for arm64).
QEMU11_VERSION=${QEMU11_VERSION:-1:11.1.3+ds-2~bpo13+1}

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${IOMMUFD_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommufd-rs}
JOBS=${JOBS:-$(($(nproc) + 1))}

LINUX_DIR=$CACHE/linux/$LINUX_SOURCE_VERSION
PRISTINE=$LINUX_DIR/pristine
BUILDSRC=$LINUX_DIR/buildsrc
BINDGEN_DIR=$CACHE/tools/bindgen-$BINDGEN_VERSION
LIBCLANG_DIR=$CACHE/tools/libclang-$LIBCLANG_VERSION/libclang-$LIBCLANG_VERSION.data/platlib/clang/native
ARM64_SYSROOT=$CACHE/arm64-sysroot

rustc_version() {
	rustc --version | awk '{print $2}'
}

RUST_SRC_DIR=$CACHE/tools/rust-src-$(rustc_version)

log() {
	printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Target architectures and their kernel/QEMU names.
kernel_arch() {
	case $1 in
	x86_64) echo x86 ;;
	arm64) echo arm64 ;;
	*) die "unknown arch $1" ;;
	esac
}

cross_compile() {
	case $1 in
	x86_64) echo "" ;;
	arm64) echo aarch64-linux-gnu- ;;
	esac
}

# The variant is "normal", "debug" (KASAN, lockdep, kmemleak, fault injection),
# "rustonly" (the Rust iommufd built in, the C nesting entry points out) or
# "bench" (a realistic configuration for make bench: SMP, SLUB, -O2).
VARIANT=${VARIANT:-normal}
case ${DEBUG:-0} in 1 | y | yes) VARIANT=debug ;; esac

objdir() {
	echo "$LINUX_DIR/obj-$1-$VARIANT"
}

# The debug variant is built with clang: with Rust enabled, the kernel only
# allows KASAN when the C compiler is clang (init/Kconfig, config RUST).
LLVM_SUFFIX=-19
variant_make_args() {
	[ "$VARIANT" = debug ] && echo "LLVM=$LLVM_SUFFIX"
	return 0
}
variant_libclang() {
	if [ "$VARIANT" = debug ]; then echo "/usr/lib/llvm$LLVM_SUFFIX/lib"; else echo "$LIBCLANG_DIR"; fi
}

# Environment for every kernel make invocation.
kmake() {
	local arch=$1
	shift
	PATH=$BINDGEN_DIR/bin:$PATH \
		LIBCLANG_PATH=$(variant_libclang) \
		RUST_LIB_SRC=$RUST_SRC_DIR/usr/src/rustc-$(rustc_version)/library \
		make -C "$BUILDSRC" O="$(objdir "$arch")" ARCH="$(kernel_arch "$arch")" \
		CROSS_COMPILE="$(cross_compile "$arch")" $(variant_make_args) -j"$JOBS" "$@"
}
