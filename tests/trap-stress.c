// SPDX-License-Identifier: MIT
/*
 * trap-stress.c - hvn_dispatch() on several vCPU-like threads at once while
 * another thread adds and removes doorbells, closes their eventfds and
 * creates new ones (which reuse the fd numbers).
 *
 * What it proves, with exact counts:
 *  - a doorbell that stays registered is found by every dispatch, whatever
 *    the writer publishes meanwhile (no torn or missing table);
 *  - every successful dispatch to a churned doorbell signalled that
 *    doorbell's own eventfd and no other: if a dispatch used a record after
 *    hvn_doorbell_del() returned, it would write into a closed fd (EBADF)
 *    or into a reused fd number that now belongs to another doorbell, and
 *    the per-doorbell totals below would not add up;
 *  - under --enable-sanitizers, ASan sees no use of a freed table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hvnotify/trap.h>

#include "support/check.h"

#define DISPATCHERS 3
#define STABLE 64
#define CHURN 16
#define WRITER_ROUNDS 2000

static struct hvn_vm *vm;
static int stable_fd[STABLE];
static atomic_int writer_done;

struct dispatcher {
	pthread_t thread;
	uint64_t seed;
	uint64_t stable_hits[STABLE];
	uint64_t churn_hits[CHURN];
	uint64_t stable_misses, errors, calls;
};

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64: cheap, and good enough to spread the addresses */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t stable_port(int i) { return 0x100 + (uint64_t)i; }
static uint64_t churn_addr(int k) { return 0xfe000000 + (uint64_t)k * 8; }

static void *dispatch_loop(void *arg)
{
	struct dispatcher *d = arg;

	/* Keep going a little after the writer stops, so the last tables are
	 * read too. */
	while (!atomic_load(&writer_done) || d->calls % 4096) {
		uint64_t r = next_random(&d->seed);
		int ret;

		d->calls++;
		if (r & 1) {
			int i = (int)((r >> 8) % STABLE);

			ret = hvn_dispatch(vm, HVN_SPACE_PIO, stable_port(i), 1, r >> 32);
			if (ret == 1)
				d->stable_hits[i]++;
			else if (ret == 0)
				d->stable_misses++;
			else
				d->errors++;
		} else {
			int k = (int)((r >> 8) % CHURN);

			ret = hvn_dispatch(vm, HVN_SPACE_MMIO, churn_addr(k), 4, 0);
			if (ret == 1)
				d->churn_hits[k]++;
			else if (ret < 0)
				d->errors++;
		}
	}
	return NULL;
}

static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

struct churn_state {
	struct hvn_doorbell db[CHURN];
	int present[CHURN];
	uint64_t signalled[CHURN];	/* read from each incarnation's eventfd */
	unsigned long adds, dels, batches, failures;
};

static void churn_remove(struct churn_state *c, int k)
{
	if (hvn_doorbell_del(vm, &c->db[k]) != 0) {
		c->failures++;
		return;
	}
	/* After del returns nobody signals this fd: its count is final. */
	c->signalled[k] += efd_take(c->db[k].fd);
	close(c->db[k].fd);
	c->present[k] = 0;
	c->dels++;
}

static void churn_prepare(struct churn_state *c, int k)
{
	c->db[k] = (struct hvn_doorbell){
		.space = HVN_SPACE_MMIO, .addr = churn_addr(k), .len = 4,
		.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
	};
}

