// SPDX-License-Identifier: GPL-2.0-only
/*
 * m5: lets user space in a gem5 guest issue m5ops without root.
 *
 * A misc device, /dev/gem5_bridge (mode 0666), whose mmap exposes the physical m5ops MMIO range,
 * the interface of gem5's util/gem5_bridge driver that gem5's `m5` utility uses. The range is a
 * pair of module parameters with a per-architecture default; a mapping must lie inside it and is
 * made with device (non-cacheable) memory attributes, so every access reaches the simulator.
 */
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>

#if defined(CONFIG_ARM64) || defined(CONFIG_ARM)
#define M5OPS_DEFAULT_BASE 0x10010000UL
#else
#define M5OPS_DEFAULT_BASE 0xffff0000UL
#endif
#define M5OPS_DEFAULT_SIZE 0x10000UL

static unsigned long gem5_bridge_baseaddr = M5OPS_DEFAULT_BASE;
module_param(gem5_bridge_baseaddr, ulong, 0444);
MODULE_PARM_DESC(gem5_bridge_baseaddr, "physical base of the m5ops MMIO range (page aligned)");

static unsigned long gem5_bridge_rangesize = M5OPS_DEFAULT_SIZE;
module_param(gem5_bridge_rangesize, ulong, 0444);
MODULE_PARM_DESC(gem5_bridge_rangesize, "size of the m5ops MMIO range in bytes (page multiple)");

static int m5_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long size = vma->vm_end - vma->vm_start;
	unsigned long pgoff = vma->vm_pgoff;

	/* Offset and length are both in pages; refuse anything that ends beyond the range. */
	if (pgoff >= (gem5_bridge_rangesize >> PAGE_SHIFT))
		return -EINVAL;
	if (size > gem5_bridge_rangesize - (pgoff << PAGE_SHIFT))
		return -EINVAL;

	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	/* io_remap_pfn_range marks the VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. */
	return io_remap_pfn_range(vma, vma->vm_start, (gem5_bridge_baseaddr >> PAGE_SHIFT) + pgoff, size,
				  vma->vm_page_prot);
}

static const struct file_operations m5_fops = {
	.owner = THIS_MODULE,
	.mmap = m5_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice m5_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "gem5_bridge",
	.fops = &m5_fops,
	.mode = 0666,
};

static int __init m5_init(void)
{
	int err;

	if (!gem5_bridge_rangesize || !PAGE_ALIGNED(gem5_bridge_baseaddr) || !PAGE_ALIGNED(gem5_bridge_rangesize) ||
	    gem5_bridge_baseaddr + gem5_bridge_rangesize < gem5_bridge_baseaddr) {
		pr_err("m5: base 0x%lx size 0x%lx: need a non-empty, page-aligned range\n", gem5_bridge_baseaddr,
		       gem5_bridge_rangesize);
		return -EINVAL;
	}
	err = misc_register(&m5_dev);
	if (err) {
		pr_err("m5: misc_register failed: %d\n", err);
		return err;
	}
	pr_info("m5: /dev/%s maps m5ops at 0x%lx, 0x%lx bytes\n", m5_dev.name, gem5_bridge_baseaddr,
		gem5_bridge_rangesize);
	return 0;
}

static void __exit m5_exit(void)
{
	misc_deregister(&m5_dev);
	pr_info("m5: unloaded\n");
}

module_init(m5_init);
module_exit(m5_exit);

MODULE_DESCRIPTION("gem5 m5ops bridge: mmap of the m5ops MMIO range for user space");
MODULE_ALIAS("gem5_bridge");
MODULE_LICENSE("GPL");
