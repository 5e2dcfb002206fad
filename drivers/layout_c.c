// SPDX-License-Identifier: GPL-2.0
/*
 * The C compiler's view of the C structures that Rust allocates (embeds at
 * bindgen's size) or whose fields Rust reads and writes directly. Compiled
 * to assembly only, as the kernel's asm-offsets: each DEFINE() leaves a
 * "->NAME VALUE" string there, which Kbuild turns into a Rust constant
 * (drivers/layout_c_gen.rs); drivers/layout.rs compares them with the layout
 * of the bindgen types at build time. Nothing of this file is linked.
 *
 * bindgen parses the headers with clang while the kernel is built with GCC
 * (the normal variant), and the two have disagreed before (task_struct).
 */
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/iommu.h>
#include <linux/kbuild.h>
#include <linux/list.h>
#include <linux/notifier.h>
#include <linux/xarray.h>
#ifdef CONFIG_ARM_SMMU_V3_RUST_NESTING
#include <linux/arm-smmu-v3-rust.h>
#endif
#ifdef CONFIG_INTEL_IOMMU_RUST_NESTING
#include <linux/intel-iommu-rust.h>
#include <uapi/linux/iommufd.h>
#endif

#define SIZE(name, type)                                                     \
	do {                                                                 \
		DEFINE(name##_SIZE, sizeof(struct type));                    \
		DEFINE(name##_ALIGN, __alignof__(struct type));              \
	} while (0)
#define OFF(name, type, field) DEFINE(name, offsetof(struct type, field))

int main(void);
int main(void)
{
	/* Allocated by Rust: DriverDomain, IommuDevice, BusDevice, attach
	 * handles, the reserved-region list head, the module's XArray. */
	SIZE(IOMMU_DOMAIN, iommu_domain);
	SIZE(IOMMU_DOMAIN_OPS, iommu_domain_ops);
	SIZE(IOMMU_DIRTY_OPS, iommu_dirty_ops);
	SIZE(IOMMU_OPS, iommu_ops);
	SIZE(IOMMU_DEVICE, iommu_device);
	SIZE(DEVICE, device);
	SIZE(DEVICE_TYPE, device_type);
	SIZE(BUS_TYPE, bus_type);
	SIZE(NOTIFIER_BLOCK, notifier_block);
	SIZE(IOMMU_ATTACH_HANDLE, iommu_attach_handle);
	SIZE(LIST_HEAD, list_head);
	SIZE(XARRAY, xarray);
	SIZE(FILE_OPERATIONS, file_operations);

	/* Fields Rust reads or writes itself. */
	OFF(IOMMU_DOMAIN_TYPE, iommu_domain, type);
	OFF(IOMMU_DOMAIN_OPS_PTR, iommu_domain, ops);
	OFF(IOMMU_DOMAIN_DIRTY_OPS, iommu_domain, dirty_ops);
	OFF(IOMMU_DOMAIN_OWNER, iommu_domain, owner);
	OFF(IOMMU_DOMAIN_PGSIZE_BITMAP, iommu_domain, pgsize_bitmap);
	OFF(IOMMU_DOMAIN_GEOMETRY, iommu_domain, geometry);
	OFF(IOMMU_OPS_CAPABLE, iommu_ops, capable);
	OFF(IOMMU_OPS_HW_INFO, iommu_ops, hw_info);
	OFF(IOMMU_OPS_DOMAIN_ALLOC_PAGING_FLAGS, iommu_ops,
	    domain_alloc_paging_flags);
	OFF(IOMMU_OPS_PROBE_DEVICE, iommu_ops, probe_device);
	OFF(IOMMU_OPS_DEVICE_GROUP, iommu_ops, device_group);
	OFF(IOMMU_OPS_BLOCKED_DOMAIN, iommu_ops, blocked_domain);
	OFF(IOMMU_OPS_DEFAULT_DOMAIN, iommu_ops, default_domain);
	OFF(IOMMU_OPS_OWNER, iommu_ops, owner);
	OFF(IOMMU_DOMAIN_OPS_ENFORCE_CC, iommu_domain_ops,
	    enforce_cache_coherency);
	OFF(IOMMU_DEVICE_OPS, iommu_device, ops);
	OFF(IOMMU_DEVICE_MAX_PASIDS, iommu_device, max_pasids);
	OFF(DEV_IOMMU_IOMMU_DEV, dev_iommu, iommu_dev);
	OFF(DEV_IOMMU_MAX_PASIDS, dev_iommu, max_pasids);
	OFF(DEVICE_IOMMU, device, iommu);
	OFF(DEVICE_RELEASE, device, release);
	OFF(DEVICE_TYPE_PTR, device, type);
	OFF(DEVICE_BUS, device, bus);
	OFF(BUS_TYPE_NAME, bus_type, name);
	OFF(FILE_F_OP, file, f_op);
	OFF(FILE_PRIVATE_DATA, file, private_data);
	OFF(XARRAY_XA_HEAD, xarray, xa_head);

#ifdef CONFIG_ARM_SMMU_V3_RUST_NESTING
	/* The SMMUv3 surface: a buffer Rust passes, a table Rust defines. */
	SIZE(ARM_SMMU_RUST_INFO, arm_smmu_rust_info);
	OFF(ARM_SMMU_RUST_INFO_FEATURES, arm_smmu_rust_info, features);
	OFF(ARM_SMMU_RUST_INFO_ASID_BITS, arm_smmu_rust_info, asid_bits);
	OFF(ARM_SMMU_RUST_INFO_SSID_BITS, arm_smmu_rust_info, ssid_bits);
	OFF(ARM_SMMU_RUST_INFO_NUM_STREAMS, arm_smmu_rust_info, num_streams);
	OFF(ARM_SMMU_RUST_INFO_SID, arm_smmu_rust_info, sid);
	OFF(ARM_SMMU_RUST_INFO_MAX_CMDS, arm_smmu_rust_info, max_cmds);
	OFF(ARM_SMMU_RUST_INFO_IDR, arm_smmu_rust_info, idr);
	OFF(ARM_SMMU_RUST_INFO_IIDR, arm_smmu_rust_info, iidr);
	OFF(ARM_SMMU_RUST_INFO_AIDR, arm_smmu_rust_info, aidr);
	SIZE(IOMMUFD_VIOMMU_CORE_OPS, iommufd_viommu_core_ops);
	OFF(IOMMUFD_VIOMMU_CORE_OPS_GET_VDEV_ID, iommufd_viommu_core_ops,
	    get_vdev_id);
	OFF(IOMMUFD_VIOMMU_CORE_OPS_REPORT_EVENT, iommufd_viommu_core_ops,
	    report_event);
#endif
#ifdef CONFIG_INTEL_IOMMU_RUST_NESTING
	/* The VT-d surface: buffers Rust fills or reads in its callbacks. */
	SIZE(INTEL_IOMMU_RUST_INFO, intel_iommu_rust_info);
	OFF(INTEL_IOMMU_RUST_INFO_CAP, intel_iommu_rust_info, cap);
	OFF(INTEL_IOMMU_RUST_INFO_ECAP, intel_iommu_rust_info, ecap);
	OFF(INTEL_IOMMU_RUST_INFO_SEQ_ID, intel_iommu_rust_info, seq_id);
	OFF(INTEL_IOMMU_RUST_INFO_FLAGS, intel_iommu_rust_info, flags);
	SIZE(INTEL_IOMMU_RUST_NESTED_CFG, intel_iommu_rust_nested_cfg);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_PGTBL_ADDR, intel_iommu_rust_nested_cfg, pgtbl_addr);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_FLAGS, intel_iommu_rust_nested_cfg, flags);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_ADDR_WIDTH, intel_iommu_rust_nested_cfg, addr_width);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_DID, intel_iommu_rust_nested_cfg, did);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_S2_AW, intel_iommu_rust_nested_cfg, s2_aw);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_CAP, intel_iommu_rust_nested_cfg, cap);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_ECAP, intel_iommu_rust_nested_cfg, ecap);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_S2_PTPTR, intel_iommu_rust_nested_cfg, s2_ptptr);
	OFF(INTEL_IOMMU_RUST_NESTED_CFG_S2_FLAGS, intel_iommu_rust_nested_cfg, s2_flags);
	SIZE(INTEL_IOMMU_RUST_TAG, intel_iommu_rust_tag);
	OFF(INTEL_IOMMU_RUST_TAG_CAP, intel_iommu_rust_tag, cap);
	OFF(INTEL_IOMMU_RUST_TAG_ECAP, intel_iommu_rust_tag, ecap);
	OFF(INTEL_IOMMU_RUST_TAG_TYPE, intel_iommu_rust_tag, type);
	OFF(INTEL_IOMMU_RUST_TAG_PASID, intel_iommu_rust_tag, pasid);
	OFF(INTEL_IOMMU_RUST_TAG_DID, intel_iommu_rust_tag, did);
	OFF(INTEL_IOMMU_RUST_TAG_SID, intel_iommu_rust_tag, sid);
	OFF(INTEL_IOMMU_RUST_TAG_PFSID, intel_iommu_rust_tag, pfsid);
	OFF(INTEL_IOMMU_RUST_TAG_QDEP, intel_iommu_rust_tag, qdep);
	OFF(INTEL_IOMMU_RUST_TAG_EXTRA, intel_iommu_rust_tag, extra);
	SIZE(IOMMU_HWPT_VTD_S1, iommu_hwpt_vtd_s1);
	OFF(IOMMU_HWPT_VTD_S1_FLAGS, iommu_hwpt_vtd_s1, flags);
	OFF(IOMMU_HWPT_VTD_S1_PGTBL_ADDR, iommu_hwpt_vtd_s1, pgtbl_addr);
	OFF(IOMMU_HWPT_VTD_S1_ADDR_WIDTH, iommu_hwpt_vtd_s1, addr_width);
#endif
	return 0;
}
