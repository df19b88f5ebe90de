// SPDX-License-Identifier: MIT
/*
 * replay.c - run a fuzz target without libFuzzer, as a `make check` test:
 * every input of its committed seed corpus, then deterministic mutations
 * of each (byte flips, truncation, growth).  A regression that the fuzzer
 * once found, or that breaks a seed, fails here with any compiler.
 *
 * The corpus is $top_srcdir/tests/fuzz/corpus/FUZZ_NAME, or the
 * directories given as arguments.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target"
#endif

#define MUTATIONS 300
#define REPLAY_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t read_file(const char *path, uint8_t *buf)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, REPLAY_MAX, f);
	fclose(f);
	return n;
}

static unsigned long run_dir(const char *dir)
{
	static uint8_t buf[REPLAY_MAX], mut[REPLAY_MAX];
	unsigned long runs = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((de = readdir(d))) {
		char path[4096];
		size_t n, m;
		int i, k;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = read_file(path, buf);
		LLVMFuzzerTestOneInput(buf, n);
		runs++;
		for (i = 0; i < MUTATIONS; i++) {
			m = n;
			memcpy(mut, buf, n);
			switch (next() % 4) {
			case 0:		/* truncate */
				m = n ? next() % n : 0;
				break;
			case 1:		/* grow with noise */
				m = n + next() % 256;
				if (m > REPLAY_MAX)
					m = REPLAY_MAX;
				for (k = (int)n; k < (int)m; k++)
					mut[k] = (uint8_t)next();
				break;
			default:	/* flip a few bytes, mostly near the front */
				for (k = 0; k < 1 + (int)(next() % 8) && n; k++) {
					size_t at = next() % (next() % 2 ? (n < 512 ? n : 512) : n);

					mut[at] ^= (uint8_t)(1 + next() % 255);
				}
			}
			LLVMFuzzerTestOneInput(mut, m);
			runs++;
		}
	}
	closedir(d);
	return runs;
}

int main(int argc, char **argv)
{
	unsigned long runs = 0;
	int i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			runs += run_dir(argv[i]);
	} else {
		const char *top = getenv("top_srcdir");
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top ? top : ".", FUZZ_NAME);
		runs = run_dir(dir);
	}
	printf("%s: %lu inputs, no crash\n", FUZZ_NAME, runs);
	return runs ? 0 : 1;
}
