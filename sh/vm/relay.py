# Relay this process's stdin/stdout to a socket inside the VM container (python3 is in the toolchain
# image; it is sent as the text of `python3 -c`, nothing is installed):
#   unix PATH WAIT_SECONDS   QEMU's QMP socket (retried until QEMU has made it, for WAIT_SECONDS)
#   tcp HOST PORT            the guest's sshd as QEMU forwards it (m5dev ssh-proxy)
# It carries bytes only; the protocol is spoken at the other end (src/vm/qmp.ts, ssh).
# Exit codes: 0 when the socket closed, 3 when it could not be reached (the reason on stderr).
import os
import socket
import sys
import threading
import time


def connect():
    if sys.argv[1] == "tcp":
        try:
            return socket.create_connection((sys.argv[2], int(sys.argv[3])))
        except OSError as e:
            sys.stderr.write("cannot connect to %s:%s: %s\n" % (sys.argv[2], sys.argv[3], e))
            sys.exit(3)
    path, deadline = sys.argv[2], time.time() + float(sys.argv[3])
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if time.time() > deadline:
                sys.stderr.write("cannot connect to %s: %s\n" % (path, e))
                sys.exit(3)
            time.sleep(0.02)


s = connect()


def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(d)


threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    while d:
        d = d[os.write(1, d):]
