// SPDX-License-Identifier: MIT
/*
 * device.c - --device specifications, and opening what they name.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvnotifyd.h"

/* "64M", "1G", "4096": bytes, with an optional binary suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int device_parse(struct device *d, const char *spec, char *why, size_t why_len)
{
	char *copy, *tok, *save = NULL;
	bool null = false, have_size = false;
	unsigned long queues = 1;

	memset(d, 0, sizeof(*d));
	d->listen_fd = -1;
	d->socket_mode = 0600;
	d->spec = strdup(spec);
	copy = strdup(spec);
	if (!d->spec || !copy) {
		snprintf(why, why_len, "out of memory");
		free(copy);
		return -ENOMEM;
	}
	tok = strtok_r(copy, ",", &save);
	if (!tok || strcmp(tok, "blk")) {
		snprintf(why, why_len, "unknown device type '%s' (known: blk)", tok ? tok : "");
		goto bad;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');

		if (val)
			*val++ = '\0';
		if (!strcmp(tok, "path") && val && *val) {
			free((char *)d->blk.path);
			d->blk.path = strdup(val);
		} else if (!strcmp(tok, "socket") && val && *val) {
			free(d->socket_path);
			d->socket_path = strdup(val);
		} else if (!strcmp(tok, "mode") && val) {
			if (access_parse_mode(val, &d->socket_mode) < 0) {
				snprintf(why, why_len, "mode=%s: an octal mode from 0 to 0777, "
					 "e.g. 0660", val);
				goto bad;
			}
			d->has_mode = true;
		} else if (!strcmp(tok, "group") && val && *val) {
			if (access_parse_gid(val, &d->socket_gid) < 0) {
				snprintf(why, why_len, "group=%s: no such group", val);
				goto bad;
			}
			d->has_group = true;
		} else if (!strcmp(tok, "queues") && val) {
			char *end;

			errno = 0;
			queues = strtoul(val, &end, 10);
			if (errno || *end || queues == 0 || queues > blk_ops.max_queues) {
				snprintf(why, why_len, "queues=%s: a number from 1 to %u", val,
					 blk_ops.max_queues);
				goto bad;
			}
		} else if (!strcmp(tok, "size") && val) {
			if (parse_size(val, &d->blk.null_size) < 0) {
				snprintf(why, why_len, "size=%s: not a size (e.g. 4096, 64M, 1G)", val);
				goto bad;
			}
			have_size = true;
		} else if (!strcmp(tok, "serial") && val) {
			free((char *)d->blk.serial);
			d->blk.serial = strdup(val);
		} else if (!strcmp(tok, "readonly") && !val) {
			d->blk.readonly = true;
		} else if (!strcmp(tok, "direct") && !val) {
			d->blk.direct = true;
		} else if (!strcmp(tok, "null") && !val) {
			null = true;
		} else {
			snprintf(why, why_len, "unknown or incomplete option '%s%s%s'", tok,
				 val ? "=" : "", val ? val : "");
			goto bad;
		}
	}
	if (!d->socket_path) {
		snprintf(why, why_len, "no socket=PATH to listen on");
		goto bad;
	}
	if (null == !!d->blk.path) {
		snprintf(why, why_len, "give either path=FILE or null (with size=BYTES)");
		goto bad;
	}
	if (null && !have_size) {
		snprintf(why, why_len, "the null backing needs size=BYTES");
		goto bad;
	}
	if (!null && have_size) {
		snprintf(why, why_len, "size= is for the null backing; a file has its own size");
		goto bad;
	}
	if (null && d->blk.null_size < 512) {
		snprintf(why, why_len, "size=%llu: at least one 512-byte sector",
			 (unsigned long long)d->blk.null_size);
		goto bad;
	}
	if (null && d->blk.direct) {
		snprintf(why, why_len, "direct is for a file or block device, not null");
		goto bad;
	}
	d->num_queues = (unsigned int)queues;
	d->ops = &blk_ops;
	free(copy);
	return 0;
bad:
	free(copy);
	device_close(d);
	return -EINVAL;
}

int device_open(struct device *d, char *why, size_t why_len)
{
	snprintf(d->name, sizeof(d->name), "blk%u", d->index);
	return blk_open(&d->blk, d->num_queues, (struct blk_dev **)&d->dev, why, why_len);
}

void device_close(struct device *d)
{
	blk_close(d->dev);
	d->dev = NULL;
	free((char *)d->blk.path);
	free((char *)d->blk.serial);
	free(d->socket_path);
	free(d->spec);
	d->blk.path = d->blk.serial = NULL;
	d->socket_path = d->spec = NULL;
}
