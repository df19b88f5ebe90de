/* SPDX-License-Identifier: MIT */
/* hvnotify/hvnotify.h - the umbrella header: everything libhvnotify offers. */
#ifndef HVNOTIFY_HVNOTIFY_H
#define HVNOTIFY_HVNOTIFY_H

#include <hvnotify/dev.h>
#include <hvnotify/loop.h>
#include <hvnotify/trap.h>
#include <hvnotify/mem.h>
#include <hvnotify/vq.h>
#include <hvnotify/vhost_user.h>

#endif /* HVNOTIFY_HVNOTIFY_H */
