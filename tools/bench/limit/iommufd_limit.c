// SPDX-License-Identifier: GPL-2.0
/*
 * iommufd_limit: the physical limit of the bench (make bench).
 *
 * A misc device, /dev/iommufd_limit, times in the kernel the bare
 * operations an IOMMU_IOAS_MAP plus IOMMU_IOAS_UNMAP of a user range cannot
 * do without: pin the pages, map each physically contiguous run into each
 * paging domain, unmap the range, unpin by run. No objects, no interval
 * trees, no accounting, no copies. Its null ioctl is the cost of entering
 * and leaving an ioctl of a misc device. The interface is in
 * ../iommufd_limit.h. Test-only: never loaded outside the bench VM.
 */
#include <linux/iommu.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "../iommufd_limit.h"

#define LIMIT_MAX_DOMAINS 4
#define LIMIT_MAX_LEN (1UL << 30)
/* Where the range is mapped in each domain: 1 GiB aligned. */
#define LIMIT_IOVA (1UL << 30)

/* Pins the whole range; returns 0 or a negative errno with nothing pinned. */
static int limit_pin(unsigned long uaddr, unsigned long npages,
		     struct page **pages)
{
	unsigned long done = 0;

	while (done < npages) {
		int want = min_t(unsigned long, npages - done, INT_MAX);
		int got = pin_user_pages_fast(uaddr + done * PAGE_SIZE, want,
					      FOLL_WRITE | FOLL_LONGTERM,
					      pages + done);

		if (got <= 0) {
			if (done)
				unpin_user_pages(pages, done);
			return got ? got : -EFAULT;
		}
		done += got;
	}
	return 0;
}

/* The length of the physically contiguous run of pages at pages[i]. */
static unsigned long limit_run(struct page **pages, unsigned long i,
			       unsigned long npages)
{
	unsigned long n = 1;

	while (i + n < npages &&
	       page_to_pfn(pages[i + n]) == page_to_pfn(pages[i]) + n)
		n++;
	return n;
}

static int limit_map_one(struct iommu_domain **doms, unsigned int ndoms,
			 unsigned long uaddr, unsigned long npages,
			 struct page **pages)
{
	unsigned long len = npages * PAGE_SIZE;
	unsigned long i, n;
	unsigned int d;
	int ret;

	ret = limit_pin(uaddr, npages, pages);
	if (ret)
		return ret;
	for (d = 0; d != ndoms; d++) {
		for (i = 0; i < npages; i += n) {
			n = limit_run(pages, i, npages);
			ret = iommu_map(doms[d], LIMIT_IOVA + i * PAGE_SIZE,
					page_to_phys(pages[i]), n * PAGE_SIZE,
					IOMMU_READ | IOMMU_WRITE,
					GFP_KERNEL_ACCOUNT);
			if (ret) {
				if (i)
					iommu_unmap(doms[d], LIMIT_IOVA,
						    i * PAGE_SIZE);
				break;
			}
		}
		if (ret)
			break;
	}
	/* Unmap what was mapped (all of it unless a map failed). */
	while (d--)
		iommu_unmap(doms[d], LIMIT_IOVA, len);
	for (i = 0; i < npages; i += n) {
		n = limit_run(pages, i, npages);
		unpin_user_page_range_dirty_lock(pages[i], n, true);
	}
	return ret;
}

static long limit_map(struct iommufd_limit_map __user *uarg)
{
	struct iommu_domain *doms[LIMIT_MAX_DOMAINS] = {};
	struct pci_dev *pdev = NULL;
	struct iommufd_limit_map arg;
	unsigned long npages;
	struct page **pages;
	unsigned int d, op;
	u64 t0, t;
	int ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.length || arg.length > LIMIT_MAX_LEN ||
	    !PAGE_ALIGNED(arg.uaddr) || !PAGE_ALIGNED(arg.length) ||
	    arg.ndomains > LIMIT_MAX_DOMAINS || !arg.ops)
		return -EINVAL;
	npages = arg.length >> PAGE_SHIFT;
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (arg.ndomains) {
		/* QEMU's edu (1234:11e8): a device behind the VM's IOMMU. */
		pdev = pci_get_device(0x1234, 0x11e8, NULL);
		if (!pdev) {
			ret = -ENODEV;
			goto out;
		}
	}
	for (d = 0; d != arg.ndomains; d++) {
		doms[d] = iommu_paging_domain_alloc(&pdev->dev);
		if (IS_ERR(doms[d])) {
			ret = PTR_ERR(doms[d]);
			doms[d] = NULL;
			goto out;
		}
	}
	/* Warm up: first-touch costs are not what is measured. */
	ret = limit_map_one(doms, arg.ndomains, arg.uaddr, npages, pages);
	if (ret)
		goto out;
	t0 = ktime_get_ns();
	for (op = 0; op != arg.ops; op++) {
		ret = limit_map_one(doms, arg.ndomains, arg.uaddr, npages,
				    pages);
		if (ret)
			goto out;
		cond_resched();
	}
	t = ktime_get_ns() - t0;
	arg.out_ns = div_u64(t, arg.ops);
	if (copy_to_user(uarg, &arg, sizeof(arg)))
		ret = -EFAULT;
out:
	for (d = 0; d != LIMIT_MAX_DOMAINS; d++)
		if (doms[d])
			iommu_domain_free(doms[d]);
	pci_dev_put(pdev);
	kvfree(pages);
	return ret;
}

static long limit_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case IOMMUFD_LIMIT_NULL:
		return 0;
	case IOMMUFD_LIMIT_MAP:
		return limit_map((struct iommufd_limit_map __user *)arg);
	}
	return -ENOTTY;
}

static const struct file_operations limit_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = limit_ioctl,
};

static struct miscdevice limit_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "iommufd_limit",
	.fops = &limit_fops,
};

module_misc_device(limit_misc);
MODULE_DESCRIPTION("The physical limit of the iommufd bench: bare pin, map, unmap, unpin");
MODULE_LICENSE("GPL");
