# SPDX-License-Identifier: GPL-2.0
#
# iommufd-rs: user entry points. (Kbuild, not this file, is what the kernel
# build reads for the module.) Every target installs what it needs first.
#
#   make run       main job: build the x86_64 kernel + Rust module, boot, drive /dev/iommu
#   make check     all tests on x86_64 and arm64; ends with "N passed, N failed, N skipped"
#   make setup     only the set-up (packages, kernel source, toolchain pieces)
#   make kernel    only build kernels and modules (ARCHS="x86_64 arm64")
#   make patches   write the kernel changes as a git format-patch series to out/patches
#   make lint      rustfmt check and clippy on the module (x86_64 object dir)
#   make reference rerun the C iommufd reference counts into Documentation/
#   make bench     micro-benchmarks: C, Rust and the physical limit, bench kernel, -icount (not a test)
#   make fuzz      the long fuzz run: 1.1 million ioctls against Rust, debug kernel
#   make qemu-nested  QEMU 11 runs a nested guest on the Rust iommufd (arm64, vSMMUv3 accel)
#
# Variables: DEBUG=1 (debug variant), IMPL=c|rust|both, ARCHS=..., JOBS=N,
# IOMMUFD_RS_CACHE=dir (default ~/.cache/iommufd-rs).

ARCHS ?= x86_64 arm64
export ARCHS

.PHONY: run check setup kernel patches lint reference bench fuzz qemu-nested

run:
	@scripts/run.sh

check:
	@scripts/check.sh

setup:
	@scripts/setup.sh

kernel: setup
	@for a in $(ARCHS); do scripts/build-kernel.sh $$a || exit 1; done

patches:
	@scripts/patches.sh

lint:
	@scripts/lint.sh

reference:
	@scripts/reference.sh

bench:
	@scripts/bench.sh

fuzz:
	@scripts/fuzz.sh

qemu-nested:
	@scripts/qemu-nested.sh
