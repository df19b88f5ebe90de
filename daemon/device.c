// SPDX-License-Identifier: MIT
/*
 * device.c - --device specifications, and opening what they name.  The
 * devices themselves are the library's (<hvnotify/dev.h>): this is only
 * where a spec becomes a device's configuration.
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

/*
 * The keys every device takes, about its socket: socket=, mode=, group=.
 * Returns 1 if key was one of them, 0 if not, -EINVAL with why set.
 */
static int parse_socket_key(struct device *d, const char *key, const char *val, char *why,
			    size_t why_len)
{
	if (!strcmp(key, "socket") && val && *val) {
		free(d->socket_path);
		d->socket_path = strdup(val);
		return 1;
	}
	if (!strcmp(key, "mode") && val) {
		if (access_parse_mode(val, &d->socket_mode) < 0) {
			snprintf(why, why_len, "mode=%s: an octal mode from 0 to 0777, e.g. 0660", val);
			return -EINVAL;
		}
		d->has_mode = true;
		return 1;
	}
	if (!strcmp(key, "group") && val && *val) {
		if (access_parse_gid(val, &d->socket_gid) < 0) {
			snprintf(why, why_len, "group=%s: no such group", val);
			return -EINVAL;
		}
		d->has_group = true;
		return 1;
	}
	return 0;
}

/* rng,socket=PATH: virtio-rng has nothing to configure but its socket. */
static int parse_rng(struct device *d, char *save, char *why, size_t why_len)
{
	char *tok;

	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		int r;

		if (val)
			*val++ = '\0';
		r = parse_socket_key(d, tok, val, why, why_len);
		if (r < 0)
			return r;
		if (r == 0) {
			snprintf(why, why_len, "unknown or incomplete option '%s%s%s' "
				 "(rng takes socket=PATH, mode=MODE, group=GROUP)",
				 tok, val ? "=" : "", val ? val : "");
			return -EINVAL;
		}
	}
	if (!d->socket_path) {
		snprintf(why, why_len, "no socket=PATH to listen on");
		return -EINVAL;
	}
	d->type = DEVICE_RNG;
	d->num_queues = 1;
	d->ops = hvn_dev_rng_ops();
	return 0;
}

int device_parse(struct device *d, const char *spec, char *why, size_t why_len)
{
	char *copy, *tok, *save = NULL;
	bool null = false, have_size = false;
	unsigned long queues = 1;

	memset(d, 0, sizeof(*d));
	d->listen_fd = -1;
	d->blk.fd = -1;
	d->socket_mode = 0600;
	d->spec = strdup(spec);
	copy = strdup(spec);
	if (!d->spec || !copy) {
		snprintf(why, why_len, "out of memory");
		free(copy);
		return -ENOMEM;
	}
	tok = strtok_r(copy, ",", &save);
	if (tok && !strcmp(tok, "rng")) {
		if (parse_rng(d, save, why, why_len) < 0)
			goto bad;
		free(copy);
		return 0;
	}
	if (!tok || strcmp(tok, "blk")) {
		snprintf(why, why_len, "unknown device type '%s' (known: blk, rng)", tok ? tok : "");
		goto bad;
	}
	d->type = DEVICE_BLK;
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		int r;

		if (val)
			*val++ = '\0';
		r = parse_socket_key(d, tok, val, why, why_len);
		if (r < 0)
			goto bad;
		if (r > 0)
			continue;
		if (!strcmp(tok, "path") && val && *val) {
			free((char *)d->blk.path);
			d->blk.path = strdup(val);
		} else if (!strcmp(tok, "queues") && val) {
			char *end;

			errno = 0;
			queues = strtoul(val, &end, 10);
			if (errno || *end || queues == 0 || queues > HVN_DEV_BLK_MAX_QUEUES) {
				snprintf(why, why_len, "queues=%s: a number from 1 to %u", val,
					 HVN_DEV_BLK_MAX_QUEUES);
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
			d->blk.flags |= HVN_DEV_BLK_READONLY;
		} else if (!strcmp(tok, "direct") && !val) {
			d->blk.flags |= HVN_DEV_BLK_DIRECT;
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
	if (null && (d->blk.flags & HVN_DEV_BLK_DIRECT)) {
		snprintf(why, why_len, "direct is for a file or block device, not null");
		goto bad;
	}
	if (null)
		d->blk.flags |= HVN_DEV_BLK_NULL;
	d->num_queues = (unsigned int)queues;
	d->blk.num_queues = d->num_queues;
	d->ops = hvn_dev_blk_ops();
	free(copy);
	return 0;
bad:
	free(copy);
	device_close(d);
	return -EINVAL;
}

int device_open(struct device *d, char *why, size_t why_len)
{
	const char *what = d->blk.path ? d->blk.path : "null";
	int r;

	snprintf(d->name, sizeof(d->name), "%s%u", d->ops->name, d->index);
	if (d->type == DEVICE_RNG) {
		r = hvn_dev_rng_new(NULL, (struct hvn_dev_rng **)&d->dev);
		if (r < 0)
			snprintf(why, why_len, "%s", strerror(-r));
		return r;
	}
	r = hvn_dev_blk_new(&d->blk, (struct hvn_dev_blk **)&d->dev);
	if (r == -ENOTBLK)
		snprintf(why, why_len, "%s: neither a regular file nor a block device", what);
	else if (r == -EINVAL)	/* the options were checked when parsed */
		snprintf(why, why_len, "%s: smaller than one sector", what);
	else if (r < 0)
		snprintf(why, why_len, "%s: %s", what, strerror(-r));
	return r;
}

void device_close(struct device *d)
{
	if (d->type == DEVICE_RNG)
		hvn_dev_rng_free(d->dev);
	else
		hvn_dev_blk_free(d->dev);
	d->dev = NULL;
	free((char *)d->blk.path);
	free((char *)d->blk.serial);
	free(d->socket_path);
	free(d->spec);
	d->blk.path = d->blk.serial = NULL;
	d->socket_path = d->spec = NULL;
}
