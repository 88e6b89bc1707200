# Relay this process's stdin/stdout to a socket inside the VM container (python3 is in the toolchain
# image; it is sent as the text of `python3 -c`, nothing is installed):
#   unix PATH WAIT_SECONDS   QEMU's QMP socket (retried until QEMU has made it, for WAIT_SECONDS);
#                            the end of stdin ends the relay (QEMU's monitor takes one client at a
#                            time: the next session must not wait for QEMU to close this one)
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
