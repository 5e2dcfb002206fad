// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel iommufd API that VFIO links against, exported by iommufd_rs.
 *
 * These are the 23 symbols the C iommufd.ko exports, with the same
 * prototypes (include/linux/iommufd.h) and namespaces ("IOMMUFD", and
 * "IOMMUFD_VFIO" for the VFIO compat helpers). vfio.ko resolves them at load
 * time against whichever iommufd implementation is loaded, so exporting them
 * here is what routes VFIO to the Rust module (Documentation/design.md,
 * "the hook"). Each function is a thin shim over its Rust implementation in
 * drivers/vfio/api.rs (device binding and attachment) and drivers/ioas/access.rs
 * (access objects); the opaque types are Rust objects:
 *
 *   struct iommufd_ctx *     a counted reference to a context
 *   struct iommufd_device *  a device bound by the caller
 *   struct iommufd_access *  an access created by the caller
 */
#include <linux/err.h>
#include <linux/export.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hugetlb.h>
#include <linux/iommufd.h>
#include <linux/pci-ats.h>
#include <linux/pci.h>
#include <linux/shmem_fs.h>

/* drivers/vfio/api.rs */
struct iommufd_ctx *iommufd_rs_ctx_from_private(void *private_data);
void iommufd_rs_ctx_get(struct iommufd_ctx *ictx);
void iommufd_rs_ctx_put(struct iommufd_ctx *ictx);
bool iommufd_rs_ctx_has_group(struct iommufd_ctx *ictx,
			      struct iommu_group *group);
int iommufd_rs_device_bind(struct iommufd_ctx *ictx, struct device *dev,
			   struct iommufd_device **out, u32 *id);
void iommufd_rs_device_unbind(struct iommufd_device *idev);
int iommufd_rs_device_attach(struct iommufd_device *idev, ioasid_t pasid,
			     u32 *pt_id);
int iommufd_rs_device_replace(struct iommufd_device *idev, ioasid_t pasid,
			      u32 *pt_id);
void iommufd_rs_device_detach(struct iommufd_device *idev, ioasid_t pasid);
struct iommufd_ctx *iommufd_rs_device_to_ictx(struct iommufd_device *idev);
u32 iommufd_rs_device_to_id(struct iommufd_device *idev);
int iommufd_rs_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx,
				       u32 *out_ioas_id);
int iommufd_rs_vfio_compat_ioas_create(struct iommufd_ctx *ictx);
int iommufd_rs_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx);

/* drivers/ioas/access.rs */
int iommufd_rs_access_create(struct iommufd_ctx *ictx,
			     const struct iommufd_access_ops *ops, void *data,
			     struct iommufd_access **out, u32 *id);
void iommufd_rs_access_destroy(struct iommufd_access *access);
int iommufd_rs_access_attach(struct iommufd_access *access, u32 ioas_id,
			     bool replace);
void iommufd_rs_access_detach(struct iommufd_access *access);
int iommufd_rs_access_pin_pages(struct iommufd_access *access,
				unsigned long iova, unsigned long length,
				unsigned long *out_pfns, unsigned int flags);
void iommufd_rs_access_unpin_pages(struct iommufd_access *access,
				   unsigned long iova, unsigned long length);
int iommufd_rs_access_rw(struct iommufd_access *access, unsigned long iova,
			 void *data, size_t len, unsigned int flags);

/* Called from Rust (drivers/iommufd_rs_main.rs, drivers/ioas/access.rs). */
void iommufd_rs_publish_fops(unsigned int slot,
			     const struct file_operations *fops);
void iommufd_rs_access_call_unmap(const struct iommufd_access_ops *ops,
				  void *data, u64 iova, u64 length);
unsigned int iommufd_rs_access_ops_flags(const struct iommufd_access_ops *ops);
/* Called from Rust (drivers/ioas/pages.rs, drivers/device.rs). */
bool iommufd_rs_file_pinnable(struct file *file);
bool iommufd_rs_dev_is_pri_vf(struct device *dev);

/*
 * The file operations of the module's misc devices (/dev/iommu and
 * /dev/vfio/vfio), set by the module while they are registered: a file is an
 * iommufd exactly when it has them. Both devices are registered with the
 * same Rust vtable, so the two slots normally hold the same pointer.
 */
static const struct file_operations *iommufd_rs_fops[2];

void iommufd_rs_publish_fops(unsigned int slot, const struct file_operations *fops)
{
	if (slot < ARRAY_SIZE(iommufd_rs_fops))
		WRITE_ONCE(iommufd_rs_fops[slot], fops);
}

static bool iommufd_rs_is_ours(struct file *file)
{
	unsigned int i;

	for (i = 0; i != ARRAY_SIZE(iommufd_rs_fops); i++) {
		const struct file_operations *fops = READ_ONCE(iommufd_rs_fops[i]);

		if (fops && file->f_op == fops)
			return true;
	}
	return false;
}

struct iommufd_ctx *iommufd_ctx_from_file(struct file *file)
{
	if (!iommufd_rs_is_ours(file))
		return ERR_PTR(-EBADFD);
	return iommufd_rs_ctx_from_private(file->private_data);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");

struct iommufd_ctx *iommufd_ctx_from_fd(int fd)
{
	struct iommufd_ctx *ictx;
	struct file *file;

