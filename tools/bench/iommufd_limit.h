/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface of the limit module (tools/bench/limit/iommufd_limit.c), the
 * bench's physical limit: the bare kernel operations every IOAS map and
 * unmap needs, timed in the kernel, with nothing of iommufd's bookkeeping.
 * Shared by the module and tools/bench/iommufd_bench.c.
 */
#ifndef IOMMUFD_LIMIT_H
#define IOMMUFD_LIMIT_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IOMMUFD_LIMIT_TYPE 'L'

/*
 * struct iommufd_limit_map - one measurement of LIMIT_MAP
 * @uaddr: start of the user range, page aligned
 * @length: its length, page aligned, at most 1 GiB
 * @ndomains: how many paging domains of the first edu device's IOMMU the
 *            range is mapped into (0 to 4); 0 times pin and unpin only
 * @ops: how many times to pin, map into each domain, unmap and unpin
 * @out_ns: the mean time of one such operation, in ns
 *
 * Each operation is: pin_user_pages_fast() of the whole range (as few calls
 * as it needs), one iommu_map() per physically contiguous run in each
 * domain, one iommu_unmap() of the range in each domain, and one
 * unpin_user_page_range_dirty_lock() per physically contiguous run.
 */
struct iommufd_limit_map {
	__u64 uaddr;
	__u64 length;
	__u32 ndomains;
	__u32 ops;
	__u64 out_ns;
};

/* Does nothing: the cost of an ioctl on a misc device. */
#define IOMMUFD_LIMIT_NULL _IO(IOMMUFD_LIMIT_TYPE, 0)
#define IOMMUFD_LIMIT_MAP _IOWR(IOMMUFD_LIMIT_TYPE, 1, struct iommufd_limit_map)

#endif
