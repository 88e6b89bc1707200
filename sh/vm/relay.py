# Relay this process's stdin/stdout to a socket inside the VM container (python3 is in the toolchain
# image; it is sent as the text of `python3 -c`, nothing is installed):
#   unix PATH WAIT_SECONDS [NAME=r|w:FILE]...
#                            QEMU's QMP socket (retried until QEMU has made it, for WAIT_SECONDS);
#                            the end of stdin ends the relay (QEMU's monitor takes one client at a
#                            time: the next session must not wait for QEMU to close this one). Each
#                            FILE is opened here (w: created or emptied, given to the owner of its
#                            directory) and handed to QEMU with the first not yet served chunk that
#                            carries a `getfd` command (SCM_RIGHTS): a migration stream QEMU reads or
#                            writes with no process spawned for it (its -sandbox spawn=deny)
#   tcp HOST PORT            the guest's sshd as QEMU forwards it (m5dev ssh-proxy); the end of
#                            stdin is passed on (half-close) and the relay ends when sshd closes
# It carries bytes only; the protocol is spoken at the other end (src/vm/qmp.ts, ssh).
# Exit codes: 0 when either side closed; 3 when the socket could not be reached (the reason on stderr).
import os
import socket
import sys
import threading
import time

UNIX = sys.argv[1] == "unix"


def open_fd(spec):
    name, rest = spec.split("=", 1)
    mode, path = rest.split(":", 1)
    try:
        if mode == "w":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            d = os.stat(os.path.dirname(path) or ".")
            os.fchown(fd, d.st_uid, d.st_gid)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        sys.stderr.write("cannot open %s for %s: %s\n" % (path, name, e))
        sys.exit(3)
    return fd


FDS = [open_fd(a) for a in sys.argv[4:]] if UNIX else []


def connect():
    if not UNIX:
        try:
            return socket.create_connection((sys.argv[2], int(sys.argv[3])))
        except OSError as e:
            sys.stderr.write("cannot connect to %s:%s: %s\n" % (sys.argv[2], sys.argv[3], e))
            sys.exit(3)
    path, deadline = sys.argv[2], time.time() + float(sys.argv[3])
    while True:
        s = None
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError as e:
            if s is not None:
                s.close()
            if time.time() > deadline:
                sys.stderr.write("cannot connect to %s: %s\n" % (path, e))
                sys.exit(3)
            time.sleep(0.02)


s = connect()


def up():
    try:
        while True:
            d = os.read(0, 65536)
            if not d:
                break
            if FDS and b'"getfd"' in d:
                fd = FDS.pop(0)
                sent = socket.send_fds(s, [d], [fd])
                os.close(fd)
                if sent < len(d):
                    s.sendall(d[sent:])
            else:
                s.sendall(d)
    except OSError:
        pass
    if UNIX:
        os._exit(0)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass


threading.Thread(target=up, daemon=True).start()
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        while d:
            d = d[os.write(1, d):]
except OSError:
    pass
sys.exit(0)
