/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Userspace interface of the iommufd subsystem (/dev/iommu).
 */
#ifndef _UAPI_IOMMUFD_H
#define _UAPI_IOMMUFD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IOMMUFD_TYPE (';')

/**
 * DOC: Calling convention
 *
 * Every iommufd ioctl takes a pointer to a command struct whose first __u32
 * holds the size userspace is passing. Structs only ever grow at the end: the
 * kernel zero-fills what an older caller did not pass and refuses (E2BIG) a
 * newer caller whose extra trailing bytes are not all zero.
 *
 * Errno values shared by all commands:
 *
 *  - ENOTTY: unknown ioctl number
 *  - E2BIG: non-zero data in trailing bytes the kernel does not know about
 *  - EOPNOTSUPP: a known field carries a value that is not supported
 *  - EINVAL: a field is understood but its value is wrong
 *  - ENOENT: no such object ID or IOVA
 *  - ENOMEM: allocation failure
 *  - EOVERFLOW: arithmetic on the supplied values overflowed
 *
 * Individual commands may document further errno values.
 */
enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
	IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f,
	IOMMUFD_CMD_VIOMMU_ALLOC = 0x90,
	IOMMUFD_CMD_VDEVICE_ALLOC = 0x91,
	IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92,
	IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93,
	IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94,
	IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA = 0x95,
};

/**
 * struct iommu_destroy - argument of ioctl(IOMMU_DESTROY)
 * @size: sizeof(struct iommu_destroy)
 * @id: ID of the object to release; any destroyable object type
 *
 * Releases one object owned by this iommufd.
 */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/**
 * struct iommu_ioas_alloc - argument of ioctl(IOMMU_IOAS_ALLOC)
 * @size: sizeof(struct iommu_ioas_alloc)
 * @flags: Reserved, must be 0
 * @out_ioas_id: Returns the ID of the new IOAS
 *
 * Creates an empty I/O address space (IOAS), i.e. a container of IOVA to
 * memory mappings that devices and page tables can be attached to.
 */
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

/**
 * struct iommu_iova_range - one IOVA interval
 * @start: Lowest IOVA of the interval
 * @last: Highest IOVA of the interval (inclusive)
 */
struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

/**
 * struct iommu_ioas_iova_ranges - argument of ioctl(IOMMU_IOAS_IOVA_RANGES)
 * @size: sizeof(struct iommu_ioas_iova_ranges)
 * @ioas_id: IOAS to query
 * @num_iovas: In: capacity of @allowed_iovas; out: number of ranges in total
 * @__reserved: Must be 0
 * @allowed_iovas: User pointer to an array of struct iommu_iova_range
 * @out_iova_alignment: Returns the required IOVA alignment for MAP/COPY
 *
 * Reports the IOVA ranges in which mappings may currently be placed. The set
 * depends on the devices attached to the IOAS and can shrink on attach and
 * grow on detach, so userspace should re-read it after such changes.
 *
 * If @num_iovas is too small for all ranges the call fails with EMSGSIZE and
 * @num_iovas tells how many entries are needed.
 *
 * Both the start IOVA and the end (start + length) of a MAP or COPY must be
 * multiples of @out_iova_alignment. The value is at least 1 and never more
 * than PAGE_SIZE.
 */
struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

/**
 * struct iommu_ioas_allow_iovas - argument of ioctl(IOMMU_IOAS_ALLOW_IOVAS)
 * @size: sizeof(struct iommu_ioas_allow_iovas)
 * @ioas_id: IOAS to update
 * @num_iovas: Number of entries in @allowed_iovas
 * @__reserved: Must be 0
 * @allowed_iovas: User pointer to an array of struct iommu_iova_range
 *
 * Replaces the IOAS's list of guaranteed IOVA ranges. Once set, attaching a
 * device whose restrictions would remove part of these ranges is refused, and
 * the call itself fails if the usable ranges are already narrower. Automatic
 * IOVA selection by IOMMU_IOAS_MAP is confined to these ranges when present.
 */
struct iommu_ioas_allow_iovas {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
};
#define IOMMU_IOAS_ALLOW_IOVAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS)

/**
 * enum iommufd_ioas_map_flags - flags of the map/copy commands
 * @IOMMU_IOAS_MAP_FIXED_IOVA: Use the caller's IOVA; without it the kernel
 *                             chooses one
 * @IOMMU_IOAS_MAP_WRITEABLE: Devices may write through the mapping
 * @IOMMU_IOAS_MAP_READABLE: Devices may read through the mapping
 */
enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

/**
 * struct iommu_ioas_map - argument of ioctl(IOMMU_IOAS_MAP)
 * @size: sizeof(struct iommu_ioas_map)
 * @flags: Bitmask of enum iommufd_ioas_map_flags
 * @ioas_id: IOAS to add the mapping to
 * @__reserved: Must be 0
 * @user_va: Start of the user memory to map
 * @length: Length of the mapping in bytes
 * @iova: Input IOVA with IOMMU_IOAS_MAP_FIXED_IOVA, otherwise returns the
 *        IOVA the kernel picked
 *
 * Maps a range of the caller's memory into the IOAS. A fixed IOVA range must
 * be entirely free; existing mappings are never replaced.
 */
struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

/**
 * struct iommu_ioas_noiommu_get_pa - argument of ioctl(IOMMU_IOAS_NOIOMMU_GET_PA)
 * @size: sizeof(struct iommu_ioas_noiommu_get_pa)
 * @flags: Reserved, must be 0
 * @ioas_id: IOAS to look the IOVA up in
 * @__reserved: Must be 0
 * @iova: IOVA to translate
 * @length: In: non-zero upper bound of bytes to look at from @iova; out:
 *          number of physically contiguous bytes from @out_phys (never more
 *          than the input value)
 * @out_phys: Returns the physical address backing @iova
 *
 * Translates a mapped IOVA to a physical address. Only meant for noiommu
 * devices, which perform DMA without translation and thus without isolation.
 */
struct iommu_ioas_noiommu_get_pa {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 out_phys;
};
#define IOMMU_IOAS_NOIOMMU_GET_PA _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA)

/**
 * struct iommu_ioas_map_file - argument of ioctl(IOMMU_IOAS_MAP_FILE)
 * @size: sizeof(struct iommu_ioas_map_file)
 * @flags: As in struct iommu_ioas_map
 * @ioas_id: As in struct iommu_ioas_map
 * @fd: File descriptor of a memfd, or of a dma-buf the kernel accepts
 * @start: Offset into the file, in bytes, where the mapping begins
 * @length: As in struct iommu_ioas_map
 * @iova: As in struct iommu_ioas_map
 *
 * Like IOMMU_IOAS_MAP, but the memory comes from a file instead of a user
 * address. Only a limited set of dma-buf exporters is accepted.
 */
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)

/**
 * struct iommu_ioas_copy - argument of ioctl(IOMMU_IOAS_COPY)
 * @size: sizeof(struct iommu_ioas_copy)
 * @flags: Bitmask of enum iommufd_ioas_map_flags
 * @dst_ioas_id: IOAS receiving the new mapping
 * @src_ioas_id: IOAS holding the existing mapping
 * @length: Length in bytes
 * @dst_iova: Input IOVA with IOMMU_IOAS_MAP_FIXED_IOVA, otherwise returns the
 *            IOVA the kernel picked in the destination
 * @src_iova: Start of the existing mapping in the source
 *
 * Duplicates an existing mapping into another (or the same) IOAS. The source
 * range must match one created by IOMMU_IOAS_MAP exactly. The pinned pages are
 * shared, which is cheaper than mapping the same memory again.
 */
struct iommu_ioas_copy {
	__u32 size;
	__u32 flags;
	__u32 dst_ioas_id;
	__u32 src_ioas_id;
	__aligned_u64 length;
	__aligned_u64 dst_iova;
	__aligned_u64 src_iova;
};
#define IOMMU_IOAS_COPY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY)

/**
 * struct iommu_ioas_unmap - argument of ioctl(IOMMU_IOAS_UNMAP)
 * @size: sizeof(struct iommu_ioas_unmap)
 * @ioas_id: IOAS to remove mappings from
 * @iova: First IOVA to unmap
 * @length: In: bytes to unmap; out: bytes actually unmapped
 *
 * Removes whole mappings; a mapping may not be partially unmapped. Passing
 * iova 0 and length U64_MAX removes every mapping.
 */
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

/**
 * enum iommufd_option - option IDs for IOMMU_OPTION
 * @IOMMU_OPTION_RLIMIT_MODE: Global and privileged; selects how pinned memory
 *                            is charged to RLIMIT_MEMLOCK: 0 (default) per
 *                            user, 1 per process. object_id must be 0.
 * @IOMMU_OPTION_HUGE_PAGES: Per IOAS (object_id is the IOAS ID); 1 (default)
 *                           lets contiguous pages be mapped as large IOPTEs,
 *                           0 forces PAGE_SIZE mappings.
 */
enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};

/**
 * enum iommufd_option_ops - operations for IOMMU_OPTION
 * @IOMMU_OPTION_OP_SET: Write the option
 * @IOMMU_OPTION_OP_GET: Read the option
 */
enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};

/**
 * struct iommu_option - argument of ioctl(IOMMU_OPTION)
 * @size: sizeof(struct iommu_option)
 * @option_id: Value of enum iommufd_option
 * @op: Value of enum iommufd_option_ops
 * @__reserved: Must be 0
 * @object_id: Object the option applies to, 0 for global options
 * @val64: Value to write, or the value read back
 *
 * Reads or writes one simple option of iommufd or of an object in it.
 */
struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

/**
 * enum iommufd_vfio_ioas_op - operations for IOMMU_VFIO_IOAS
 * @IOMMU_VFIO_IOAS_GET: Return the IOAS used for VFIO compatibility
 * @IOMMU_VFIO_IOAS_SET: Select the IOAS used for VFIO compatibility
 * @IOMMU_VFIO_IOAS_CLEAR: Turn VFIO compatibility off
 */
