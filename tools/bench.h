/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the parts of hvn-bench that are not the benchmark loop: the
 * latency histogram, the clock, CPU accounting of this process and of the
 * backend, and the machine's floors (ping-pong round trips).
 */
#ifndef HVN_TOOLS_BENCH_H
#define HVN_TOOLS_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns: the vDSO's, no system call with a TSC clocksource. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A spinning thread tells the CPU so (and its SMT sibling gets the core). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Latencies in ns, log-linear: exact below 64 ns, then 64 buckets per
 * power of two, so any value is off by less than 1/64 (1.6%).  Adding is
 * a few instructions and no allocation, so every request is recorded.
 */
#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;		/* ns */
	uint64_t min, max;
	uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
static inline void hist_add(struct hist *h, uint64_t v)
{
	unsigned int i;

	if (v < HIST_SUB) {
		i = (unsigned int)v;
	} else {
		unsigned int e = 63u - (unsigned int)__builtin_clzll(v);	/* >= HIST_SUB_BITS */

		i = (e - HIST_SUB_BITS + 1) * HIST_SUB +
		    (unsigned int)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
	}
	h->b[i]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}
/* The value below which a fraction q (0..1) of the samples lie; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* CPU time, ns. */
struct cpu_sample {
	uint64_t process;	/* CLOCK_PROCESS_CPUTIME_ID: this process, all threads */
	uint64_t user, sys;	/* getrusage(RUSAGE_SELF) */
};
void cpu_sample_self(struct cpu_sample *s);

/*
 * Another process's CPU time, ns, all its threads, two ways:
 * /proc/PID/stat utime + stime (clock ticks: 10 ms here, but the kernel
 * scales them to the exact runtime, so only the resolution is coarse) and
 * the sum of /proc/PID/task/ * /schedstat (exact, but threads that have
 * exited are missing).  Each is -1 when it cannot be read.
 */
struct proc_cpu {
	int64_t stat_ns;
	int64_t sched_ns;
};
void proc_cpu_sample(pid_t pid, struct proc_cpu *s);

/*
 * The whole machine, from the "cpu" line of /proc/stat, ns: time all CPUs
 * spent busy (user, nice, system, irq, softirq) and time the hypervisor
 * took from them (steal).  With this process's and the backend's own CPU
 * time it says how much else ran during a measurement: the noise.
 * -1 when it cannot be read.
 */
struct machine_cpu {
	int64_t busy_ns;
	int64_t steal_ns;
};
void machine_cpu_sample(struct machine_cpu *s);

/* The cost of one now_ns() call, ns (median of a few measurements). */
double clock_cost_ns(void);

/* Pin the calling thread to one CPU; -errno. */
int pin_thread(int cpu);

/* The floors: round trips between two threads on cpu and peer_cpu, ns. */
struct floor_result {
	double eventfd_rtt_ns;		/* eventfd write + blocking read, each way */
	double eventfd_p50_ns;		/* the same, median of short batches */
	uint64_t eventfd_iters;
	double spin_rtt_ns;		/* a store seen by the other side, each way */
	double spin_p50_ns;
	uint64_t spin_iters;
};
int floor_measure(int cpu, int peer_cpu, double secs, struct floor_result *out,
		  char *why, size_t why_len);

/* JSON: a string with the characters JSON requires escaped. */
void json_string(FILE *f, const char *s);

#endif /* HVN_TOOLS_BENCH_H */
