// SPDX-License-Identifier: GPL-2.0
/*
 * edu_dma_test: DMA of QEMU's edu device through the kernel's DMA API, for
 * the second-level guest of `make qemu-nested`.
 *
 * There the edu sits behind QEMU's accelerated vSMMUv3, whose IORT gives
 * the ITS doorbell a reserved region that must stay identity mapped
 * (an RMR without "remapping permitted"). The IOMMU core then refuses to
 * give the device to user space (the blocking domain of a VFIO bind), so
 * the guest's own DMA test runs in the kernel, on the device's DMA domain:
 * stage-1 tables the guest's SMMUv3 driver writes, which QEMU installs as a
 * nested HWPT on the first level's iommufd.
 *
 * At probe: a round trip (RAM -> edu -> other RAM, the bytes compared), then
 * a DMA to an IOVA that was just unmapped (no byte may land; the guest's
 * SMMU reports the fault). Results are TAP lines in the kernel log, each
 * prefixed "edu_dma_test: ".
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#define EDU_ID		0x00
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
/* The edu's own 4 KiB buffer, in its DMA address space. */
#define EDU_BUF		0x40000
#define LEN		256

static int tap_n;

static void tap(bool ok, const char *what, ...)
{
	struct va_format vaf;
	va_list args;

	va_start(args, what);
	vaf.fmt = what;
	vaf.va = &args;
	pr_info("edu_dma_test: %sok %d %pV\n", ok ? "" : "not ", ++tap_n, &vaf);
	va_end(args);
}

/* One edu DMA of LEN bytes; waits until the device says it is done. */
static int edu_dma(void __iomem *bar, u64 src, u64 dst, u64 cmd)
{
	int i;

	writeq(src, bar + EDU_DMA_SRC);
	writeq(dst, bar + EDU_DMA_DST);
	writeq(LEN, bar + EDU_DMA_CNT);
	writeq(cmd | EDU_CMD_START, bar + EDU_DMA_CMD);
	/* The edu runs a DMA from a 100 ms timer. */
	for (i = 0; i < 500; i++) {
		if (!(readq(bar + EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		msleep(20);
	}
	return -ETIMEDOUT;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	dma_addr_t src_iova, dst_iova, gone_iova;
	u8 *src, *dst, *gone;
	void __iomem *bar;
	int err, i, landed;

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	pci_set_master(pdev);
	bar = pcim_iomap_region(pdev, 0, "edu_dma_test");
	if (IS_ERR(bar))
		return PTR_ERR(bar);
	/* The edu's default DMA mask is 28 bits. */
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(28));
	if (err)
		return err;
	pr_info("edu_dma_test: %s id 0x%08x, IOMMU group %d\n", pci_name(pdev),
		readl(bar + EDU_ID), iommu_group_id(pdev->dev.iommu_group));

	src = dma_alloc_coherent(&pdev->dev, PAGE_SIZE, &src_iova, GFP_KERNEL);
	dst = dma_alloc_coherent(&pdev->dev, PAGE_SIZE, &dst_iova, GFP_KERNEL);
	gone = kzalloc(PAGE_SIZE, GFP_KERNEL);
	if (!src || !dst || !gone) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < LEN; i++)
		src[i] = i ^ 0x5a;
	pr_info("edu_dma_test: source IOVA %pad (guest PA %pa), destination IOVA %pad (guest PA %pa)\n",
		&src_iova, &(phys_addr_t){ virt_to_phys(src) }, &dst_iova,
		&(phys_addr_t){ virt_to_phys(dst) });

	err = edu_dma(bar, src_iova, EDU_BUF, 0);
	tap(!err, "edu reads %d bytes from RAM at IOVA %pad", LEN, &src_iova);
	err = err ?: edu_dma(bar, EDU_BUF, dst_iova, EDU_CMD_TO_RAM);
	tap(!err, "edu writes them to RAM at IOVA %pad", &dst_iova);
	tap(!err && !memcmp(src, dst, LEN),
	    "the bytes landed at the destination through the guest's SMMU");

	/* An IOVA that was mapped a moment ago and is not any more. */
	gone_iova = dma_map_single(&pdev->dev, gone, PAGE_SIZE, DMA_FROM_DEVICE);
	if (dma_mapping_error(&pdev->dev, gone_iova)) {
		err = -ENOMEM;
		goto out;
	}
	dma_unmap_single(&pdev->dev, gone_iova, PAGE_SIZE, DMA_FROM_DEVICE);
	err = edu_dma(bar, EDU_BUF, gone_iova, EDU_CMD_TO_RAM);
	tap(!err, "edu DMA to the unmapped IOVA %pad completes (the write is dropped)",
	    &gone_iova);
	for (landed = 0, i = 0; i < LEN; i++)
		landed += gone[i] != 0;
	tap(!landed, "no byte landed in the page that left the IOVA (%d did)", landed);
	err = 0;
out:
	kfree(gone);
	if (dst)
		dma_free_coherent(&pdev->dev, PAGE_SIZE, dst, dst_iova);
	if (src)
		dma_free_coherent(&pdev->dev, PAGE_SIZE, src, src_iova);
	pr_info("edu_dma_test: 1..%d\n", tap_n);
	return err;
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{}
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "edu_dma_test",
	.id_table = edu_ids,
	.probe = edu_probe,
};
module_pci_driver(edu_driver);

MODULE_DESCRIPTION("edu DMA through the DMA API, for make qemu-nested");
MODULE_LICENSE("GPL");
