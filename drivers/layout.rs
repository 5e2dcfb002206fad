// SPDX-License-Identifier: GPL-2.0

//! Build-time checks of the C structures Rust lays out itself.
//!
//! The kernel crate's IOMMU abstractions embed C structures at the size bindgen gives them
//! (`DriverDomain`, `IommuDevice`, `BusDevice`, attach handles) and read or write some of their
//! fields directly. bindgen parses the headers with clang, while the kernel is built with GCC
//! (normal variant), and the two have disagreed before. `drivers/layout_c.c` is compiled by the
//! kernel's C compiler to assembly only; Kbuild turns the sizes, alignments and offsets it
//! emits into the constants of `layout_c_gen.rs`, which are compared here with bindgen's
//! layout. A difference fails the build.

use core::mem::{
    align_of,
    offset_of,
    size_of, //
};
use kernel::bindings;

/// The C compiler's sizes, alignments and offsets.
mod c {
    include!(env!("IOMMUFD_RS_LAYOUT"));
}

/// Size and alignment of `bindings::$t` are the C compiler's `$name_SIZE` and `$name_ALIGN`.
macro_rules! same_size {
    ($t:ident, $size:ident, $align:ident) => {
        const _: () = assert!(
            size_of::<bindings::$t>() == c::$size && align_of::<bindings::$t>() == c::$align,
            concat!(
                "struct ",
                stringify!($t),
                ": bindgen and the C compiler disagree"
            )
        );
    };
}

/// The offset of `bindings::$t::$f` is the C compiler's `$name`.
macro_rules! same_offset {
    ($t:ident . $f:ident, $name:ident) => {
        const _: () = assert!(
            offset_of!(bindings::$t, $f) == c::$name,
            concat!(
                "struct ",
                stringify!($t),
                ", field ",
                stringify!($f),
                ": bindgen and the C compiler disagree"
            )
        );
    };
}

same_size!(iommu_domain, IOMMU_DOMAIN_SIZE, IOMMU_DOMAIN_ALIGN);
same_size!(
    iommu_domain_ops,
    IOMMU_DOMAIN_OPS_SIZE,
    IOMMU_DOMAIN_OPS_ALIGN
);
same_size!(iommu_dirty_ops, IOMMU_DIRTY_OPS_SIZE, IOMMU_DIRTY_OPS_ALIGN);
same_size!(iommu_ops, IOMMU_OPS_SIZE, IOMMU_OPS_ALIGN);
same_size!(iommu_device, IOMMU_DEVICE_SIZE, IOMMU_DEVICE_ALIGN);
same_size!(device, DEVICE_SIZE, DEVICE_ALIGN);
same_size!(device_type, DEVICE_TYPE_SIZE, DEVICE_TYPE_ALIGN);
same_size!(bus_type, BUS_TYPE_SIZE, BUS_TYPE_ALIGN);
same_size!(notifier_block, NOTIFIER_BLOCK_SIZE, NOTIFIER_BLOCK_ALIGN);
same_size!(
    iommu_attach_handle,
    IOMMU_ATTACH_HANDLE_SIZE,
    IOMMU_ATTACH_HANDLE_ALIGN
);
same_size!(list_head, LIST_HEAD_SIZE, LIST_HEAD_ALIGN);
same_size!(xarray, XARRAY_SIZE, XARRAY_ALIGN);
same_size!(file_operations, FILE_OPERATIONS_SIZE, FILE_OPERATIONS_ALIGN);