enum iommufd_vfio_ioas_op {
	IOMMU_VFIO_IOAS_GET = 0,
	IOMMU_VFIO_IOAS_SET = 1,
	IOMMU_VFIO_IOAS_CLEAR = 2,
};

/**
 * struct iommu_vfio_ioas - argument of ioctl(IOMMU_VFIO_IOAS)
 * @size: sizeof(struct iommu_vfio_ioas)
 * @ioas_id: IOAS ID given for SET, returned for GET
 * @op: Value of enum iommufd_vfio_ioas_op
 * @__reserved: Must be 0
 *
 * Manages the single IOAS backing the legacy VFIO container API on this
 * iommufd. If none is set when VFIO first needs one, it is created
 * automatically; VFIO keeps using the IOAS it obtained. SET and CLEAR never
 * destroy an automatically created IOAS.
 */
struct iommu_vfio_ioas {
	__u32 size;
	__u32 ioas_id;
	__u16 op;
	__u16 __reserved;
};
#define IOMMU_VFIO_IOAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS)

/**
 * enum iommufd_hwpt_alloc_flags - flags of IOMMU_HWPT_ALLOC
 * @IOMMU_HWPT_ALLOC_NEST_PARENT: The HWPT may later be used as the parent
 *                                (stage-2) of nested HWPTs
 * @IOMMU_HWPT_ALLOC_DIRTY_TRACKING: Only devices whose IOMMU can track dirty
 *                                   pages may be attached
 * @IOMMU_HWPT_FAULT_ID_VALID: struct iommu_hwpt_alloc::fault_id is used
 * @IOMMU_HWPT_ALLOC_PASID: The HWPT may be attached to PASIDs. When a device
 *                          uses PASIDs, the domain on its non-PASID path must
 *                          carry this flag too. Fails with EOPNOTSUPP if the
 *                          IOMMU has no PASID support.
 */
enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
	IOMMU_HWPT_ALLOC_PASID = 1 << 3,
};

/**
 * enum iommu_hwpt_vtd_s1_flags - attribute bits of a VT-d stage-1 table
 * @IOMMU_VTD_S1_SRE: Supervisor requests are allowed
 * @IOMMU_VTD_S1_EAFE: Extended accessed flag is enabled
 * @IOMMU_VTD_S1_WPE: Write protection applies to supervisor accesses
 */
enum iommu_hwpt_vtd_s1_flags {
	IOMMU_VTD_S1_SRE = 1 << 0,
	IOMMU_VTD_S1_EAFE = 1 << 1,
	IOMMU_VTD_S1_WPE = 1 << 2,
};

/**
 * struct iommu_hwpt_vtd_s1 - VT-d stage-1 table (IOMMU_HWPT_DATA_VTD_S1)
 * @flags: Bitmask of enum iommu_hwpt_vtd_s1_flags
 * @pgtbl_addr: Guest address of the stage-1 table root
 * @addr_width: Input address width of the stage-1 table
 * @__reserved: Must be 0
 */
struct iommu_hwpt_vtd_s1 {
	__aligned_u64 flags;
	__aligned_u64 pgtbl_addr;
	__u32 addr_width;
	__u32 __reserved;
};

/**
 * struct iommu_hwpt_arm_smmuv3 - SMMUv3 nested STE (IOMMU_HWPT_DATA_ARM_SMMUV3)
 * @ste: Little-endian double words 0 and 1 of the guest's Stream Table Entry.
 *       Only the fields controlling stage-1 (Cfg, S1 context pointer and
 *       format, CD max, S1 attributes, EATS, S1DSS, S1STALLD) may be set.
 *
 * The kernel fails with EIO if the STE is malformed or sets other fields.
 * Cfg may select stage-1 translation, bypass (same as the parent) or abort.
 * For translation a vDEVICE should exist before the nested HWPT is attached,
 * since invalidations and events are routed through the virtual stream ID.
 */
struct iommu_hwpt_arm_smmuv3 {
	__aligned_le64 ste[2];
};

/**
 * struct iommu_hwpt_amd_guest - AMD guest page table (IOMMU_HWPT_DATA_AMD_GUEST)
 * @dte: The guest's Device Table Entry
 */
struct iommu_hwpt_amd_guest {
	__aligned_u64 dte[4];
};

/**
 * enum iommu_hwpt_data_type - format of driver data for IOMMU_HWPT_ALLOC
 * @IOMMU_HWPT_DATA_NONE: No driver data
 * @IOMMU_HWPT_DATA_VTD_S1: struct iommu_hwpt_vtd_s1
 * @IOMMU_HWPT_DATA_ARM_SMMUV3: struct iommu_hwpt_arm_smmuv3
 * @IOMMU_HWPT_DATA_AMD_GUEST: struct iommu_hwpt_amd_guest
 */
enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
	IOMMU_HWPT_DATA_ARM_SMMUV3 = 2,
	IOMMU_HWPT_DATA_AMD_GUEST = 3,
};

