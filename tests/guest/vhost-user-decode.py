#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vhost-user-decode.py - the vhost-user conversation in a backend's strace.

Reads the output of

    strace -f -tt -yy -xx -s 65536 \\
        -e trace=recvmsg,sendmsg,recvfrom,sendto,read,write,readv,writev,close \\
        -o TRACE -p BACKEND_PID

(what run-guest.sh --strace runs), puts the bytes of every unix stream
socket that has a path (the vhost-user sockets the backend listens on) back
together per direction, and prints each message: request name, flags, size,
the payload decoded (features by name, vring state and addresses, memory
regions, config space) and the file descriptors that came with it.  Then
how often the backend read its kick eventfds and wrote its call eventfds.

Usage: vhost-user-decode.py [--device blk|rng|none] TRACE
"""
import re
import struct
import sys
from collections import Counter

REQUESTS = {
    1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER",
    5: "SET_MEM_TABLE", 6: "SET_LOG_BASE", 7: "SET_LOG_FD", 8: "SET_VRING_NUM",
    9: "SET_VRING_ADDR", 10: "SET_VRING_BASE", 11: "GET_VRING_BASE",
    12: "SET_VRING_KICK", 13: "SET_VRING_CALL", 14: "SET_VRING_ERR",
    15: "GET_PROTOCOL_FEATURES", 16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM",
    18: "SET_VRING_ENABLE", 19: "SEND_RARP", 20: "NET_SET_MTU",
    21: "SET_BACKEND_REQ_FD", 22: "IOTLB_MSG", 23: "SET_VRING_ENDIAN",
    24: "GET_CONFIG", 25: "SET_CONFIG", 26: "CREATE_CRYPTO_SESSION",
    27: "CLOSE_CRYPTO_SESSION", 28: "POSTCOPY_ADVISE", 29: "POSTCOPY_LISTEN",
    30: "POSTCOPY_END", 31: "GET_INFLIGHT_FD", 32: "SET_INFLIGHT_FD",
    33: "GPU_SET_SOCKET", 34: "RESET_DEVICE", 35: "VRING_KICK",
    36: "GET_MAX_MEM_SLOTS", 37: "ADD_MEM_REG", 38: "REM_MEM_REG",
    39: "SET_STATUS", 40: "GET_STATUS",
}
PROTOCOL_FEATURES = {
    0: "MQ", 1: "LOG_SHMFD", 2: "RARP", 3: "REPLY_ACK", 4: "NET_MTU",
    5: "BACKEND_REQ", 6: "CROSS_ENDIAN", 7: "CRYPTO_SESSION", 8: "PAGEFAULT",
    9: "CONFIG", 10: "BACKEND_SEND_FD", 11: "HOST_NOTIFIER", 12: "INFLIGHT_SHMFD",
    13: "RESET_DEVICE", 14: "INBAND_NOTIFICATIONS", 15: "CONFIGURE_MEM_SLOTS",
    16: "STATUS",
}
COMMON_FEATURES = {
    24: "NOTIFY_ON_EMPTY", 26: "LOG_ALL", 27: "ANY_LAYOUT", 28: "RING_INDIRECT_DESC",
    29: "RING_EVENT_IDX", 30: "PROTOCOL_FEATURES", 32: "VERSION_1",
    33: "ACCESS_PLATFORM", 34: "RING_PACKED", 35: "IN_ORDER", 36: "ORDER_PLATFORM",
    37: "SR_IOV", 38: "NOTIFICATION_DATA", 39: "NOTIF_CONFIG_DATA", 40: "RING_RESET",
}
DEVICE_FEATURES = {
    "blk": {0: "BLK_BARRIER", 1: "BLK_SIZE_MAX", 2: "BLK_SEG_MAX", 4: "BLK_GEOMETRY",
            5: "BLK_RO", 6: "BLK_BLK_SIZE", 7: "BLK_SCSI", 9: "BLK_FLUSH",
            10: "BLK_TOPOLOGY", 11: "BLK_CONFIG_WCE", 12: "BLK_MQ", 13: "BLK_DISCARD",
            14: "BLK_WRITE_ZEROES", 15: "BLK_LIFETIME", 16: "BLK_SECURE_ERASE",
            17: "BLK_ZONED"},
    "rng": {},
    "none": {},
}
U64_PAYLOAD = {"GET_FEATURES", "SET_FEATURES", "GET_PROTOCOL_FEATURES",
               "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM", "GET_MAX_MEM_SLOTS",
               "SET_LOG_BASE", "SET_STATUS", "GET_STATUS"}
STATE_PAYLOAD = {"SET_VRING_NUM", "SET_VRING_BASE", "GET_VRING_BASE", "SET_VRING_ENABLE"}
FD_PAYLOAD = {"SET_VRING_KICK", "SET_VRING_CALL", "SET_VRING_ERR"}

LINE = re.compile(r"^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$")
# an -yy annotation can hold "->" (a socket's peer inode), so it ends at ">, "
CALL = re.compile(r"^(\w+)\((\d+)<(.*?)>, (.*)\)\s+=\s+(-?\d+)")
HEXSTR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
CMSG_FDS = re.compile(r"cmsg_data=\[([^\]]*)\]")
FD_ANNOT = re.compile(r"(\d+)<(.*?)>(?:, |$)")


def unhex(s):
    """strace -xx string body -> bytes"""
    return bytes.fromhex(s.replace("\\x", ""))


def unhex_annotation(a):
    """-yy annotations print paths -xx escaped too; make them readable"""
    return re.sub(r"(\\x[0-9a-f]{2})+", lambda m: unhex(m.group(0)).decode("latin-1"), a)


def bits(value, names):
    out = []
    for b in range(64):
        if value & (1 << b):
            out.append(names.get(b, f"bit{b}"))
    return " ".join(out)


def joined_lines(f):
    """Yield (pid, time, text) with strace's unfinished/resumed halves joined."""
    pending = {}
    for raw in f:
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, t, text = m.groups()
        if text.endswith("<unfinished ...>"):
            pending[pid] = (t, text[: -len("<unfinished ...>")].rstrip())
            continue
        r = re.match(r"^<\.\.\. \w+ resumed>\s?(.*)$", text)
        if r:
            if pid not in pending:
                continue
            t0, head = pending.pop(pid)
            text = head + r.group(1)
            t = t0
        yield pid, t, text


