// SPDX-License-Identifier: MIT
/*
 * trap.c - doorbells and interrupt lines, independent of the hypervisor.
 *
 * This file validates records, applies KVM's collision rules to every
 * adapter alike, decides per record whether it goes in the kernel or in the
 * userspace table, and dispatches userspace exits.  The adapters only issue
 * the hypervisor's own calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trap_internal.h"

#define VALID_DOORBELL_FLAGS (HVN_DOORBELL_DATAMATCH | HVN_DOORBELL_USERSPACE)

static int is_hypercall_space(uint32_t space)
{
	return space == HVN_SPACE_HYPERV_SIGNAL || space == HVN_SPACE_XEN_EVTCHN ||
	       space == HVN_SPACE_HCALL;
}

static uint64_t width_mask(uint32_t len)
{
	return len >= 8 || len == 0 ? UINT64_MAX : (UINT64_C(1) << (len * 8)) - 1;
}

static int doorbell_validate(const struct hvn_doorbell *db)
{
	if (db->space >= HVN_SPACE_COUNT || (db->flags & ~VALID_DOORBELL_FLAGS))
		return -EINVAL;
	switch (db->len) {
	case 0: case 1: case 2: case 4: case 8:
		break;
	default:
		return -EINVAL;
	}
	if (db->fd < 0)
		return -EBADF;
	if (db->flags & HVN_DOORBELL_DATAMATCH) {
		/* Any-length writes have no value to compare (KVM's rule). */
		if (db->len == 0)
			return -EINVAL;
		/* A value wider than the access could never match. */
		if (db->datamatch & ~width_mask(db->len))
			return -EINVAL;
	}
	if (is_hypercall_space(db->space) && db->len != 0)
		return -EINVAL;

	switch (db->space) {
	case HVN_SPACE_PIO:
		if (db->addr > 0xffff || db->addr + db->len > 0x10000)
			return -EINVAL;
		break;
	case HVN_SPACE_MMIO:
		if (db->addr + db->len < db->addr)
			return -EINVAL;
		break;
	case HVN_SPACE_HYPERV_SIGNAL:
		/* Hyper-V connection ids are 24 bits wide. */
		if (db->addr > 0xffffff)
			return -EINVAL;
		break;
	case HVN_SPACE_XEN_EVTCHN:
		/* Port 0 is Xen's "no channel". */
		if (db->addr == 0 || db->addr > UINT32_MAX)
			return -EINVAL;
		break;
	}
	return 0;
}

static void entry_from_doorbell(struct trap_entry *e, const struct hvn_doorbell *db)
{
	memset(e, 0, sizeof(*e));
	e->db = *db;
	if (!(db->flags & HVN_DOORBELL_DATAMATCH))
		e->db.datamatch = 0;
}

/*
 * KVM's collision rule (virt/kvm/eventfd.c), applied by every adapter so
 * that a record behaves the same wherever it goes: two doorbells at the same
 * space and address collide if either has any length, or if both have the
 * same length and either has no datamatch or both match the same value.
 */
static int collides(const struct hvn_doorbell *a, const struct hvn_doorbell *b)
{
	if (a->space != b->space || a->addr != b->addr)
		return 0;
	if (a->len == 0 || b->len == 0)
		return 1;
	if (a->len != b->len)
		return 0;
	if (!(a->flags & HVN_DOORBELL_DATAMATCH) || !(b->flags & HVN_DOORBELL_DATAMATCH))
		return 1;
	return a->datamatch == b->datamatch;
}

/* Every record at (space, addr) is contiguous in the sorted table. */
static int table_collides(const struct trap_table *t, const struct hvn_doorbell *db)
{
	struct trap_entry key = { .db = { .space = db->space, .addr = db->addr } };
	size_t i;

	for (i = trap_table_lower_bound(t, &key); i < t->count; i++) {
		const struct hvn_doorbell *o = &t->entries[i].db;

		if (o->space != db->space || o->addr != db->addr)
			break;
		if (collides(o, db))
			return 1;
	}
	return 0;
}

/* Does this record go in the kernel at all, given what the adapter can do? */
static int kernel_can_take(const struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	uint32_t bit = 1u << db->space;

	if (db->flags & HVN_DOORBELL_USERSPACE)
		return 0;
	if (!(vm->caps.kernel_spaces & bit))
		return 0;
	if (db->len == 0 && !(vm->caps.any_length_spaces & bit))
		return 0;
	if ((db->flags & HVN_DOORBELL_DATAMATCH) &&
	    !(vm->caps.datamatch_widths & (1u << db->len)))
		return 0;
	return 1;
}

