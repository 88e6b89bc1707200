/**
 * A fake VM host for the middle layer of tests: workflows run for real against it (their storage is
 * a real directory, QMP is the real client over a real socket), but "QEMU" is a scripted monitor
 * and the VM's container is this machine with /instance and the RAM tmpfs mapped to directories.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { QmpClient, type QmpChannel } from '../../src/vm/qmp.js';
import { RAM_TMPFS } from '../../src/vm/instance.js';
import type { ExecOutput, RunningVm, VmEntry, VmHost } from '../../src/vmhost/vm-host.js';

/** What the fake QEMU answers: a reply, or undefined to exit (close the monitor) without one. */
export type Answer = (cmd: string, args: Record<string, unknown> | undefined, n: number) => object | undefined;

export interface FakeVm {
  vm: RunningVm;
  host: VmHost;
  /** Every QMP command received, in order (sessions concatenated). */
  qmp: string[];
  /** The commands run "in the container", as given (before paths were mapped). */
  execs: string[][];
  removed: () => boolean;
  exited: () => boolean;
  close: () => Promise<void>;
}

/**
 * `instanceDir` plays the container's /instance, `tmpfsDir` its RAM tmpfs. The fake QEMU performs a
 * `migrate` to `exec:cat > PATH` by writing `savedBytes` to PATH (mapped), as QEMU's save would.
 */
export async function fakeVm(opts: { instanceDir: string; tmpfsDir: string; socketDir: string; answer: Answer; savedBytes?: Buffer }): Promise<FakeVm> {
  const qmp: string[] = [];
  const execs: string[][] = [];
  let removed = false;
  let exited = false;
  const map = (s: string) => s.replace(/^\/instance(?=\/|$)/, opts.instanceDir).replace(new RegExp(`^${RAM_TMPFS.dir}(?=/|$)`), opts.tmpfsDir);
  mkdirSync(opts.tmpfsDir, { recursive: true });
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  // Like QEMU's monitor: one client at a time; the next is greeted when the one before has gone.
  const waiting: Socket[] = [];
  let active: Socket | undefined;
  const serve = (sock: Socket) => {
    active = sock;
    sock.on('close', () => {
      sockets.delete(sock);
      active = undefined;
      const next = waiting.shift();
      if (next) serve(next);
    });
    greet(sock);
  };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    if (active) waiting.push(sock);
    else serve(sock);
  });
  const greet = (sock: Socket) => {
    sock.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buf = '';
    sock.on('data', (c) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; arguments?: Record<string, unknown> };
        buf = buf.slice(i + 1);
        qmp.push(msg.execute);
        const n = (counts.get(msg.execute) ?? 0) + 1;
        counts.set(msg.execute, n);
        if (msg.execute === 'migrate') {
          const target = /^exec:cat > (.+)$/.exec(String(msg.arguments?.uri ?? ''))?.[1];
          if (target) writeFileSync(map(target), opts.savedBytes ?? Buffer.from('device state'));
        }
        const reply = msg.execute === 'qmp_capabilities' ? { return: {} } : opts.answer(msg.execute, msg.arguments, n);
        if (msg.execute === 'quit') exited = true;
        if (reply === undefined) {
          sock.end();
          continue;
        }
        sock.write(`${JSON.stringify(reply)}\n`);
      }
    });
  };
  const socketPath = join(opts.socketDir, 'qmp.sock');
  await new Promise<void>((r) => server.listen(socketPath, () => r()));

  const capture = (cmd: string[]): Promise<ExecOutput> => {
    execs.push(cmd);
    const argv = cmd.map(map);
    return new Promise((resolve) =>
      execFile(argv[0]!, argv.slice(1), (err, stdout, stderr) => resolve({ exitCode: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );
  };
  const channel = (): QmpChannel => {
    const sock = connect(socketPath);
    const done = new Promise<{ exitCode: number; stderr: string }>((r) => sock.on('close', () => r({ exitCode: 0, stderr: '' })));
    return { output: sock, input: sock, done };
  };
  const unsupported = () => Promise.reject(new Error('not in the fake VM'));
  const vm: RunningVm = {
    id: 'fake-vm',
    instance: 'fake',
    sshPort: 1,
    capture,
    pipe: unsupported,
    channel: unsupported,
    interactive: unsupported,
    putFiles: unsupported,
    putLocalFile: unsupported,
    getTree: unsupported,
    monitor: (timeoutSec) => QmpClient.open(channel(), timeoutSec),
    console: async () => '',
    isRunning: async () => !removed && !exited,
    provides: async () => false,
    waitExit: async () => exited || removed,
    remove: async () => {
      removed = true;
    },
  };
  const entry = (): VmEntry => ({ id: vm.id, instance: vm.instance, running: !exited, status: exited ? 'Exited' : 'Up', sshPort: 1 });
  const host: VmHost = {
    features: { seesClientFiles: true, loopbackIsClients: true },
    platform: async () => ({ arch: 'x86_64', rootless: false }),
    kvmUsable: async () => false,
    launch: () => Promise.reject(new Error('the fake host launches nothing')),
    list: async () => (removed ? [] : [entry()]),
    running: async () => (removed || exited ? undefined : vm),
    attach: () => vm,
    sweepOrphans: async () => 0,
    forget: async () => undefined,
  };
  return {
    vm,
    host,
    qmp,
    execs,
    removed: () => removed,
    exited: () => exited,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