class Stream:
    """One direction of one connection: bytes in, messages out."""

    def __init__(self, direction):
        self.direction = direction
        self.buf = b""
        self.fds = []
        self.t = None

    def feed(self, t, data, fds):
        if not self.buf:
            self.t = t
        self.buf += data
        self.fds += fds
        while len(self.buf) >= 12:
            req, flags, size = struct.unpack_from("<III", self.buf)
            if len(self.buf) < 12 + size:
                break
            payload = self.buf[12:12 + size]
            self.buf = self.buf[12 + size:]
            fds, self.fds = self.fds, []
            yield self.t, req, flags, payload, fds
            self.t = t


def decode_payload(name, reply, payload, device):
    p = payload
    feat_names = {**COMMON_FEATURES, **DEVICE_FEATURES[device]}
    if name in U64_PAYLOAD and len(p) == 8:
        (v,) = struct.unpack("<Q", p)
        if name.endswith("PROTOCOL_FEATURES"):
            return f"{v:#x} [{bits(v, PROTOCOL_FEATURES)}]"
        if name.endswith("_FEATURES"):
            return f"{v:#x} [{bits(v, feat_names)}]"
        return f"{v}"
    if name in STATE_PAYLOAD and len(p) == 8:
        idx, num = struct.unpack("<II", p)
        if name == "GET_VRING_BASE" and not reply:
            return f"vq={idx}"
        what = {"SET_VRING_NUM": "num", "SET_VRING_ENABLE": "enable"}.get(name, "base")
        return f"vq={idx} {what}={num}"
    if name in FD_PAYLOAD and len(p) == 8:
        (v,) = struct.unpack("<Q", p)
        return f"vq={v & 0xff}" + (" (no fd: polling)" if v & 0x100 else "")
    if name == "SET_VRING_ADDR" and len(p) == 40:
        idx, fl, desc, used, avail, log = struct.unpack("<IIQQQQ", p)
        return (f"vq={idx} flags={fl:#x} desc={desc:#x} used={used:#x} "
                f"avail={avail:#x} log={log:#x}")
    if name == "SET_MEM_TABLE" and len(p) >= 8:
        (n,) = struct.unpack_from("<I", p)
        regs = []
        for i in range(n):
            if 8 + 32 * (i + 1) > len(p):
                break
            gpa, size, uaddr, off = struct.unpack_from("<QQQQ", p, 8 + 32 * i)
            regs.append(f"{{gpa={gpa:#x} size={size:#x} uaddr={uaddr:#x} off={off:#x}}}")
        return f"nregions={n} " + " ".join(regs)
    if name in ("ADD_MEM_REG", "REM_MEM_REG") and len(p) == 40:
        gpa, size, uaddr, off = struct.unpack_from("<QQQQ", p, 8)
        return f"gpa={gpa:#x} size={size:#x} ({size >> 20} MiB) uaddr={uaddr:#x} off={off:#x}"
    if name in ("GET_CONFIG", "SET_CONFIG") and len(p) >= 12:
        off, size, fl = struct.unpack_from("<III", p)
        cfg = p[12:12 + size]
        s = f"offset={off} size={size} flags={fl:#x}"
        if reply and device == "blk" and off == 0 and len(cfg) >= 20:
            cap, size_max, seg_max = struct.unpack_from("<QII", cfg)
            (blk_size,) = struct.unpack_from("<I", cfg, 20)
            s += f" capacity={cap} ({cap * 512 >> 20} MiB) size_max={size_max} seg_max={seg_max} blk_size={blk_size}"
            if len(cfg) >= 36:
                (nq,) = struct.unpack_from("<H", cfg, 34)
                s += f" num_queues={nq}"
        return s
    if name in ("GET_INFLIGHT_FD", "SET_INFLIGHT_FD") and len(p) == 24:
        size, off, nq, qs = struct.unpack_from("<QQHH", p)
        if name == "GET_INFLIGHT_FD" and not reply:
            return f"num_queues={nq} queue_size={qs}"
        return f"mmap_size={size} mmap_offset={off} num_queues={nq} queue_size={qs}"
    if len(p) == 8 and reply:
        return f"u64={struct.unpack('<Q', p)[0]}"
    return p.hex() if p else ""


