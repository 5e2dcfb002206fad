// SPDX-License-Identifier: GPL-2.0

#include <linux/dma-buf.h>
#include <linux/io.h>

__rust_helper void rust_helper_get_dma_buf(struct dma_buf *dmabuf)
{
	get_dma_buf(dmabuf);
}

/*
 * Field accessors: struct dma_buf and struct dma_buf_attachment embed
 * config-dependent members (spinlock_t, wait queues), so Rust does not read
 * them through the bindgen layout.
 */
__rust_helper size_t rust_helper_dma_buf_size_of(const struct dma_buf *dmabuf)
{
	return dmabuf->size;
}

__rust_helper void *rust_helper_dma_buf_priv_of(const struct dma_buf *dmabuf)
{
	return dmabuf->priv;
}

__rust_helper const struct dma_buf_ops *
rust_helper_dma_buf_ops_of(const struct dma_buf *dmabuf)
{
	return dmabuf->ops;
}

__rust_helper struct dma_resv *rust_helper_dma_buf_resv_of(const struct dma_buf *dmabuf)
{
	return dmabuf->resv;
}

__rust_helper void *
rust_helper_dma_buf_attachment_importer_priv(const struct dma_buf_attachment *attach)
{
	return attach->importer_priv;
}

/* dma_buf_export() with the fields DEFINE_DMA_BUF_EXPORT_INFO() leaves to the caller. */
__rust_helper struct dma_buf *
rust_helper_dma_buf_export_simple(const struct dma_buf_ops *ops, size_t size,
				  int flags, void *priv, struct module *owner,
				  const char *exp_name)
{
	struct dma_buf_export_info exp_info = {
		.exp_name = exp_name,
		.owner = owner,
		.ops = ops,
		.size = size,
		.flags = flags,
		.priv = priv,
	};

	return dma_buf_export(&exp_info);
}

__rust_helper phys_addr_t rust_helper_virt_to_phys(void *address)
{
	return virt_to_phys(address);
}
