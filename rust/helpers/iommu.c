// SPDX-License-Identifier: GPL-2.0

#include <linux/iommu.h>
#include <linux/msi.h>

__rust_helper void rust_helper_iommu_iotlb_gather_init(struct iommu_iotlb_gather *gather)
{
	iommu_iotlb_gather_init(gather);
}

__rust_helper void rust_helper_iommu_iotlb_sync(struct iommu_domain *domain,
						struct iommu_iotlb_gather *iotlb_gather)
{
	iommu_iotlb_sync(domain, iotlb_gather);
}

__rust_helper void rust_helper_iommu_dirty_bitmap_init(struct iommu_dirty_bitmap *dirty,
						       struct iova_bitmap *bitmap,
						       struct iommu_iotlb_gather *gather)
{
	iommu_dirty_bitmap_init(dirty, bitmap, gather);
}

__rust_helper void rust_helper_iommu_dirty_bitmap_record(struct iommu_dirty_bitmap *dirty,
							 unsigned long iova,
							 unsigned long length)
{
	iommu_dirty_bitmap_record(dirty, iova, length);
}

/* IOMMU_COOKIE_SW_MSI (kernel/patches/0005): the domain's owner maps MSI doorbells itself. */
__rust_helper int
rust_helper_iommu_domain_set_sw_msi(struct iommu_domain *domain,
				    int (*sw_msi)(struct iommu_domain *domain,
						  struct msi_desc *desc,
						  phys_addr_t msi_addr),
				    void *data)
{
	if (domain->cookie_type != IOMMU_COOKIE_NONE)
		return -EBUSY;
	domain->cookie_type = IOMMU_COOKIE_SW_MSI;
	domain->sw_msi = sw_msi;
	domain->sw_msi_data = data;
	return 0;
}

__rust_helper void *rust_helper_iommu_domain_sw_msi_data(struct iommu_domain *domain)
{
	return domain->cookie_type == IOMMU_COOKIE_SW_MSI ? domain->sw_msi_data : NULL;
}

__rust_helper struct device *rust_helper_msi_desc_to_dev(struct msi_desc *desc)
{
	return msi_desc_to_dev(desc);
}

__rust_helper void rust_helper_msi_desc_set_iommu_msi_iova(struct msi_desc *desc, u64 msi_iova,
							   unsigned int msi_shift)
{
	msi_desc_set_iommu_msi_iova(desc, msi_iova, msi_shift);
}
