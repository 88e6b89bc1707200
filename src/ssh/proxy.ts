/**
 * SSH to a guest on an engine whose 127.0.0.1 is not the client's (remote, dind, a VM): ssh's
 * ProxyCommand runs `m5dev ssh-proxy`, which relays its stdio over a docker exec stream into the
 * VM container, to the port QEMU forwards to guest 22. The host key is still pinned by ssh.
 */
import type Docker from 'dockerode';
import { shellQuote } from '../shell.js';

/** Relay stdin/stdout to a TCP port inside the container (python3 is in the toolchain image). */
export const RELAY = String.raw`
import os, socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            s.shutdown(socket.SHUT_WR); return
        s.sendall(d)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d: break
    os.write(1, d)
`;

/** The ProxyCommand line for an instance (pure): node, the CLI, its home and the instance name. */
export function proxyCommandLine(node: string, cli: string, home: string, name: string): string {
  return [node, cli, 'ssh-proxy', '--home', home, '--name', name].map(shellQuote).join(' ');
}

/** Pipe this process's stdin/stdout to the guest's sshd through the VM container; resolves at EOF. */
export async function relayToGuest(docker: Docker, containerId: string, port: number): Promise<number> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ['python3', '-c', RELAY, '127.0.0.1', String(port)],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  docker.modem.demuxStream(stream, process.stdout, process.stderr);
  process.stdin.pipe(stream);
  await new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', () => resolve());
  });
  const info = await exec.inspect().catch(() => undefined);
  return info?.ExitCode ?? 0;
}
