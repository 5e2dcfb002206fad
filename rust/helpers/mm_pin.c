// SPDX-License-Identifier: GPL-2.0

#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mmap_lock.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>

__rust_helper unsigned long rust_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

__rust_helper void rust_helper_mmap_write_lock(struct mm_struct *mm)
{
	mmap_write_lock(mm);
}

__rust_helper void rust_helper_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}

__rust_helper struct user_struct *rust_helper_get_current_user(void)
{
	return get_uid(current_user());
}

__rust_helper void rust_helper_get_uid(struct user_struct *u)
{
	get_uid(u);
}

__rust_helper unsigned long rust_helper_task_rlimit(const struct task_struct *task,
						    unsigned int limit)
{
	return task_rlimit(task, limit);
}

__rust_helper long rust_helper_atomic_long_read(const atomic_long_t *v)
{
	return atomic_long_read(v);
}

__rust_helper bool rust_helper_atomic_long_try_cmpxchg(atomic_long_t *v, long *old, long new)
{
	return atomic_long_try_cmpxchg(v, old, new);
}

__rust_helper void rust_helper_atomic_long_sub(long i, atomic_long_t *v)
{
	atomic_long_sub(i, v);
}

__rust_helper int rust_helper_page_ref_count(const struct page *page)
{
	return page_ref_count(page);
}

__rust_helper bool rust_helper_PageCompound(const struct page *page)
{
	return PageCompound(page);
}

__rust_helper void rust_helper_put_page(struct page *page)
{
	put_page(page);
}

__rust_helper void rust_helper_mm_add_pinned_vm(struct mm_struct *mm, s64 npages)
{
	atomic64_add(npages, &mm->pinned_vm);
}

__rust_helper struct mm_struct *rust_helper_get_current_mm_raw(void)
{
	return current->mm;
}

__rust_helper struct task_struct *rust_helper_get_current_group_leader(void)
{
	struct task_struct *leader = current->group_leader;

	get_task_struct(leader);
	return leader;
}

__rust_helper atomic_long_t *rust_helper_user_locked_vm(struct user_struct *user)
{
	return &user->locked_vm;
}

__rust_helper struct page *rust_helper_folio_page(struct folio *folio, unsigned long n)
{
	return folio_page(folio, n);
}

__rust_helper size_t rust_helper_num_pages_contiguous(struct page **pages, size_t nr_pages)
{
	return num_pages_contiguous(pages, nr_pages);
}