static void *writer_loop(void *arg)
{
	struct churn_state *c = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int round, k;

	for (round = 0; round < WRITER_ROUNDS; round++) {
		uint64_t r = next_random(&seed);

		k = (int)(r % CHURN);
		if (c->present[k]) {
			churn_remove(c, k);
		} else if (r & 0x100) {
			churn_prepare(c, k);
			if (hvn_doorbell_add(vm, &c->db[k]) == HVN_ROUTE_USER) {
				c->present[k] = 1;
				c->adds++;
			} else {
				c->failures++;
			}
		} else {
			/* Add every absent one in one batch: one publish. */
			struct hvn_doorbell batch[CHURN];
			int idx[CHURN], n = 0, j;

			for (j = 0; j < CHURN; j++) {
				if (c->present[j])
					continue;
				churn_prepare(c, j);
				idx[n] = j;
				batch[n++] = c->db[j];
			}
			if (hvn_doorbell_add_batch(vm, batch, (unsigned)n, NULL) == 0) {
				for (j = 0; j < n; j++)
					c->present[idx[j]] = 1;
				c->adds += (unsigned long)n;
				c->batches++;
			} else {
				c->failures++;
			}
		}
	}
	for (k = 0; k < CHURN; k++)
		if (c->present[k])
			churn_remove(c, k);
	atomic_store(&writer_done, 1);
	return NULL;
}

int main(void)
{
	static struct dispatcher disp[DISPATCHERS];
	static struct churn_state churn;
	pthread_t writer;
	uint64_t calls = 0, errors = 0, misses = 0;
	int i, k, totals_ok = 1;

	REQUIRE(hvn_vm_create_soft(&vm) == 0, "soft VM");
	for (i = 0; i < STABLE; i++) {
		struct hvn_doorbell d = { .space = HVN_SPACE_PIO, .addr = stable_port(i), .len = 1 };

		d.fd = stable_fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		REQUIRE(d.fd >= 0 && hvn_doorbell_add(vm, &d) == HVN_ROUTE_USER, "stable doorbell %d", i);
	}

	for (i = 0; i < DISPATCHERS; i++) {
		disp[i].seed = 0x1234567ull * (uint64_t)(i + 1);
		REQUIRE(pthread_create(&disp[i].thread, NULL, dispatch_loop, &disp[i]) == 0,
			"start dispatcher %d", i);
	}
	REQUIRE(pthread_create(&writer, NULL, writer_loop, &churn) == 0, "start writer");
	pthread_join(writer, NULL);
	for (i = 0; i < DISPATCHERS; i++)
		pthread_join(disp[i].thread, NULL);

	for (i = 0; i < DISPATCHERS; i++) {
		calls += disp[i].calls;
		errors += disp[i].errors;
		misses += disp[i].stable_misses;
	}
	printf("info %llu dispatches on %d threads; writer: %lu adds (%lu batches), %lu deletes\n",
	       (unsigned long long)calls, DISPATCHERS, churn.adds, churn.batches, churn.dels);
	CHECK(churn.failures == 0, "every add and delete of the writer succeeded (%lu failed)",
	      churn.failures);
	CHECK(churn.adds == churn.dels && churn.dels > WRITER_ROUNDS / 4,
	      "the writer really churned (%lu adds, %lu deletes)", churn.adds, churn.dels);
	CHECK(errors == 0, "no dispatch returned an error (%llu did)", (unsigned long long)errors);
	CHECK(misses == 0, "no dispatch missed a doorbell that stayed registered (%llu did)",
	      (unsigned long long)misses);

	for (i = 0; i < STABLE; i++) {
		uint64_t want = 0, got = efd_take(stable_fd[i]);

		for (k = 0; k < DISPATCHERS; k++)
			want += disp[k].stable_hits[i];
		totals_ok &= got == want;
		close(stable_fd[i]);
	}
	CHECK(totals_ok, "each stable eventfd holds exactly its own dispatches");

	totals_ok = 1;
	for (k = 0; k < CHURN; k++) {
		uint64_t want = 0;

		for (i = 0; i < DISPATCHERS; i++)
			want += disp[i].churn_hits[k];
		if (churn.signalled[k] != want) {
			printf("     churned doorbell %d: %llu dispatches returned 1, its eventfds counted %llu\n",
			       k, (unsigned long long)want, (unsigned long long)churn.signalled[k]);
			totals_ok = 0;
		}
	}
	CHECK(totals_ok, "each churned doorbell's eventfds hold exactly its own dispatches "
	      "(no signal after delete, none into a reused fd)");

	hvn_vm_destroy(vm);
	return t_done("trap-stress");
}