/*
 * The kernel said it cannot take this record, as opposed to saying the
 * record is wrong: the I/O bus is full (KVM's NR_IOBUS_DEVS gives ENOSPC),
 * or the mechanism is missing on this VM.  Such records go to userspace.
 */
static int is_fallback_error(int err)
{
	return err == -ENOSPC || err == -ENOSYS || err == -ENOTTY || err == -EOPNOTSUPP;
}

/* Register db in the kernel if possible; returns its route or -errno. */
static int route_doorbell(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	int r;

	if (!kernel_can_take(vm, db))
		return HVN_ROUTE_USER;
	r = vm->adapter->doorbell_assign(vm, db);
	if (r == 0)
		return HVN_ROUTE_KERNEL;
	return is_fallback_error(r) ? HVN_ROUTE_USER : r;
}

static void unroute_doorbell(struct hvn_vm *vm, const struct trap_entry *e)
{
	if (e->route == HVN_ROUTE_KERNEL)
		vm->adapter->doorbell_deassign(vm, &e->db);
}

static struct trap_table *current_table(struct hvn_vm *vm)
{
	/* Writers hold vm->lock: nobody else publishes, relaxed is enough. */
	return atomic_load_explicit(&vm->table, memory_order_relaxed);
}

static int cmp_entries(const void *a, const void *b)
{
	return trap_entry_cmp(a, b);
}

int hvn_doorbell_add_batch(struct hvn_vm *vm, const struct hvn_doorbell *dbs,
			   unsigned int count, int *routes)
{
	struct trap_table *cur, *next;
	struct trap_entry *added;
	unsigned int i, done;
	int r = 0;

	if (!vm || (!dbs && count))
		return -EINVAL;
	if (routes)
		memset(routes, 0, count * sizeof(*routes));
	for (i = 0; i < count; i++) {
		r = doorbell_validate(&dbs[i]);
		/* Deleting needs only the record; adding needs a live fd. */
		if (!r && fcntl(dbs[i].fd, F_GETFD) < 0)
			r = -EBADF;
		if (r) {
			if (routes)
				routes[i] = r;
			return r;
		}
	}

	pthread_mutex_lock(&vm->lock);
	cur = current_table(vm);
	next = trap_table_alloc(cur->count + count);
	if (!next) {
		pthread_mutex_unlock(&vm->lock);
		return -ENOMEM;
	}
	memcpy(next->entries, cur->entries, cur->count * sizeof(cur->entries[0]));
	added = next->entries + cur->count;

	/* Check every collision before touching the kernel, so that a batch
	 * that would fail is refused without any rollback at all. */
	for (i = 0; i < count; i++) {
		unsigned int j;

		entry_from_doorbell(&added[i], &dbs[i]);
		r = table_collides(cur, &dbs[i]) ? -EEXIST : 0;
		for (j = 0; !r && j < i; j++)
			if (collides(&added[j].db, &dbs[i]))
				r = -EEXIST;
		if (r)
			goto fail;
	}

	for (done = 0; done < count; done++) {
		r = route_doorbell(vm, &added[done].db);
		if (r < 0) {
			i = done;
			goto rollback;
		}
		added[done].route = (uint32_t)r;
	}

	if (routes)
		for (i = 0; i < count; i++)
			routes[i] = (int)added[i].route;
	qsort(next->entries, next->count, sizeof(next->entries[0]), cmp_entries);
	trap_table_publish(vm, next);
	pthread_mutex_unlock(&vm->lock);
	return 0;

rollback:
	while (done--)
		unroute_doorbell(vm, &added[done]);
fail:
	pthread_mutex_unlock(&vm->lock);
	free(next);
	if (routes)
		routes[i] = r;
	return r;
}

int hvn_doorbell_add(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	int route, r;

	r = hvn_doorbell_add_batch(vm, db, 1, &route);
	return r < 0 ? r : route;
}

static int same_record(const struct hvn_doorbell *a, const struct hvn_doorbell *b)
{
	/* a is normalised (a table entry); b is the caller's. */
	return a->space == b->space && a->addr == b->addr && a->len == b->len &&
	       a->flags == b->flags && a->fd == b->fd &&
	       (!(a->flags & HVN_DOORBELL_DATAMATCH) || a->datamatch == b->datamatch);
}

