/**
 * A fake VM host for the middle layer of tests: workflows run for real against it (their storage is
 * a real directory, QMP is the real client over a real socket), but "QEMU" is a scripted monitor
 * and the VM's container is this machine with /instance and the RAM tmpfs mapped to directories.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fakeMonitor, socketChannel, type Answer } from './fake-qmp.js';
import { join } from 'node:path';
import { QmpClient, type QmpFd } from '../../src/vm/qmp.js';
import { RAM_TMPFS } from '../../src/vm/instance.js';
import type { ExecResult } from '../../src/docker/containers.js';
import type { RunningVm, VmEntry, VmHost, VmLaunch } from '../../src/vmhost/vm-host.js';

export type { Answer } from './fake-qmp.js';

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
 * `migrate` to `fd:NAME` by writing `savedBytes` to the file the session's relay was given for NAME
 * (mapped), as QEMU's save would.
 */
export async function fakeVm(opts: { instanceDir: string; tmpfsDir: string; socketDir: string; answer: Answer; savedBytes?: Buffer; launches?: VmLaunch[] }): Promise<FakeVm> {
  const execs: string[][] = [];
  let removed = false;
  let exited = false;
  const map = (s: string) => s.replace(/^\/instance(?=\/|$)/, opts.instanceDir).replace(new RegExp(`^${RAM_TMPFS.dir}(?=/|$)`), opts.tmpfsDir);
  mkdirSync(opts.tmpfsDir, { recursive: true });
  const socketPath = join(opts.socketDir, 'qmp.sock');
  let sessionFds: QmpFd[] = [];
  const monitor = await fakeMonitor(socketPath, opts.answer, (cmd, args) => {
    if (cmd === 'migrate') {
      const name = /^fd:(.+)$/.exec(String(args?.uri ?? ''))?.[1];
      const target = sessionFds.find((f) => f.name === name && f.mode === 'write')?.path;
      if (target) writeFileSync(map(target), opts.savedBytes ?? Buffer.from('device state'));
    }
    if (cmd === 'quit') exited = true;
  });

  const capture = (cmd: string[]): Promise<ExecResult> => {
    execs.push(cmd);
    const argv = cmd.map(map);
    return new Promise((resolve) =>
      execFile(argv[0]!, argv.slice(1), (err, stdout, stderr) => resolve({ exitCode: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );
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
    getFiles: unsupported,
    getTree: unsupported,
    monitor: (timeoutSec, fds) => {
      sessionFds = fds ?? [];
      return QmpClient.open(socketChannel(socketPath), timeoutSec);
    },
    console: async () => '',
    isRunning: async () => !removed && !exited,
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
    // With `launches`: each launch is recorded and "starts" the one fake VM (again).
    launch: (spec) => {
      if (!opts.launches) return Promise.reject(new Error('the fake host launches nothing'));
      opts.launches.push(spec);
      removed = false;
      exited = false;
      return Promise.resolve(vm);
    },
    list: async () => (removed ? [] : [entry()]),
    running: async () => (removed || exited ? undefined : vm),
    attach: () => vm,
    sweepOrphans: async () => 0,
    forget: async () => undefined,
  };
  return {
    vm,
    host,
    qmp: monitor.seen,
    execs,
    removed: () => removed,
    exited: () => exited,
    close: () => monitor.close(),
  };
}