	file = fget(fd);
	if (!file)
		return ERR_PTR(-EBADF);
	ictx = iommufd_ctx_from_file(file);
	fput(file);
	return ictx;
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");

void iommufd_ctx_get(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_get(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");

void iommufd_ctx_put(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_put(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");

bool iommufd_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	if (!ictx || !group)
		return false;
	return iommufd_rs_ctx_has_group(ictx, group);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");

struct iommufd_device *iommufd_device_bind(struct iommufd_ctx *ictx,
					   struct device *dev, u32 *id)
{
	struct iommufd_device *idev;
	int rc;

	rc = iommufd_rs_device_bind(ictx, dev, &idev, id);
	return rc ? ERR_PTR(rc) : idev;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");

void iommufd_device_unbind(struct iommufd_device *idev)
{
	iommufd_rs_device_unbind(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");

int iommufd_device_attach(struct iommufd_device *idev, ioasid_t pasid,
			  u32 *pt_id)
{
	return iommufd_rs_device_attach(idev, pasid, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");

int iommufd_device_replace(struct iommufd_device *idev, ioasid_t pasid,
			   u32 *pt_id)
{
	return iommufd_rs_device_replace(idev, pasid, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");

void iommufd_device_detach(struct iommufd_device *idev, ioasid_t pasid)
{
	iommufd_rs_device_detach(idev, pasid);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");

struct iommufd_ctx *iommufd_device_to_ictx(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_ictx(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");

u32 iommufd_device_to_id(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_id(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");

struct iommufd_access *
iommufd_access_create(struct iommufd_ctx *ictx,
		      const struct iommufd_access_ops *ops, void *data, u32 *id)
{
	struct iommufd_access *access;
	int rc;

	rc = iommufd_rs_access_create(ictx, ops, data, &access, id);
	return rc ? ERR_PTR(rc) : access;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_create, "IOMMUFD");

void iommufd_access_destroy(struct iommufd_access *access)
{
	iommufd_rs_access_destroy(access);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_destroy, "IOMMUFD");

int iommufd_access_attach(struct iommufd_access *access, u32 ioas_id)
{
	return iommufd_rs_access_attach(access, ioas_id, false);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_attach, "IOMMUFD");

int iommufd_access_replace(struct iommufd_access *access, u32 ioas_id)
{
	return iommufd_rs_access_attach(access, ioas_id, true);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_replace, "IOMMUFD");

void iommufd_access_detach(struct iommufd_access *access)
{
	iommufd_rs_access_detach(access);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_detach, "IOMMUFD");

/*
 * The Rust side returns page frame numbers; struct page pointers are made
 * here, where the memory model's pfn_to_page() is at hand.
 */
int iommufd_access_pin_pages(struct iommufd_access *access, unsigned long iova,
			     unsigned long length, struct page **out_pages,
			     unsigned int flags)
{
	unsigned long *pfns = (unsigned long *)out_pages;
	unsigned long i, npages;
	int rc;

	BUILD_BUG_ON(sizeof(unsigned long) != sizeof(struct page *));
	rc = iommufd_rs_access_pin_pages(access, iova, length, pfns, flags);
	if (rc)
		return rc;
	npages = (ALIGN(iova + length, PAGE_SIZE) - ALIGN_DOWN(iova, PAGE_SIZE)) /
		 PAGE_SIZE;
	for (i = 0; i != npages; i++)
		out_pages[i] = pfn_to_page(pfns[i]);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_pin_pages, "IOMMUFD");

void iommufd_access_unpin_pages(struct iommufd_access *access,
				unsigned long iova, unsigned long length)
{
	iommufd_rs_access_unpin_pages(access, iova, length);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_unpin_pages, "IOMMUFD");

int iommufd_access_rw(struct iommufd_access *access, unsigned long iova,
		      void *data, size_t len, unsigned int flags)
{
	return iommufd_rs_access_rw(access, iova, data, len, flags);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_rw, "IOMMUFD");

int iommufd_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx, u32 *out_ioas_id)
{
	return iommufd_rs_vfio_compat_ioas_get_id(ictx, out_ioas_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_get_id, "IOMMUFD_VFIO");

int iommufd_vfio_compat_ioas_create(struct iommufd_ctx *ictx)
{
	return iommufd_rs_vfio_compat_ioas_create(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_create, "IOMMUFD_VFIO");

int iommufd_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx)
{
	return iommufd_rs_vfio_compat_set_no_iommu(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_set_no_iommu, "IOMMUFD_VFIO");

/* Calls of drivers/ioas/access.rs into an access owner's ops. */
void iommufd_rs_access_call_unmap(const struct iommufd_access_ops *ops,
				  void *data, u64 iova, u64 length)
{
	ops->unmap(data, iova, length);
}

/* Bit 0: the owner pins pages; bit 1: it can be told to unpin (ops->unmap). */
unsigned int iommufd_rs_access_ops_flags(const struct iommufd_access_ops *ops)
{
	return (ops->needs_pin_pages ? 1 : 0) | (ops->unmap ? 2 : 0);
}

/*
 * Whether memfd_pin_folios() can pin pages of @file: shmem (memfd, tmpfs) and
 * hugetlbfs files. Both tests are inlines of the C headers (shmem_file() reads
 * file->f_mapping, is_file_hugepages() the fops flags), hence done here.
 */
bool iommufd_rs_file_pinnable(struct file *file)
{
	return shmem_file(file) || is_file_hugepages(file);
}

/*
 * Whether @dev is a PCI virtual function that supports PRI. iommufd does not
 * let such a device use a HWPT that takes faults: PRI is shared between the PF
 * and its VFs, with nobody coordinating it, so a failure response to one VF's
 * page request would reach the hardware of all. is_virtfn is a bitfield and
 * dev_is_pci() an inline, hence done here.
 */
bool iommufd_rs_dev_is_pri_vf(struct device *dev)
{
	struct pci_dev *pdev;

	if (!dev_is_pci(dev))
		return false;
	pdev = to_pci_dev(dev);
	return pdev->is_virtfn && pci_pri_supported(pdev);
}