/**
 * struct iommu_hwpt_alloc - argument of ioctl(IOMMU_HWPT_ALLOC)
 * @size: sizeof(struct iommu_hwpt_alloc)
 * @flags: Bitmask of enum iommufd_hwpt_alloc_flags
 * @dev_id: Device the HWPT is created for
 * @pt_id: Parent object: an IOAS, a parent HWPT or a vIOMMU
 * @out_hwpt_id: Returns the ID of the new HWPT
 * @__reserved: Must be 0
 * @data_type: Value of enum iommu_hwpt_data_type
 * @data_len: Length of the buffer at @data_uptr
 * @data_uptr: User pointer to the driver data
 * @fault_id: FAULT object to report to, used with IOMMU_HWPT_FAULT_ID_VALID
 * @__reserved2: Must be 0
 *
 * Creates a hardware page table (an iommu_domain in the kernel).
 *
 * With an IOAS as @pt_id the kernel owns the table and fills it from the
 * IOAS mappings; @data_type must be IOMMU_HWPT_DATA_NONE with no data.
 *
 * With a parent HWPT or vIOMMU as @pt_id a nested, userspace-owned table is
 * created; @data_type and the data describe it in the IOMMU's own format, and
 * the device and vIOMMU must sit behind the same physical IOMMU.
 */
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

/**
 * enum iommu_hw_info_vtd_flags - flags in struct iommu_hw_info_vtd
 * @IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: Read-only mappings must not be used
 *                                         in a nesting parent (Intel erratum
 *                                         772415)
 */
enum iommu_hw_info_vtd_flags {
	IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0,
};

/**
 * struct iommu_hw_info_vtd - VT-d data (IOMMU_HW_INFO_TYPE_INTEL_VTD)
 * @flags: Bitmask of enum iommu_hw_info_vtd_flags
 * @__reserved: Must be 0
 * @cap_reg: Raw VT-d Capability Register
 * @ecap_reg: Raw VT-d Extended Capability Register
 */
struct iommu_hw_info_vtd {
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 cap_reg;
	__aligned_u64 ecap_reg;
};

/**
 * enum iommu_hw_info_arm_smmuv3_flags - flags in struct iommu_hw_info_arm_smmuv3
 * @IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI: Because of a hardware
 *    erratum, every TLBI/CFGI command plus CMD_SYNC must be issued twice
 */
enum iommu_hw_info_arm_smmuv3_flags {
	IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0,
};

/**
 * struct iommu_hw_info_arm_smmuv3 - SMMUv3 data (IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
 * @flags: Bitmask of enum iommu_hw_info_arm_smmuv3_flags
 * @__reserved: Must be 0
 * @idr: Raw SMMU_IDR0..SMMU_IDR5 registers
 * @iidr: Raw SMMU_IIDR register
 * @aidr: Raw SMMU_AIDR register
 *
 * Register values are passed through unfiltered. A VMM should only rely on
 * the fields relevant to nested translation (stream table/CD formats,
 * ID sizes, granules, range invalidation, break-before-make level) and must
 * ignore the rest so that future kernels stay compatible.
 */
struct iommu_hw_info_arm_smmuv3 {
	__u32 flags;
	__u32 __reserved;
	__u32 idr[6];
	__u32 iidr;
	__u32 aidr;
};

/**
 * struct iommu_hw_info_tegra241_cmdqv - Tegra241 CMDQV data
 *                                       (IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV)
 * @flags: Must be 0
 * @version: CMDQ-V version, PARAM[3:0]
 * @log2vcmdqs: log2 of the VCMDQ count, PARAM[7:4]
 * @log2vsids: log2 of the SID replacement count, PARAM[15:12]
 * @__reserved: Must be 0
 *
 * A VMM can expose these in its emulated PARAM register; a guest should see
 * a single virtual interface, so PARAM[11:8] should read as 0.
 */
struct iommu_hw_info_tegra241_cmdqv {
	__u32 flags;
	__u8 version;
	__u8 log2vcmdqs;
	__u8 log2vsids;
	__u8 __reserved;
};

/**
 * struct iommu_hw_info_amd - AMD IOMMU data (IOMMU_HW_INFO_TYPE_AMD)
 * @efr: Raw Extended Feature Register
 * @efr2: Raw Extended Feature 2 Register
 *
 * Values are unfiltered; the VMM decides which feature bits it presents to
 * its guest, keeping in mind the kernel does not support every feature for
 * a hardware-accelerated vIOMMU.
 */
struct iommu_hw_info_amd {
	__aligned_u64 efr;
	__aligned_u64 efr2;
};

/**
 * enum iommu_hw_info_type - format of IOMMU_GET_HW_INFO data
 * @IOMMU_HW_INFO_TYPE_NONE: No data reported by the driver
 * @IOMMU_HW_INFO_TYPE_DEFAULT: As input: let the driver pick its format
 * @IOMMU_HW_INFO_TYPE_INTEL_VTD: struct iommu_hw_info_vtd
 * @IOMMU_HW_INFO_TYPE_ARM_SMMUV3: struct iommu_hw_info_arm_smmuv3
 * @IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV: struct iommu_hw_info_tegra241_cmdqv
 * @IOMMU_HW_INFO_TYPE_AMD: struct iommu_hw_info_amd
 */
enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_DEFAULT = 0,
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
	IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2,
	IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3,
	IOMMU_HW_INFO_TYPE_AMD = 4,
};

/**
 * enum iommufd_hw_capabilities - generic capability bits
 * @IOMMU_HW_CAP_DIRTY_TRACKING: Dirty tracking is available, i.e.
 *                               IOMMU_HWPT_SET_DIRTY_TRACKING and
 *                               IOMMU_HWPT_GET_DIRTY_BITMAP can be used
 * @IOMMU_HW_CAP_PCI_PASID_EXEC: PASID execute permission is supported
 *                               (meaningless if out_max_pasid_log2 is 0)
 * @IOMMU_HW_CAP_PCI_PASID_PRIV: PASID privileged mode is supported
 *                               (meaningless if out_max_pasid_log2 is 0)
 * @IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED: The device cannot use ATS; when clear,
 *                                      ATS may be enabled
 */
enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
	IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3,
};

/**
 * enum iommufd_hw_info_flags - flags of IOMMU_GET_HW_INFO
 * @IOMMU_HW_INFO_FLAG_INPUT_TYPE: @in_data_type requests a specific format
 */
enum iommufd_hw_info_flags {
	IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0,
};

/**
 * struct iommu_hw_info - argument of ioctl(IOMMU_GET_HW_INFO)
 * @size: sizeof(struct iommu_hw_info)
 * @flags: Bitmask of enum iommufd_hw_info_flags
 * @dev_id: Device bound to this iommufd
 * @data_len: In: size of the buffer at @data_uptr; out: size of the data the
 *            kernel has for this format
 * @data_uptr: User pointer to the buffer receiving the driver data
 * @in_data_type: With IOMMU_HW_INFO_FLAG_INPUT_TYPE, the requested value of
 *                enum iommu_hw_info_type; otherwise treated as DEFAULT
 * @out_data_type: Returns the enum iommu_hw_info_type of the data written
 * @out_max_pasid_log2: Returns the PASID width in bits, 0 without PASID
 * @__reserved: Must be 0
 * @out_capabilities: Returns a bitmask of enum iommufd_hw_capabilities
 *
 * Reports hardware details of the IOMMU behind a device, e.g. for a VMM to
 * build a compatible virtual IOMMU. The buffer is filled up to @data_len;
 * any part beyond the kernel's data is zeroed. A @data_len of 0 is allowed.
 */
struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	union {
		__u32 in_data_type;
		__u32 out_data_type;
	};
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

/**
 * enum iommufd_hwpt_set_dirty_tracking_flags - flags of
 *                                              IOMMU_HWPT_SET_DIRTY_TRACKING
 * @IOMMU_HWPT_DIRTY_TRACKING_ENABLE: Turn tracking on (off when clear)
 */
enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

/**
 * struct iommu_hwpt_set_dirty_tracking - argument of
 *                                        ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING)
 * @size: sizeof(struct iommu_hwpt_set_dirty_tracking)
 * @flags: Bitmask of enum iommufd_hwpt_set_dirty_tracking_flags
 * @hwpt_id: HWPT to change
 * @__reserved: Must be 0
 *
 * Starts or stops dirty page tracking on a HWPT.
 */
struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, \
					  IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

/**
 * enum iommufd_hwpt_get_dirty_bitmap_flags - flags of
 *                                            IOMMU_HWPT_GET_DIRTY_BITMAP
 * @IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: Report dirty bits but leave them set,
 *                                        e.g. when the range is about to be
 *                                        unmapped anyway
 */
enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

/**
 * struct iommu_hwpt_get_dirty_bitmap - argument of
 *                                      ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP)
 * @size: sizeof(struct iommu_hwpt_get_dirty_bitmap)
 * @hwpt_id: HWPT to read
 * @flags: Bitmask of enum iommufd_hwpt_get_dirty_bitmap_flags
 * @__reserved: Must be 0
 * @iova: IOVA described by bit 0 of the bitmap
 * @length: Size of the IOVA range to report
 * @page_size: Bytes of IOVA covered by each bit
 * @data: User pointer to the bitmap (array of u64) to fill
 *
 * Collects the dirty state of an IOVA range into a bitmap, clearing the
 * hardware dirty bits unless told otherwise. Bit n (counted across the u64
 * words, LSB first) stands for IOVA @iova + n * @page_size.
 */
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, \
					IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

/**
 * enum iommu_hwpt_invalidate_data_type - format of IOMMU_HWPT_INVALIDATE
 *                                        entries
 * @IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: struct iommu_hwpt_vtd_s1_invalidate
 * @IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3: struct
 *                                           iommu_viommu_arm_smmuv3_invalidate
 */
