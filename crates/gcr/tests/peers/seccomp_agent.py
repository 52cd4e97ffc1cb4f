"""A seccomp notify agent for the tests: listens on a unix socket (argv[1]); for each
runtime that connects, logs the container process state it sends (one JSON line per
connection in argv[2], with the number of descriptors received and each notified
syscall's number), and answers every notification with EACCES."""
import fcntl, json, os, socket, struct, sys, threading

NOTIF_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV: _IOWR('!', 0, struct seccomp_notif)
NOTIF_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND: _IOWR('!', 1, struct seccomp_notif_resp)
EACCES = 13
lock = threading.Lock()


def serve(conn):
    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
    fds = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack("%di" % (len(data) // 4), data))
    entry = {"state": json.loads(msg), "fds_received": len(fds), "syscalls": []}
    if fds:
        fd = fds[0]
        while True:
            buf = bytearray(80)
            try:
                fcntl.ioctl(fd, NOTIF_RECV, buf)
            except OSError:
                break  # every user of the filter is gone (ENOENT)
            nid, pid, _flags, nr = struct.unpack_from("<QIIi", buf)
            entry["syscalls"].append(nr)
            resp = bytearray(struct.pack("<QqiI", nid, 0, -EACCES, 0))
            try:
                fcntl.ioctl(fd, NOTIF_SEND, resp)
            except OSError:
                pass
        os.close(fd)
    with lock, open(sys.argv[2], "a") as f:
        f.write(json.dumps(entry) + "\n")
    conn.close()


s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
