/**
 * QMP, QEMU's JSON monitor: a typed client. It speaks the protocol over any byte channel; m5dev's
 * runs through the VM's host (a relay to the socket in the VM container, vmhost/), which works the
 * same on a remote engine and for a non-root host user (the socket belongs to the container's root).
 */
import { VmStateError } from '../errors.js';

/** A byte channel to QEMU's monitor socket. */
export interface QmpChannel {
  /** What QEMU writes. */
  output: NodeJS.ReadableStream;
  /** Write to QEMU; end() closes our side (QEMU then closes the connection). */
  input: NodeJS.WritableStream;
  /** Settles when the channel is gone; `stderr` says why it could not connect, if it could not. */
  done: Promise<{ exitCode: number; stderr: string }>;
}

/**
 * A step of a scripted session (pure data, so the order of a save or a resume is unit-tested): one
 * command, or a poll: repeat it while `field` of its result is in `while` (or not yet in `until`);
 * with `expect`, the final value must be one of those or the session stops there. Or `unlink`: the
 * caller removes a file (as the VM container sees it) between two commands.
 */
export type QmpStep =
  | {
      execute: string;
      arguments?: Record<string, unknown>;
      poll?: ({ field: string; while: string[] } | { field: string; until: string[] }) & { expect?: string[] };
    }
  | { unlink: string };

export type QmpResult = Record<string, unknown>;

/** How often a poll asks again. */
const POLL_MS = 50;

type Message = Record<string, unknown>;

/**
 * A file the monitor's relay opens in the VM container and hands QEMU over the QMP socket with the
 * `getfd` command that follows (SCM_RIGHTS): a migration stream with no process spawned for it, so
 * QEMU runs with `-sandbox spawn=deny`. `path` is the container's.
 */
export interface QmpFd {
  name: string;
  path: string;
  mode: 'read' | 'write';
}

export class QmpClient {
  private pending = '';
  private readonly messages: Message[] = [];
  private wake?: () => void;
  private closed = false;
  /** A line that was not JSON: the peer is not (or no longer) speaking QMP. */
  private garbage?: string;

  private constructor(
    private readonly channel: QmpChannel,
    /** Every call of this session must be answered before this time (ms since epoch). */
    private readonly deadline: number,
  ) {
    (channel.output as NodeJS.ReadableStream & { setEncoding?: (e: BufferEncoding) => unknown }).setEncoding?.('utf8');
    channel.output.on('data', (c: Buffer | string) => this.receive(c.toString()));
    const end = () => {
      this.closed = true;
      this.wake?.();
    };
    channel.output.on('end', end);
    channel.output.on('close', end);
    channel.output.on('error', end);
    void channel.done.then(end, end);
  }

  /** Connect: QEMU's greeting, then capabilities negotiation. The whole session must end within `timeoutSec`. */
  static async open(channel: QmpChannel, timeoutSec: number): Promise<QmpClient> {
    const client = new QmpClient(channel, Date.now() + timeoutSec * 1000);
    try {
      const greeting = await client.next('the greeting');
      if (!('QMP' in greeting)) throw new VmStateError(`QMP: not a QEMU monitor (greeting ${JSON.stringify(greeting).slice(0, 80)})`);
      await client.execute('qmp_capabilities');
      return client;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  private receive(text: string): void {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch {
        this.garbage ??= line.slice(0, 120);
        continue;
      }
      if (m && typeof m === 'object' && !('event' in m)) this.messages.push(m as Message);
    }
    this.wake?.();
  }

  /** The next reply (events skipped), before the deadline. */
  private async next(what: string): Promise<Message> {
    for (;;) {
      const m = this.messages.shift();
      if (m) return m;
      if (this.garbage !== undefined) throw new VmStateError(`QMP: not a QEMU monitor answer while waiting for ${what}: ${this.garbage}`);
      if (this.closed) {
        const { stderr } = await this.channel.done.catch(() => ({ stderr: '' }));
        // The relay's own words (it could not connect: no QEMU, a stopped VM) say more than ours.
        const why = stderr.trim().split('\n').pop();
        throw new VmStateError(`QMP: the monitor closed before ${what}${why ? ` (${why})` : ''}`, stderr.trim());
      }
      const left = this.deadline - Date.now();
      if (left <= 0) throw new VmStateError(`QMP: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Run one command; its `return` value, or a VmStateError with QEMU's description. */
  async execute(command: string, args?: Record<string, unknown>): Promise<QmpResult> {
    if (this.closed) throw new VmStateError(`QMP: the monitor is closed (${command})`);
    this.channel.input.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    let reply: Message;
    try {
      reply = await this.next(`the answer to ${command}`);
    } catch (e) {
      // `quit`: QEMU may exit before it answers.
      if (command === 'quit' && this.closed) return {};
      throw e;
    }
    if ('error' in reply) {
      const err = reply.error as { desc?: string } | undefined;
      throw new VmStateError(`QMP: ${command}: ${err?.desc ?? JSON.stringify(reply.error)}`);
    }
    const ret = reply.return;
    return ret && typeof ret === 'object' && !Array.isArray(ret) ? (ret as QmpResult) : {};
  }

  /** Repeat `command` until `done(result[field])`, within the session's deadline. */
  async poll(command: string, field: string, done: (value: unknown) => boolean, args?: Record<string, unknown>): Promise<QmpResult> {
    const timedOut = (value: unknown) => new VmStateError(`QMP: timed out waiting on ${command} (${field} = ${String(value)})`);
    let seen: QmpResult | undefined;
    for (;;) {
      // A deadline that passes while a later round is asked is the poll's, said with the value last seen.
      const r = await this.execute(command, args).catch((e: unknown) => {
        throw seen !== undefined && Date.now() >= this.deadline ? timedOut(seen[field]) : e;
      });
      if (done(r[field])) return r;
      seen = r;
      if (Date.now() + POLL_MS > this.deadline) throw timedOut(r[field]);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Run scripted steps in order (`unlink` through the caller); the results, one per step. */
  async run(steps: QmpStep[], unlink: (path: string) => Promise<void>): Promise<QmpResult[]> {
    const out: QmpResult[] = [];
    for (const step of steps) {
      if ('unlink' in step) {
        await unlink(step.unlink);
        out.push({});
        continue;
      }
      const p = step.poll;
      if (!p) {
        out.push(await this.execute(step.execute, step.arguments));
        continue;
      }
      const done = 'while' in p ? (v: unknown) => !p.while.includes(String(v)) : (v: unknown) => p.until.includes(String(v));
      const r = await this.poll(step.execute, p.field, done, step.arguments);
      if (p.expect && !p.expect.includes(String(r[p.field]))) {
        throw new VmStateError(`QMP: ${step.execute}: ${p.field} is ${String(r[p.field])}, expected ${p.expect.join(' or ')}`);
      }
      out.push(r);
    }
    return out;
  }

  /**
   * End the session and wait until the monitor is free again (QEMU takes one client at a time):
   * our side ends, the relay exits; a channel that has not ended within `graceMs` is torn down.
   */
  async close(graceMs = 2000): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.channel.input.end();
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.channel.done.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!ended) (this.channel.input as NodeJS.WritableStream & { destroy?: () => void }).destroy?.();
  }
}

/** Open a session, run `use`, close it whatever happens (and wait until the monitor is free). */
export async function withQmp<T>(open: () => Promise<QmpClient>, use: (qmp: QmpClient) => Promise<T>): Promise<T> {
  const qmp = await open();
  try {
    return await use(qmp);
  } finally {
    await qmp.close();
  }
}