enum iommu_hwpt_invalidate_data_type {
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0,
	IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1,
};

/**
 * enum iommu_hwpt_vtd_s1_invalidate_flags - flags of a VT-d invalidation
 * @IOMMU_VTD_INV_FLAGS_LEAF: Only leaf entries changed; paging-structure
 *                            caches need not be flushed
 */
enum iommu_hwpt_vtd_s1_invalidate_flags {
	IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0,
};

/**
 * struct iommu_hwpt_vtd_s1_invalidate - VT-d stage-1 invalidation entry
 *                                       (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
 * @addr: 4KiB aligned start address
 * @npages: Number of 4KiB pages
 * @flags: Bitmask of enum iommu_hwpt_vtd_s1_invalidate_flags
 * @__reserved: Must be 0
 *
 * Describes what to flush after the guest edited its stage-1 table. @addr 0
 * with @npages U64_MAX flushes everything. Device TLBs (ATS) are flushed by
 * the kernel as needed.
 */
struct iommu_hwpt_vtd_s1_invalidate {
	__aligned_u64 addr;
	__aligned_u64 npages;
	__u32 flags;
	__u32 __reserved;
};

/**
 * struct iommu_viommu_arm_smmuv3_invalidate - SMMUv3 invalidation entry
 *                                  (IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3)
 * @cmd: One little-endian 128-bit SMMU command queue entry
 *
 * Accepted with a vIOMMU as target; the opcodes allowed are the stage-1 TLB
 * invalidations (NSNH_ALL, NH_VA, NH_VAA, NH_ALL, NH_ASID), ATC_INV, CFGI_CD
 * and CFGI_CD_ALL. Any other opcode, field or unimplemented value is rejected
 * with EIO.
 */
struct iommu_viommu_arm_smmuv3_invalidate {
	__aligned_le64 cmd[2];
};

/**
 * struct iommu_hwpt_invalidate - argument of ioctl(IOMMU_HWPT_INVALIDATE)
 * @size: sizeof(struct iommu_hwpt_invalidate)
 * @hwpt_id: Nested HWPT or vIOMMU whose caches are flushed
 * @data_uptr: User pointer to an array of invalidation entries
 * @data_type: Value of enum iommu_hwpt_invalidate_data_type for every entry
 * @entry_len: Size in bytes of one entry
 * @entry_num: In: number of entries; out: number of entries processed
 * @__reserved: Must be 0
 *
 * Flushes caches derived from a userspace-owned page table or held by a
 * vIOMMU. With @entry_num 0 nothing is done, which lets userspace probe
 * whether @data_type is supported.
 */
struct iommu_hwpt_invalidate {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 data_uptr;
	__u32 data_type;
	__u32 entry_len;
	__u32 entry_num;
	__u32 __reserved;
};
#define IOMMU_HWPT_INVALIDATE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)

/**
 * enum iommu_hwpt_pgfault_flags - flags in struct iommu_hwpt_pgfault
 * @IOMMU_PGFAULT_FLAGS_PASID_VALID: @pasid is meaningful
 * @IOMMU_PGFAULT_FLAGS_LAST_PAGE: Final fault of its group
 */
enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID		= (1 << 0),
	IOMMU_PGFAULT_FLAGS_LAST_PAGE		= (1 << 1),
};

/**
 * enum iommu_hwpt_pgfault_perm - access bits in struct iommu_hwpt_pgfault
 * @IOMMU_PGFAULT_PERM_READ: Read access requested
 * @IOMMU_PGFAULT_PERM_WRITE: Write access requested
 * @IOMMU_PGFAULT_PERM_EXEC: PCIe PASID prefix requested execute access
 * @IOMMU_PGFAULT_PERM_PRIV: PCIe PASID prefix requested privileged access
 */
enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ			= (1 << 0),
	IOMMU_PGFAULT_PERM_WRITE		= (1 << 1),
	IOMMU_PGFAULT_PERM_EXEC			= (1 << 2),
	IOMMU_PGFAULT_PERM_PRIV			= (1 << 3),
};

/**
 * struct iommu_hwpt_pgfault - page fault record read from a FAULT fd
 * @flags: Bitmask of enum iommu_hwpt_pgfault_flags
 * @dev_id: Device that faulted
 * @pasid: PASID of the request
 * @grpid: Page request group index
 * @perm: Bitmask of enum iommu_hwpt_pgfault_perm
 * @__reserved: Must be 0
 * @addr: Faulting address
 * @length: Optional hint of how many bytes the device will access, 0 if none
 * @cookie: Group identifier; the response must return the cookie of the
 *          group's last fault
 */
struct iommu_hwpt_pgfault {
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;
};

/**
 * enum iommufd_page_response_code - result written back for a fault group
 * @IOMMUFD_PAGE_RESP_SUCCESS: Fault resolved, the device should retry
 *                             (PCIe "Success")
 * @IOMMUFD_PAGE_RESP_INVALID: Fault not resolvable, no retry
 *                             (PCIe "Invalid Request")
 */
enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};

