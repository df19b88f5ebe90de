// SPDX-License-Identifier: MIT
/*
 * log.c - one line per message on stderr, with a level prefix that
 * journald understands (<3> error ... <7> debug) when stderr is the journal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvnotifyd.h"

int log_verbosity = LOG_INFO;

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	static const int syslog_level[] = { 3, 4, 6, 7 };
	static int journal = -1;
	char line[1024];
	va_list ap;

	if ((int)level > log_verbosity)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line: stdio locks the stream, so lines from the
	 * worker threads never interleave. */
	if (journal)
		fprintf(stderr, "<%d>%s\n", syslog_level[level], line);
	else
		fprintf(stderr, "hvnotifyd: %s%s\n", prefix[level], line);
}