int hvn_doorbell_del(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	struct trap_table *cur, *next;
	const struct trap_entry *e;
	struct trap_entry key;
	size_t idx;
	int r;

	if (!vm || !db)
		return -EINVAL;
	r = doorbell_validate(db);
	if (r)
		return r == -EBADF ? -ENOENT : r;
	entry_from_doorbell(&key, db);

	pthread_mutex_lock(&vm->lock);
	cur = current_table(vm);
	e = trap_table_find(cur, &key);
	if (!e || !same_record(&e->db, db)) {
		pthread_mutex_unlock(&vm->lock);
		return -ENOENT;
	}
	idx = (size_t)(e - cur->entries);
	next = trap_table_alloc(cur->count - 1);
	if (!next) {
		pthread_mutex_unlock(&vm->lock);
		return -ENOMEM;
	}
	/* Kernel first: once it has let go, only the table can still signal
	 * the fd, and publishing waits for its last reader. */
	if (e->route == HVN_ROUTE_KERNEL) {
		r = vm->adapter->doorbell_deassign(vm, &e->db);
		if (r < 0) {
			pthread_mutex_unlock(&vm->lock);
			free(next);
			return r;
		}
	}
	memcpy(next->entries, cur->entries, idx * sizeof(cur->entries[0]));
	memcpy(next->entries + idx, cur->entries + idx + 1,
	       (cur->count - idx - 1) * sizeof(cur->entries[0]));
	trap_table_publish(vm, next);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int hvn_doorbell_lookup(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	const struct trap_entry *e;
	struct trap_entry key;
	unsigned int slot;
	int r = -ENOENT;

	if (!vm || !db)
		return -EINVAL;
	entry_from_doorbell(&key, db);
	slot = trap_read_lock(vm);
	e = trap_table_find(atomic_load_explicit(&vm->table, memory_order_seq_cst), &key);
	if (e && same_record(&e->db, db))
		r = (int)e->route;
	trap_read_unlock(vm, slot);
	return r;
}

static int signal_eventfd(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, so a wake-up is already pending;
	 * the eventfd is a hint to look at the ring, not a count. */
	if (n < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

/* The one userspace record a write matches, if any: by construction of the
 * collision rules there is at most one. */
static const struct trap_entry *match_write(const struct trap_table *t, uint32_t space,
					    uint64_t addr, uint32_t len, uint64_t value)
{
	struct trap_entry key = { .db = { .space = space, .addr = addr } };
	const struct trap_entry *e;

	e = trap_table_find(t, &key);		/* any length */
	if (e || len == 0 || len > 8)
		return e;
	key.db.len = len;
	e = trap_table_find(t, &key);		/* this length, any value */
	if (e)
		return e;
	key.db.flags = HVN_DOORBELL_DATAMATCH;
	key.db.datamatch = value & width_mask(len);
	return trap_table_find(t, &key);	/* this length and value */
}

int hvn_dispatch(struct hvn_vm *vm, uint32_t space, uint64_t addr, uint32_t len,
		 uint64_t value)
{
	const struct trap_entry *e;
	unsigned int slot;
	int r = 0;

	if (!vm || space >= HVN_SPACE_COUNT)
		return -EINVAL;
	if (is_hypercall_space(space))
		len = 0;

	slot = trap_read_lock(vm);
	e = match_write(atomic_load_explicit(&vm->table, memory_order_seq_cst),
			space, addr, len, value);
	/* Kernel-routed records match too: KVM still forwards some of their
	 * traps (a Hyper-V SIGNAL_EVENT with a flag number, a Xen send from
	 * guest user mode), and an extra signal is harmless where a lost one
	 * is not. */
	if (e)
		r = signal_eventfd(e->db.fd);
	trap_read_unlock(vm, slot);
	return r;
}

/* ---- interrupt lines ---- */

static struct trap_irq_entry *irq_find_fd(struct hvn_vm *vm, int fd)
{
	size_t i;

	for (i = 0; i < vm->nr_irqs; i++)
		if (vm->irqs[i].irq.fd == fd)
			return &vm->irqs[i];
	return NULL;
}

int hvn_irq_add(struct hvn_vm *vm, const struct hvn_irq *irq)
{
	struct trap_irq_entry *e;
	int r = HVN_ROUTE_USER;

	if (!vm || !irq || irq->flags)
		return -EINVAL;
	if (irq->fd < 0 || fcntl(irq->fd, F_GETFD) < 0 ||
	    (irq->resample_fd != -1 && fcntl(irq->resample_fd, F_GETFD) < 0))
		return -EBADF;
	if (irq->resample_fd == irq->fd)
		return -EINVAL;

	pthread_mutex_lock(&vm->lock);
	/* One eventfd drives one line (KVM returns EBUSY too). */
	if (irq_find_fd(vm, irq->fd)) {
		r = -EBUSY;
		goto out;
	}
	if (vm->nr_irqs == vm->cap_irqs) {
		size_t cap = vm->cap_irqs ? vm->cap_irqs * 2 : 8;
		void *p = realloc(vm->irqs, cap * sizeof(*vm->irqs));

		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		vm->irqs = p;
		vm->cap_irqs = cap;
	}
	if (vm->caps.irqfd && (irq->resample_fd < 0 || vm->caps.irqfd_resample)) {
		r = vm->adapter->irq_assign(vm, irq);
		if (r == 0)
			r = HVN_ROUTE_KERNEL;
		/* EAGAIN: this VM cannot inject the line (arm64: vGIC not
		 * ready; x86: no irqchip for it, which the KVM adapter tells
		 * apart from a bad fd): the VMM does.  Other errors, such as
		 * an fd that is not an eventfd, are the caller's to see. */
		else if (r == -EAGAIN || is_fallback_error(r))
			r = HVN_ROUTE_USER;
		if (r < 0)
			goto out;
	}
	e = &vm->irqs[vm->nr_irqs++];
	e->irq = *irq;
	e->route = (uint32_t)r;
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int hvn_irq_del(struct hvn_vm *vm, const struct hvn_irq *irq)
{
	struct trap_irq_entry *e;
	int r = 0;

	if (!vm || !irq)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	e = irq_find_fd(vm, irq->fd);
	if (!e || e->irq.gsi != irq->gsi || e->irq.resample_fd != irq->resample_fd ||
	    e->irq.flags != irq->flags) {
		r = -ENOENT;
		goto out;
	}
	if (e->route == HVN_ROUTE_KERNEL) {
		r = vm->adapter->irq_deassign(vm, &e->irq);
		if (r < 0)
			goto out;
	}
	*e = vm->irqs[--vm->nr_irqs];
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int hvn_irq_resample(struct hvn_vm *vm, uint32_t gsi)
{
	int found = 0, signalled = 0;
	size_t i;

	if (!vm)
		return -EINVAL;
	/* Several lines may share a GSI (a shared level-triggered line): each
	 * source re-checks its own state on EOI.  Lines the kernel injects
	 * are resampled by the kernel. */
	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < vm->nr_irqs; i++) {
		const struct trap_irq_entry *e = &vm->irqs[i];
		int r;

		if (e->irq.gsi != gsi)
			continue;
		found = 1;
		if (e->route != HVN_ROUTE_USER || e->irq.resample_fd < 0)
			continue;
		r = signal_eventfd(e->irq.resample_fd);
		if (r < 0) {
			pthread_mutex_unlock(&vm->lock);
			return r;
		}
		signalled++;
	}
	pthread_mutex_unlock(&vm->lock);
	if (!found)
		return -ENOENT;
	return signalled ? signalled : -EINVAL;
}

/* ---- the VM object ---- */

int trap_vm_alloc(const struct trap_adapter *adapter, int vm_fd, struct hvn_vm **vmp)
{
	struct hvn_vm *vm;
	int r;

	if (!vmp)
		return -EINVAL;
	*vmp = NULL;
	/* _Alignas on members: plain malloc does not honour it. */
	r = posix_memalign((void **)&vm, HVN_CACHELINE, sizeof(*vm));
	if (r)
		return -r;
	memset(vm, 0, sizeof(*vm));
	atomic_init(&vm->table, trap_table_alloc(0));
	if (!atomic_load(&vm->table)) {
		free(vm);
		return -ENOMEM;
	}
	atomic_init(&vm->readers.epoch, 0);
	atomic_init(&vm->readers.slot[0].active, 0);
	atomic_init(&vm->readers.slot[1].active, 0);
	pthread_mutex_init(&vm->lock, NULL);
	vm->adapter = adapter;
	vm->vm_fd = vm_fd;
	*vmp = vm;
	return 0;
}

int hvn_vm_create_soft(struct hvn_vm **vmp)
{
	return trap_vm_alloc(&trap_soft_adapter, -1, vmp);
}

int hvn_vm_caps(const struct hvn_vm *vm, struct hvn_caps *caps)
{
	if (!vm || !caps)
		return -EINVAL;
	*caps = vm->caps;
	return 0;
}

void hvn_vm_destroy(struct hvn_vm *vm)
{
	struct trap_table *t;
	size_t i;

	if (!vm)
		return;
	/* Leave the VM fd as we found it: the VMM may bind it again. */
	t = current_table(vm);
	for (i = 0; i < t->count; i++)
		unroute_doorbell(vm, &t->entries[i]);
	for (i = 0; i < vm->nr_irqs; i++)
		if (vm->irqs[i].route == HVN_ROUTE_KERNEL)
			vm->adapter->irq_deassign(vm, &vm->irqs[i].irq);
	free(t);
	free(vm->irqs);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