same_offset!(iommu_domain.type_, IOMMU_DOMAIN_TYPE);
same_offset!(iommu_domain.ops, IOMMU_DOMAIN_OPS_PTR);
same_offset!(iommu_domain.dirty_ops, IOMMU_DOMAIN_DIRTY_OPS);
same_offset!(iommu_domain.owner, IOMMU_DOMAIN_OWNER);
same_offset!(iommu_domain.pgsize_bitmap, IOMMU_DOMAIN_PGSIZE_BITMAP);
same_offset!(iommu_domain.geometry, IOMMU_DOMAIN_GEOMETRY);
same_offset!(iommu_ops.capable, IOMMU_OPS_CAPABLE);
same_offset!(iommu_ops.hw_info, IOMMU_OPS_HW_INFO);
same_offset!(
    iommu_ops.domain_alloc_paging_flags,
    IOMMU_OPS_DOMAIN_ALLOC_PAGING_FLAGS
);
same_offset!(iommu_ops.probe_device, IOMMU_OPS_PROBE_DEVICE);
same_offset!(iommu_ops.device_group, IOMMU_OPS_DEVICE_GROUP);
same_offset!(iommu_ops.blocked_domain, IOMMU_OPS_BLOCKED_DOMAIN);
same_offset!(iommu_ops.default_domain, IOMMU_OPS_DEFAULT_DOMAIN);
same_offset!(iommu_ops.owner, IOMMU_OPS_OWNER);
same_offset!(
    iommu_domain_ops.enforce_cache_coherency,
    IOMMU_DOMAIN_OPS_ENFORCE_CC
);
same_offset!(iommu_device.ops, IOMMU_DEVICE_OPS);
same_offset!(iommu_device.max_pasids, IOMMU_DEVICE_MAX_PASIDS);
same_offset!(dev_iommu.iommu_dev, DEV_IOMMU_IOMMU_DEV);
same_offset!(dev_iommu.max_pasids, DEV_IOMMU_MAX_PASIDS);
same_offset!(device.iommu, DEVICE_IOMMU);
same_offset!(device.release, DEVICE_RELEASE);
same_offset!(device.type_, DEVICE_TYPE_PTR);
same_offset!(device.bus, DEVICE_BUS);
same_offset!(bus_type.name, BUS_TYPE_NAME);
same_offset!(file.f_op, FILE_F_OP);
same_offset!(file.private_data, FILE_PRIVATE_DATA);
same_offset!(xarray.xa_head, XARRAY_XA_HEAD);

/// The SMMUv3 nesting surface (`kernel::iommu::arm_smmu_v3`): `arm_smmu_rust_info` is a buffer
/// Rust passes for C to fill, `iommufd_viommu_core_ops` a table Rust defines for C to call.
#[cfg(CONFIG_ARM_SMMU_V3_RUST_NESTING)]
mod smmuv3 {
    use super::c;
    use core::mem::{
        align_of,
        offset_of,
        size_of, //
    };
    use kernel::bindings;

    same_size!(
        arm_smmu_rust_info,
        ARM_SMMU_RUST_INFO_SIZE,
        ARM_SMMU_RUST_INFO_ALIGN
    );
    same_offset!(arm_smmu_rust_info.features, ARM_SMMU_RUST_INFO_FEATURES);
    same_offset!(arm_smmu_rust_info.asid_bits, ARM_SMMU_RUST_INFO_ASID_BITS);
    same_offset!(arm_smmu_rust_info.ssid_bits, ARM_SMMU_RUST_INFO_SSID_BITS);
    same_offset!(
        arm_smmu_rust_info.num_streams,
        ARM_SMMU_RUST_INFO_NUM_STREAMS
    );
    same_offset!(arm_smmu_rust_info.sid, ARM_SMMU_RUST_INFO_SID);
    same_offset!(arm_smmu_rust_info.max_cmds, ARM_SMMU_RUST_INFO_MAX_CMDS);
    same_offset!(arm_smmu_rust_info.idr, ARM_SMMU_RUST_INFO_IDR);
    same_offset!(arm_smmu_rust_info.iidr, ARM_SMMU_RUST_INFO_IIDR);
    same_offset!(arm_smmu_rust_info.aidr, ARM_SMMU_RUST_INFO_AIDR);
    same_size!(
        iommufd_viommu_core_ops,
        IOMMUFD_VIOMMU_CORE_OPS_SIZE,
        IOMMUFD_VIOMMU_CORE_OPS_ALIGN
    );
    same_offset!(
        iommufd_viommu_core_ops.get_vdev_id,
        IOMMUFD_VIOMMU_CORE_OPS_GET_VDEV_ID
    );
    same_offset!(
        iommufd_viommu_core_ops.report_event,
        IOMMUFD_VIOMMU_CORE_OPS_REPORT_EVENT
    );
}

