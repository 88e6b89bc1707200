/**
 * The typed QMP client, through the relay the VM container runs (sh/vm/relay.py, run here with the
 * host's python3 exactly as `docker exec` runs it there), against a fake QEMU monitor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, withQmp, type QmpChannel, type QmpFd, type QmpStep } from '../../src/vm/qmp.js';
import { relayCommand } from '../../src/scripts.js';
import { VmStateError } from '../../src/errors.js';
import { fakeMonitor, socketChannel, type FakeMonitor } from '../helpers/fake-qmp.js';

/** The relay as the VM container runs it, here: its stdin/stdout are the channel. */
function relayChannel(socket: string, waitSec: number, fds?: QmpFd[]): QmpChannel {
  const [cmd, ...args] = relayCommand({ unix: socket, waitSec, fds });
  const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ exitCode: number; stderr: string }>((resolve) => child.on('close', (code) => resolve({ exitCode: code ?? 1, stderr })));
  return { output: child.stdout, input: child.stdin, done };
}

/**
 * A QEMU monitor that takes file descriptors as QEMU does (SCM_RIGHTS with the `getfd` command):
 * `migrate` to `fd:NAME` writes "device state" to the fd; `migrate-incoming` from one returns what it read.
 */
const FD_MONITOR = [
  'import json, os, socket, sys',
  's = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)',
  'c, _ = s.accept()',
  'c.sendall(b\'{"QMP": {"version": {}, "capabilities": []}}\\n\')',
  'fds, buf = {}, b""',
  'while True:',
  '    data, got, _f, _a = socket.recv_fds(c, 65536, 4)',
  '    if not data: break',
  '    buf += data',
  '    while b"\\n" in buf:',
  '        line, buf = buf.split(b"\\n", 1)',
  '        m = json.loads(line); cmd = m["execute"]; args = m.get("arguments", {}); ret = {}',
  '        if cmd == "getfd": fds[args["fdname"]] = got.pop(0)',
  '        elif cmd == "migrate": os.write(fds.pop(args["uri"][3:]), b"device state")',
  '        elif cmd == "migrate-incoming": ret = {"read": os.read(fds.pop(args["uri"][3:]), 100).decode()}',
  '        c.sendall((json.dumps({"return": ret}) + "\\n").encode())',
].join('\n');

