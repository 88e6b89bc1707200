/**
 * A fake QEMU monitor on a unix socket, as QEMU's behaves: one client at a time (the next is
 * greeted when the one before has gone), a greeting, an event before each answer, and no answer at
 * all (the connection closed, as QEMU exiting on `quit`) when `answer` returns undefined.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { QmpChannel } from '../../src/vm/qmp.js';

/** The answer to the `n`-th call of `cmd` (qmp_capabilities is answered by the fake itself). */
export type Answer = (cmd: string, args: Record<string, unknown> | undefined, n: number) => object | undefined;

export interface FakeMonitor {
  /** Every command received, in order, sessions concatenated (qmp_capabilities included). */
  seen: string[];
  close(): Promise<void>;
}

export async function fakeMonitor(path: string, answer: Answer, onCommand?: (cmd: string, args: Record<string, unknown> | undefined) => void): Promise<FakeMonitor> {
  const seen: string[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
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
    sock.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buf = '';
    sock.on('data', (c) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; arguments?: Record<string, unknown> };
        buf = buf.slice(i + 1);
        seen.push(msg.execute);
        const n = (counts.get(msg.execute) ?? 0) + 1;
        counts.set(msg.execute, n);
        onCommand?.(msg.execute, msg.arguments);
        const reply = msg.execute === 'qmp_capabilities' ? { return: {} } : answer(msg.execute, msg.arguments, n);
        if (reply === undefined) {
          sock.end();
          continue;
        }
        sock.write(`${JSON.stringify({ event: 'NOISE', data: {} })}\n${JSON.stringify(reply)}\n`);
      }
    });
  };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    if (active) waiting.push(sock);
    else serve(sock);
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return {
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The monitor socket itself, as a QMP channel (no relay in between). */
export function socketChannel(path: string): QmpChannel {
  const sock = connect(path);
  return { output: sock, input: sock, done: new Promise((r) => sock.on('close', () => r({ exitCode: 0, stderr: '' }))) };
}