/// The VT-d nesting surface (`kernel::iommu::intel_vtd`): `intel_iommu_rust_info` is a buffer
/// Rust passes for C to fill, the nested configuration and the cache tag are what C hands the
/// Rust callbacks, `iommu_hwpt_vtd_s1` what Rust hands C.
#[cfg(CONFIG_INTEL_IOMMU_RUST_NESTING)]
mod vtd {
    use super::c;
    use core::mem::{
        align_of,
        offset_of,
        size_of, //
    };
    use kernel::bindings;

    same_size!(
        intel_iommu_rust_info,
        INTEL_IOMMU_RUST_INFO_SIZE,
        INTEL_IOMMU_RUST_INFO_ALIGN
    );
    same_offset!(intel_iommu_rust_info.cap, INTEL_IOMMU_RUST_INFO_CAP);
    same_offset!(intel_iommu_rust_info.ecap, INTEL_IOMMU_RUST_INFO_ECAP);
    same_offset!(intel_iommu_rust_info.seq_id, INTEL_IOMMU_RUST_INFO_SEQ_ID);
    same_offset!(intel_iommu_rust_info.flags, INTEL_IOMMU_RUST_INFO_FLAGS);
    same_size!(
        intel_iommu_rust_nested_cfg,
        INTEL_IOMMU_RUST_NESTED_CFG_SIZE,
        INTEL_IOMMU_RUST_NESTED_CFG_ALIGN
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.pgtbl_addr,
        INTEL_IOMMU_RUST_NESTED_CFG_PGTBL_ADDR
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.flags,
        INTEL_IOMMU_RUST_NESTED_CFG_FLAGS
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.addr_width,
        INTEL_IOMMU_RUST_NESTED_CFG_ADDR_WIDTH
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.did,
        INTEL_IOMMU_RUST_NESTED_CFG_DID
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.s2_aw,
        INTEL_IOMMU_RUST_NESTED_CFG_S2_AW
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.cap,
        INTEL_IOMMU_RUST_NESTED_CFG_CAP
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.ecap,
        INTEL_IOMMU_RUST_NESTED_CFG_ECAP
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.s2_ptptr,
        INTEL_IOMMU_RUST_NESTED_CFG_S2_PTPTR
    );
    same_offset!(
        intel_iommu_rust_nested_cfg.s2_flags,
        INTEL_IOMMU_RUST_NESTED_CFG_S2_FLAGS
    );
    same_size!(
        intel_iommu_rust_tag,
        INTEL_IOMMU_RUST_TAG_SIZE,
        INTEL_IOMMU_RUST_TAG_ALIGN
    );
    same_offset!(intel_iommu_rust_tag.cap, INTEL_IOMMU_RUST_TAG_CAP);
    same_offset!(intel_iommu_rust_tag.ecap, INTEL_IOMMU_RUST_TAG_ECAP);
    same_offset!(intel_iommu_rust_tag.type_, INTEL_IOMMU_RUST_TAG_TYPE);
    same_offset!(intel_iommu_rust_tag.pasid, INTEL_IOMMU_RUST_TAG_PASID);
    same_offset!(intel_iommu_rust_tag.did, INTEL_IOMMU_RUST_TAG_DID);
    same_offset!(intel_iommu_rust_tag.sid, INTEL_IOMMU_RUST_TAG_SID);
    same_offset!(intel_iommu_rust_tag.pfsid, INTEL_IOMMU_RUST_TAG_PFSID);
    same_offset!(intel_iommu_rust_tag.qdep, INTEL_IOMMU_RUST_TAG_QDEP);
    same_offset!(intel_iommu_rust_tag.extra, INTEL_IOMMU_RUST_TAG_EXTRA);
    same_size!(
        iommu_hwpt_vtd_s1,
        IOMMU_HWPT_VTD_S1_SIZE,
        IOMMU_HWPT_VTD_S1_ALIGN
    );
    same_offset!(iommu_hwpt_vtd_s1.flags, IOMMU_HWPT_VTD_S1_FLAGS);
    same_offset!(iommu_hwpt_vtd_s1.pgtbl_addr, IOMMU_HWPT_VTD_S1_PGTBL_ADDR);
    same_offset!(iommu_hwpt_vtd_s1.addr_width, IOMMU_HWPT_VTD_S1_ADDR_WIDTH);
}