/**
 * struct iommu_hwpt_page_response - response record written to a FAULT fd
 * @cookie: Cookie taken from the fault record
 * @code: Value of enum iommufd_page_response_code
 */
struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;
};

/**
 * struct iommu_fault_alloc - argument of ioctl(IOMMU_FAULT_QUEUE_ALLOC)
 * @size: sizeof(struct iommu_fault_alloc)
 * @flags: Reserved, must be 0
 * @out_fault_id: Returns the ID of the new FAULT object
 * @out_fault_fd: Returns a file descriptor for reading faults and writing
 *                responses
 *
 * Creates an object that delivers I/O page faults to userspace.
 */
struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)

/**
 * enum iommu_viommu_type - kinds of virtual IOMMU
 * @IOMMU_VIOMMU_TYPE_DEFAULT: Reserved
 * @IOMMU_VIOMMU_TYPE_ARM_SMMUV3: ARM SMMUv3
 * @IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV: ARM SMMUv3 with the NVIDIA Tegra241
 *                                    CMDQV extension; the VMM must present
 *                                    VINTF_CONFIG.HYP_OWN as 0 to the guest
 */
enum iommu_viommu_type {
	IOMMU_VIOMMU_TYPE_DEFAULT = 0,
	IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1,
	IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2,
};

/**
 * struct iommu_viommu_tegra241_cmdqv - Tegra241 CMDQV vIOMMU output data
 *                                      (IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV)
 * @out_vintf_mmap_offset: mmap() offset of the VINTF page0
 * @out_vintf_mmap_length: mmap() length of the VINTF page0
 *
 * Lets the VMM map the virtual interface page into the guest so the guest
 * drives its command queues directly.
 */
struct iommu_viommu_tegra241_cmdqv {
	__aligned_u64 out_vintf_mmap_offset;
	__aligned_u64 out_vintf_mmap_length;
};

/**
 * struct iommu_viommu_alloc - argument of ioctl(IOMMU_VIOMMU_ALLOC)
 * @size: sizeof(struct iommu_viommu_alloc)
 * @flags: Reserved, must be 0
 * @type: Value of enum iommu_viommu_type
 * @dev_id: Device whose physical IOMMU backs the vIOMMU
 * @hwpt_id: Nesting parent HWPT used by the vIOMMU
 * @out_viommu_id: Returns the ID of the new vIOMMU
 * @data_len: Length of the buffer at @data_uptr
 * @__reserved: Must be 0
 * @data_uptr: User pointer to type specific data
 *
 * Creates a per-VM slice of a physical IOMMU. It groups state that is global
 * to the IOMMU rather than to one device: guest ID spaces, virtual device
 * IDs, events not tied to a device, the shared nesting parent, and any
 * invalidation queues or interrupts assigned to the guest.
 */
struct iommu_viommu_alloc {
	__u32 size;
	__u32 flags;
	__u32 type;
	__u32 dev_id;
	__u32 hwpt_id;
	__u32 out_viommu_id;
	__u32 data_len;
	__u32 __reserved;
	__aligned_u64 data_uptr;
};
#define IOMMU_VIOMMU_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC)

/**
 * struct iommu_vdevice_alloc - argument of ioctl(IOMMU_VDEVICE_ALLOC)
 * @size: sizeof(struct iommu_vdevice_alloc)
 * @viommu_id: vIOMMU the virtual device belongs to
 * @dev_id: Physical device being represented
 * @out_vdevice_id: Returns the ID of the new vDEVICE
 * @virt_id: ID of the device as seen by the guest's IOMMU (e.g. virtual
 *           stream ID, device ID or requester ID)
 *
 * Binds a physical device to a guest-visible ID on a vIOMMU. Destroy it
 * with IOMMU_DESTROY before the physical device is unbound; otherwise the
 * kernel tears it down itself and its ID stays unusable until the iommufd is
 * closed.
 */
struct iommu_vdevice_alloc {
	__u32 size;
	__u32 viommu_id;
	__u32 dev_id;
	__u32 out_vdevice_id;
	__aligned_u64 virt_id;
};
#define IOMMU_VDEVICE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC)

/**
 * struct iommu_ioas_change_process - argument of
 *                                    ioctl(IOMMU_IOAS_CHANGE_PROCESS)
 * @size: sizeof(struct iommu_ioas_change_process)
 * @__reserved: Must be 0
 *
 * Moves the pinned-memory accounting of all mappings in this iommufd to the
 * calling process, e.g. when handing a device over during a live update.
 * Only mappings made with IOMMU_IOAS_MAP_FILE are supported (EINVAL
 * otherwise); on failure nothing changes.
 */
struct iommu_ioas_change_process {
	__u32 size;
	__u32 __reserved;
};

#define IOMMU_IOAS_CHANGE_PROCESS \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS)

/**
 * enum iommu_veventq_flag - flags in struct iommufd_vevent_header
 * @IOMMU_VEVENTQ_FLAG_LOST_EVENTS: Events were dropped before this point
 */
