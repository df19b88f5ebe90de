// SPDX-License-Identifier: MIT
/*
 * bench-util.c - histogram, clocks and CPU accounting for hvn-bench (see
 * bench.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* The middle of bucket i, the value it stands for. */
static uint64_t bucket_value(unsigned int i)
{
	unsigned int e, sub;
	uint64_t lo, width;

	if (i < HIST_SUB)
		return i;
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	sub = i % HIST_SUB;
	width = UINT64_C(1) << (e - HIST_SUB_BITS);
	lo = (UINT64_C(1) << e) + (uint64_t)sub * width;
	return lo + width / 2;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;
	unsigned int i;

	if (!h->count)
		return 0;
	/* The sample of rank ceil(q * count), counting from 1. */
	want = (uint64_t)(q * (double)h->count + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = bucket_value(i);

			/* A bucket's middle may lie outside what was seen. */
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u;
}

void cpu_sample_self(struct cpu_sample *s)
{
	struct timespec ts;
	struct rusage ru;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	s->process = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	getrusage(RUSAGE_SELF, &ru);
	s->user = tv_ns(&ru.ru_utime);
	s->sys = tv_ns(&ru.ru_stime);
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return (int)n;
}

/* utime + stime of the whole thread group: fields 14 and 15 of /proc/PID/stat. */
static int64_t stat_ns(pid_t pid)
{
	static long hz;
	unsigned long long ut, st;
	char path[64], buf[1024];
	const char *p;
	int field;

	if (!hz)
		hz = sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0 || hz <= 0)
		return -1;
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields we want are counted from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (field = 3; field < 14 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (!p || sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)hz));
}

static int64_t sched_ns(pid_t pid)
{
	char path[96], buf[256];
	struct dirent *e;
	int64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		unsigned long long ns;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
		/* A thread may exit between readdir and open: skip it. */
		if (read_small(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%llu", &ns) == 1)
			sum += (int64_t)ns;
	}
	closedir(d);
	return sum;
}

void proc_cpu_sample(pid_t pid, struct proc_cpu *s)
{
	s->stat_ns = pid > 0 ? stat_ns(pid) : -1;
	s->sched_ns = pid > 0 ? sched_ns(pid) : -1;
}

void machine_cpu_sample(struct machine_cpu *s)
{
	static long hz;
	unsigned long long v[8];
	char buf[512];

	s->busy_ns = s->steal_ns = -1;
	if (!hz)
		hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || read_small("/proc/stat", buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) != 8)
		return;
	/* user nice system idle iowait irq softirq steal */
	s->busy_ns = (int64_t)((v[0] + v[1] + v[2] + v[5] + v[6]) *
			       (1000000000ull / (unsigned long long)hz));
	s->steal_ns = (int64_t)(v[7] * (1000000000ull / (unsigned long long)hz));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double clock_cost_ns(void)
{
	double runs[7];
	unsigned int r, i;

	for (r = 0; r < 7; r++) {
		uint64_t t0 = now_ns(), t1;
		volatile uint64_t sink = 0;

		for (i = 0; i < 10000; i++)
			sink += now_ns();
		t1 = now_ns();
		(void)sink;
		runs[r] = (double)(t1 - t0) / 10001.0;
	}
	qsort(runs, 7, sizeof(runs[0]), cmp_double);
	return runs[3];
}

int pin_thread(int cpu)
{
	cpu_set_t set;
	int r;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return -r;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
