// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel iommufd API that VFIO links against, exported by iommufd_rs.
 *
 * These are the 23 symbols the C iommufd.ko exports in the namespace
 * "IOMMUFD", with the same prototypes (include/linux/iommufd.h). vfio.ko
 * resolves them at load time against whichever iommufd implementation is
 * loaded, so exporting them here is what routes VFIO to the Rust module
 * (Documentation/design.md, "the hook").
 *
 * The Rust core does not serve in-kernel users yet. Until it does, every
 * function behaves as upstream's !CONFIG_IOMMUFD fallbacks in
 * include/linux/iommufd.h do: no file is accepted as an iommufd, so no
 * context, device or access object can ever reach the other functions, and
 * VFIO_DEVICE_BIND_IOMMUFD fails with EOPNOTSUPP. When the core lands, each
 * body becomes a call into Rust.
 */
#include <linux/err.h>
#include <linux/export.h>
#include <linux/iommufd.h>

struct iommufd_ctx *iommufd_ctx_from_file(struct file *file)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");

struct iommufd_ctx *iommufd_ctx_from_fd(int fd)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");

/* No context can exist (see above), so there is nothing to count. */
void iommufd_ctx_get(struct iommufd_ctx *ictx)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");

void iommufd_ctx_put(struct iommufd_ctx *ictx)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");

bool iommufd_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	return false;
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");

struct iommufd_device *iommufd_device_bind(struct iommufd_ctx *ictx,
					   struct device *dev, u32 *id)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");

void iommufd_device_unbind(struct iommufd_device *idev)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");

int iommufd_device_attach(struct iommufd_device *idev, ioasid_t pasid,
			  u32 *pt_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");

int iommufd_device_replace(struct iommufd_device *idev, ioasid_t pasid,
			   u32 *pt_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");

void iommufd_device_detach(struct iommufd_device *idev, ioasid_t pasid)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");

struct iommufd_ctx *iommufd_device_to_ictx(struct iommufd_device *idev)
{
	return NULL;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");

u32 iommufd_device_to_id(struct iommufd_device *idev)
{
	return 0;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");

struct iommufd_access *
iommufd_access_create(struct iommufd_ctx *ictx,
		      const struct iommufd_access_ops *ops, void *data, u32 *id)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_create, "IOMMUFD");

void iommufd_access_destroy(struct iommufd_access *access)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_destroy, "IOMMUFD");

int iommufd_access_attach(struct iommufd_access *access, u32 ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_attach, "IOMMUFD");

int iommufd_access_replace(struct iommufd_access *access, u32 ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_replace, "IOMMUFD");

void iommufd_access_detach(struct iommufd_access *access)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_detach, "IOMMUFD");

int iommufd_access_pin_pages(struct iommufd_access *access, unsigned long iova,
			     unsigned long length, struct page **out_pages,
			     unsigned int flags)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_pin_pages, "IOMMUFD");

void iommufd_access_unpin_pages(struct iommufd_access *access,
				unsigned long iova, unsigned long length)
{
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_unpin_pages, "IOMMUFD");

int iommufd_access_rw(struct iommufd_access *access, unsigned long iova,
		      void *data, size_t len, unsigned int flags)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_rw, "IOMMUFD");

int iommufd_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx, u32 *out_ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_get_id, "IOMMUFD");

int iommufd_vfio_compat_ioas_create(struct iommufd_ctx *ictx)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_create, "IOMMUFD");

int iommufd_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_set_no_iommu, "IOMMUFD");