enum iommu_veventq_flag {
	IOMMU_VEVENTQ_FLAG_LOST_EVENTS = (1U << 0),
};

/**
 * struct iommufd_vevent_header - header preceding each virtual event
 * @flags: Bitmask of enum iommu_veventq_flag
 * @sequence: Per-queue event counter running from 0 to INT_MAX, then
 *            wrapping to 0
 *
 * Each event is a header followed by type specific data. A gap of more than
 * one between consecutive sequence numbers means events were dropped. If
 * events were dropped at the end of the queue, a header with
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS and no data follows the last event.
 */
struct iommufd_vevent_header {
	__u32 flags;
	__u32 sequence;
};

/**
 * enum iommu_veventq_type - kinds of virtual event queue
 * @IOMMU_VEVENTQ_TYPE_DEFAULT: Reserved
 * @IOMMU_VEVENTQ_TYPE_ARM_SMMUV3: SMMUv3 event queue records
 * @IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV: Tegra241 CMDQV error interrupts
 */
enum iommu_veventq_type {
	IOMMU_VEVENTQ_TYPE_DEFAULT = 0,
	IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1,
	IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2,
};

/**
 * struct iommu_vevent_arm_smmuv3 - SMMUv3 virtual event
 *                                  (IOMMU_VEVENTQ_TYPE_ARM_SMMUV3)
 * @evt: One little-endian 256-bit SMMU event record
 *
 * Forwarded events are configuration (bad STE/CD/substream ID, stream
 * disabled) and translation faults (translation, address size, access flag,
 * permission). The StreamID field holds the virtual ID, so a vDEVICE must
 * exist for the device to get events.
 */
struct iommu_vevent_arm_smmuv3 {
	__aligned_le64 evt[4];
};

/**
 * struct iommu_vevent_tegra241_cmdqv - Tegra241 CMDQV virtual event
 *                                      (IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV)
 * @lvcmdq_err_map: Little-endian 128-bit logical VCMDQ error bitmap of the
 *                  vIOMMU's virtual interface, as read from hardware
 */
struct iommu_vevent_tegra241_cmdqv {
	__aligned_le64 lvcmdq_err_map[2];
};

/**
 * struct iommu_veventq_alloc - argument of ioctl(IOMMU_VEVENTQ_ALLOC)
 * @size: sizeof(struct iommu_veventq_alloc)
 * @flags: Reserved, must be 0
 * @viommu_id: vIOMMU delivering events to the queue
 * @type: Value of enum iommu_veventq_type
 * @veventq_depth: Maximum number of queued events before new ones are lost
 * @out_veventq_id: Returns the ID of the new vEVENTQ
 * @out_veventq_fd: Returns a file descriptor to read events from; the caller
 *                  must close it
 * @__reserved: Must be 0
 *
 * Creates a virtual event queue on a vIOMMU; at most one queue per @type per
 * vIOMMU. Reads return a stream of struct iommufd_vevent_header each followed
 * by type specific data.
 */
struct iommu_veventq_alloc {
	__u32 size;
	__u32 flags;
	__u32 viommu_id;
	__u32 type;
	__u32 veventq_depth;
	__u32 out_veventq_id;
	__u32 out_veventq_fd;
	__u32 __reserved;
};
#define IOMMU_VEVENTQ_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC)

/**
 * enum iommu_hw_queue_type - kinds of hardware queue
 * @IOMMU_HW_QUEUE_TYPE_DEFAULT: Reserved
 * @IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV: Tegra241 CMDQV virtual command queue.
 *    Queues are allocated with ascending @index from 0 and freed in reverse
 *    order; the queue memory must be mapped in the IOAS, naturally aligned,
 *    and sized a power of two between 32 bytes and the limit given by
 *    SMMU_IDR1.CMDQS. Physically contiguous backing is recommended.
 */
enum iommu_hw_queue_type {
	IOMMU_HW_QUEUE_TYPE_DEFAULT = 0,
	IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1,
};

/**
 * struct iommu_hw_queue_alloc - argument of ioctl(IOMMU_HW_QUEUE_ALLOC)
 * @size: sizeof(struct iommu_hw_queue_alloc)
 * @flags: Reserved, must be 0
 * @viommu_id: vIOMMU owning the queue
 * @type: Value of enum iommu_hw_queue_type
 * @index: Queue number within this @type on the vIOMMU
 * @out_hw_queue_id: Returns the ID of the new HW queue
 * @nesting_parent_iova: Guest physical address of the queue memory
 * @length: Size of the queue memory in bytes
 *
 * Gives the guest a hardware-accelerated queue that the IOMMU reads directly
 * from guest memory. Each queue of the same @type needs its own @index.
 */
struct iommu_hw_queue_alloc {
	__u32 size;
	__u32 flags;
	__u32 viommu_id;
	__u32 type;
	__u32 index;
	__u32 out_hw_queue_id;
	__aligned_u64 nesting_parent_iova;
	__aligned_u64 length;
};
#define IOMMU_HW_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC)

#endif /* _UAPI_IOMMUFD_H */
