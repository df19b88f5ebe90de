// SPDX-License-Identifier: MIT
/*
 * trap_soft.c - the userspace adapter, for hypervisors with no in-kernel
 * doorbell path (TCG, HVF, WHPX, confidential guests ...).  Its capabilities
 * are all zero, so trap.c routes every record to the userspace table and
 * never calls these; they exist so that the adapter is complete.
 */
#include <errno.h>

#include "trap_internal.h"

static int soft_doorbell(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	return -EOPNOTSUPP;
}

static int soft_irq(struct hvn_vm *vm, const struct hvn_irq *irq)
{
	return -EOPNOTSUPP;
}

const struct trap_adapter trap_soft_adapter = {
	.name = "soft",
	.doorbell_assign = soft_doorbell,
	.doorbell_deassign = soft_doorbell,
	.irq_assign = soft_irq,
	.irq_deassign = soft_irq,
};