def main():
    args = sys.argv[1:]
    device = "blk"
    if len(args) >= 2 and args[0] == "--device":
        device = args[1]
        args = args[2:]
    if len(args) != 1 or device not in DEVICE_FEATURES:
        print(__doc__.split("\n\n")[-1].strip(), file=sys.stderr)
        return 2

    streams = {}            # (socket inode, direction) -> Stream
    sockname = {}           # socket inode -> path
    fd_role = {}            # eventfd number -> "kick vq0" ...
    evcount = Counter()     # (role, "read"/"write") -> count
    counts = Counter()
    n = 0
    with open(args[0], errors="replace") as f:
        for pid, t, text in joined_lines(f):
            m = CALL.match(text)
            if not m:
                continue
            call, fd, annot, rest, ret = m.groups()
            ret = int(ret)
            annot = unhex_annotation(annot)
            if "eventfd" in annot and call in ("read", "write") and ret > 0:
                role = fd_role.get(fd, f"{fd} (the backend's own)")
                evcount[(role, call)] += 1
                continue
            s = re.match(r'UNIX-STREAM:\[(\d+)(?:->\d+)?,"([^"]*)"\]', annot)
            if not s or ret <= 0:
                continue
            inode, path = s.groups()
            sockname[inode] = path
            inbound = call in ("recvmsg", "recvfrom", "read", "readv")
            if not inbound and call not in ("sendmsg", "sendto", "write", "writev"):
                continue
            data = b"".join(unhex(h) for h in HEXSTR.findall(rest))[:ret]
            fds = []
            c = CMSG_FDS.search(rest)
            if c:
                fds = [(num, unhex_annotation(a)) for num, a in FD_ANNOT.findall(c.group(1))]
            key = (inode, inbound)
            if key not in streams:
                streams[key] = Stream("F->B" if inbound else "B->F")
            for mt, req, flags, payload, mfds in streams[key].feed(t, data, fds):
                name = REQUESTS.get(req, f"REQ_{req}")
                reply = bool(flags & 0x4)
                dec = decode_payload(name, reply, payload, device)
                fdtxt = ""
                if mfds:
                    fdtxt = "  fds=[" + ", ".join(f"{num}:{a}" for num, a in mfds) + "]"
                if inbound:
                    n += 1
                    counts[name] += 1
                    print(f"{n:4d} {mt} {path} F->B {name:22s} flags={flags:#x} size={len(payload):<3d} {dec}{fdtxt}")
                    if name in FD_PAYLOAD and mfds and len(payload) == 8:
                        vq = struct.unpack("<Q", payload)[0] & 0xff
                        role = {"SET_VRING_KICK": "kick", "SET_VRING_CALL": "call",
                                "SET_VRING_ERR": "err"}[name]
                        fd_role[mfds[0][0]] = f"{role} vq{vq}"
                else:
                    print(f"     {mt} {path} B->F {name:22s} flags={flags:#x} size={len(payload):<3d} {dec}{fdtxt}")

    print()
    print(f"# {n} messages from the frontend: " +
          ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    for key, st in streams.items():
        if st.buf:
            print(f"# {len(st.buf)} bytes left over on {sockname[key[0]]} {st.direction} (a partial message)")
    # kick: the guest notified (read by the backend); call: the backend
    # signalled used buffers (written by it); fds by number, as last assigned
    for (role, call), c in sorted(evcount.items()):
        what = {"read": "reads", "write": "writes"}[call]
        print(f"# eventfd {role}: {c} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
