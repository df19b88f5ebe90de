#!/bin/sh
# SPDX-License-Identifier: MIT
# daemon-guest-mq.sh - daemon-guest.sh with two queues, two vCPUs, two workers.
exec sh "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/daemon-guest.sh" mq
