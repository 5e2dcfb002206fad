// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>

__rust_helper unsigned long rust_helper_mmio_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

__rust_helper void *rust_helper_mmio_vma_private(struct vm_area_struct *vma)
{
	return vma->vm_private_data;
}

__rust_helper void *rust_helper_mmio_page_address(struct page *page)
{
	return page_address(page);
}

/*
 * Map the whole of @vma, uncached, to the physical pages from @pfn, and only
 * then give it @ops and @private: a failed mmap() never calls ops->close.
 */
__rust_helper int rust_helper_mmio_vma_map(struct vm_area_struct *vma,
					   const struct vm_operations_struct *ops,
					   void *private, unsigned long pfn)
{
	unsigned long length = vma->vm_end - vma->vm_start;
	int rc;

	vma->vm_pgoff = 0;
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	rc = io_remap_pfn_range(vma, vma->vm_start, pfn, length,
				vma->vm_page_prot);
	if (rc)
		return rc;
	vma->vm_private_data = private;
	vma->vm_ops = ops;
	return 0;
}