describe('files handed to QEMU by the relay (getfd): a migration stream with no process spawned for it', () => {
  it('opens the save for writing (given to its directory\'s owner) and the resume for reading, and passes each with its getfd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-qmpfd-'));
    const sock = join(dir, 'qmp.sock');
    const server = spawn('python3', ['-c', FD_MONITOR, sock], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      writeFileSync(join(dir, 'vmstate'), 'saved before');
      const fds: QmpFd[] = [{ name: 'm5dev-save', path: join(dir, 'vmstate.tmp'), mode: 'write' }, { name: 'm5dev-load', path: join(dir, 'vmstate'), mode: 'read' }];
      const read = await withQmp(() => QmpClient.open(relayChannel(sock, 5, fds), 5), async (q) => {
        await q.execute('getfd', { fdname: 'm5dev-save' });
        await q.execute('migrate', { uri: 'fd:m5dev-save' });
        await q.execute('getfd', { fdname: 'm5dev-load' });
        return q.execute('migrate-incoming', { uri: 'fd:m5dev-load' });
      });
      expect(readFileSync(join(dir, 'vmstate.tmp'), 'utf8')).toBe('device state');
      expect(statSync(join(dir, 'vmstate.tmp')).uid).toBe(statSync(dir).uid);
      expect(read).toEqual({ read: 'saved before' });
    } finally {
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file it cannot open ends the session before QEMU is asked anything, with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-qmpfd-'));
    const err = await QmpClient.open(relayChannel(join(dir, 'none.sock'), 1, [{ name: 'm5dev-load', path: join(dir, 'missing'), mode: 'read' }]), 5).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot open .*missing for m5dev-load/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('QmpClient over the VM container relay', () => {
  let dir: string;
  let server: Server | undefined;
  let mon: FakeMonitor | undefined;
  afterEach(async () => {
    server?.close();
    server = undefined;
    await mon?.close();
    mon = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const sockIn = () => {
    dir = mkdtempSync(join(tmpdir(), 'm5dev-qmp-'));
    return join(dir, 'qmp.sock');
  };

  it('negotiates, runs commands with their arguments, skips events and closes the session', async () => {
    const sock = sockIn();
    let migrateArgs: unknown;
    mon = await fakeMonitor(sock, (cmd, args) => {
      if (cmd === 'migrate') migrateArgs = args;
      return cmd === 'query-status' ? { return: { status: 'running', running: true } } : { return: {} };
    });
    const channel = relayChannel(sock, 5);
    const status = await withQmp(() => QmpClient.open(channel, 5), async (q) => {
      await q.execute('migrate', { uri: 'exec:cat > /x' });
      return q.execute('query-status');
    });
    expect(status).toEqual({ status: 'running', running: true });
    expect(mon.seen).toEqual(['qmp_capabilities', 'migrate', 'query-status']);
    expect(migrateArgs).toEqual({ uri: 'exec:cat > /x' });
    // Closing our side ends the relay: no process is left behind.
    expect((await channel.done).exitCode).toBe(0);
  });

  it('polls until a terminal value', async () => {
    const sock = sockIn();
    mon = await fakeMonitor(sock, (cmd, _args, n) => (cmd === 'query-migrate' ? { return: { status: n < 3 ? 'active' : 'completed' } } : { return: {} }));
    const steps: QmpStep[] = [{ execute: 'migrate', arguments: { uri: 'exec:cat' } }, { execute: 'query-migrate', poll: { field: 'status', until: ['completed', 'failed'] } }];
    const res = await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.run(steps, async () => undefined));
    expect(res).toEqual([{}, { status: 'completed' }]);
  });

  it("reports QEMU's error as a VmStateError naming the command", async () => {
    const sock = sockIn();
    mon = await fakeMonitor(sock, (cmd) => (cmd === 'cont' ? { error: { class: 'GenericError', desc: 'not paused' } } : { return: {} }));
    const err = await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.execute('cont')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as Error).message).toBe('QMP: cont: not paused');
  });

  it('stops when a poll ends on an unexpected value, before the unlink; unlinks between commands otherwise', async () => {
    const sock = sockIn();
    const record = join(dir, 'vmstate.json');
    writeFileSync(record, '{}');
    mon = await fakeMonitor(sock, (cmd, _args, n) => (cmd === 'query-status' ? { return: { status: n < 2 ? 'inmigrate' : 'paused' } } : { return: {} }));
    const seen = mon.seen;
    const unlink = async (p: string) => {
      seen.push(`unlink ${p}`);
      rmSync(p, { force: true });
    };
    const steps: QmpStep[] = [{ execute: 'query-status', poll: { field: 'status', while: ['inmigrate'], expect: ['paused'] } }, { unlink: record }, { execute: 'cont' }];
    const ok = await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.run(steps, unlink));
    expect(ok).toEqual([{ status: 'paused' }, {}, {}]);
    expect(existsSync(record)).toBe(false);
    expect(seen.slice(-2)).toEqual([`unlink ${record}`, 'cont']);

    writeFileSync(record, '{}');
    const bad = [{ execute: 'query-status', poll: { field: 'status', while: ['inmigrate'], expect: ['running'] } }, { unlink: record }] satisfies QmpStep[];
    const err = await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.run(bad, unlink)).catch((e: unknown) => e);
    expect((err as Error).message).toBe('QMP: query-status: status is paused, expected running');
    expect(existsSync(record)).toBe(true);
  });

  it('times out a poll that never ends, at the session deadline', async () => {
    const sock = sockIn();
    mon = await fakeMonitor(sock, () => ({ return: { status: 'active' } }));
    // Straight to the socket (no relay to start on two loaded cores): the deadline is the poll's alone.
    const err = await withQmp(() => QmpClient.open(socketChannel(sock), 2), (q) => q.poll('query-migrate', 'status', (v) => v === 'completed')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/timed out waiting on query-migrate \(status = active\)/);
  });

  it('takes a closed connection as the answer to quit (QEMU exits first), and as an error elsewhere', async () => {
    const sock = sockIn();
    mon = await fakeMonitor(sock, () => undefined);
    expect(await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.execute('quit'))).toEqual({});
    const err = await withQmp(() => QmpClient.open(relayChannel(sock, 5), 5), (q) => q.execute('stop')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/monitor closed before the answer to stop/);
  });

  it('waits for QEMU to make its socket, and gives up with the reason when none ever listens', async () => {
    const sock = sockIn();
    const late = new Promise<FakeMonitor>((r) => setTimeout(() => void fakeMonitor(sock, () => ({ return: {} })).then(r), 300));
    const client = QmpClient.open(relayChannel(sock, 5), 5);
    mon = await late;
    expect(await withQmp(() => client, (q) => q.execute('cont'))).toEqual({});

    const err = await QmpClient.open(relayChannel(join(dir, 'none.sock'), 0.3), 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as VmStateError).message).toMatch(/monitor closed before the greeting/);
    expect(((err as VmStateError).details ?? '')).toMatch(/cannot connect to .*none\.sock/);
  });

  it('refuses a peer that is not a QEMU monitor', async () => {
    const sock = sockIn();
    server = createServer((s) => s.end('{"hello": 1}\n'));
    await new Promise<void>((r) => server!.listen(sock, () => r()));
    const err = await QmpClient.open(relayChannel(sock, 5), 5).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/not a QEMU monitor/);
    // A peer that writes no JSON at all is refused at once, not after the session's deadline.
    server.close();
    const sock2 = join(dir, 'other.sock');
    server = createServer((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
    await new Promise<void>((r) => server!.listen(sock2, () => r()));
    const garbage = await QmpClient.open(socketChannel(sock2), 300).catch((e: unknown) => e);
    expect((garbage as Error).message).toMatch(/not a QEMU monitor answer while waiting for the greeting: SSH-2\.0/);
  });

  it('a monitor that greets and then never answers times out at the session deadline; a closed client refuses further commands', async () => {
    const sock = sockIn();
    server = createServer((s) => {
      s.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
      s.on('data', () => undefined); // reads everything, answers nothing
    });
    await new Promise<void>((r) => server!.listen(sock, () => r()));
    const silent = await QmpClient.open(socketChannel(sock), 1).catch((e: unknown) => e);
    expect(silent).toBeInstanceOf(VmStateError);
    expect((silent as Error).message).toBe('QMP: timed out waiting for the answer to qmp_capabilities');
    server.close();
    server = undefined;
    const sock2 = join(dir, 'fine.sock');
    mon = await fakeMonitor(sock2, () => ({ return: {} }));
    const q = await QmpClient.open(socketChannel(sock2), 5);
    await q.close();
    const closed = await q.execute('cont').catch((e: unknown) => e);
    expect((closed as Error).message).toBe('QMP: the monitor is closed (cont)');
  });
});
