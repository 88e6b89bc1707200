/**
 * The checkpoint agent of an `up --m5ops-checkpoints` instance. Under `m5dev run` the job's watcher
 * saves the checkpoints its guest asks for; an `up` instance runs on after `up` returns, so a process
 * of its own does it: started by `up` (and by any later `up` when none runs), it follows the m5ops
 * log while the VM runs, saves each checkpoint the guest's op paused it for (checkpoint.ts, under
 * the instance's checkpoint lock, which suspend, down and destroy also take: never beside them), lets the guest run on, and ends when the
 * VM stops. One per instance: its PID file says which process it is. Without it a guest that asks
 * for a checkpoint would stand paused; `m5dev up` starts it again, and `status` says whether it runs.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { M5opEvent } from '../m5ops/ops.js';
import type { InstanceFiles } from '../vm/instance.js';

export const AGENT_FILES = { pid: 'checkpoint-agent.pid', log: 'checkpoint-agent.log' } as const;
/** The most checkpoints an `up` instance keeps (each holds the guest's memory and disk): asks past it are let go, each said. */
export const MAX_UP_CHECKPOINTS = 8;
/** An ask seen this long with its VM running is not pending (the plugin's pause takes effect within milliseconds). */
const STALE_ASK_MS = 10_000;
/** The agent's name on its command line (how its PID is told from a reused one). */
export const AGENT_COMMAND = 'checkpoint-agent';

/** A checkpoint the guest asked for: its op's host time (the key a record keeps) and virtual clock. */
export interface Ask {
  time: number;
  vclockNs: number;
}

/**
 * The asks of the latest launch that paused the VM and are neither saved (a record with their op's
 * time) nor let go, oldest first. Pure.
 */
export function pendingAsks(events: M5opEvent[], saved: ReadonlySet<number>, letGo: ReadonlySet<number>): Ask[] {
  const launch = events.slice(events.map((e) => e.op).lastIndexOf('start') + 1);
  return launch.filter((e) => e.op === 'checkpoint' && e.note?.startsWith('paused') && !saved.has(e.time) && !letGo.has(e.time)).map((e) => ({ time: e.time, vclockNs: e.vclockNs }));
}

/** The PID of the instance's agent, when one runs (its PID file names a live process that is an agent). */
export function agentPid(files: InstanceFiles): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(files.dir, AGENT_FILES.pid), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    // Linux: its command line is this instance's agent's (`checkpoint-agent --name NAME`: not a
    // reused PID of another instance's agent or of any process that merely names the word); elsewhere, that the PID lives.
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const at = args.indexOf(AGENT_COMMAND);
    return at >= 0 && args[at + 1] === '--name' && args[at + 2] === basename(files.dir) ? pid : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || process.platform === 'linux') return undefined;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }
}

/**
 * This process as the instance's agent: its PID file made, exclusively (false: another agent runs).
 * A file left by a dead agent is replaced. Returns the release, which removes the file if it is still ours.
 */
export function claimAgent(files: InstanceFiles): (() => void) | undefined {
  const file = join(files.dir, AGENT_FILES.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
        } catch {
          // gone already
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (agentPid(files) !== undefined) return undefined;
      rmSync(file, { force: true }); // a dead agent's
    }
  }
  return undefined;
}

/** The lock the agent holds while it saves (suspend, down and destroy take it too: cli/options.ts stoppingLock). */
export const checkpointLock = (name: string): string => `checkpoint-${name}`;

/** What the agent says, one line each (its log file, in the instance). */
export type AgentLog = (line: string) => void;

/**
 * Serve the instance's checkpoints until its VM stops (the agent's life). Each poll: the asks the
 * log has that are neither saved nor let go; when the VM stands paused (the plugin paused it at the
 * op), the oldest is saved under the instance's lock, or let go past MAX_UP_CHECKPOINTS. An ask
 * whose VM runs (a pause not yet in effect) waits for the next poll.
 */
export async function serveCheckpoints(name: string, log: AgentLog, pollMs = 1000): Promise<number> {
  const [{ openOnEngine, instanceReader }, { readEvents }, { listCheckpoints, takeCheckpoint, continueGuest }, { withLock }, { withQmp }, { requireState }] = await Promise.all([
    import('./running.js'),
    import('./m5ops.js'),
    import('./checkpoint.js'),
    import('../locks.js'),
    import('../vm/qmp.js'),
    import('../vm/instance.js'),
  ]);
  const opened = await openOnEngine(name);
  const { storage, host, files, home } = opened;
  const reader = instanceReader(opened, name);
  const letGo = new Set<number>();
  /** The asks a checkpoint of the instance records (its op's time), as far as this agent has seen. */
  const saved = new Set<number>();
  /** When each ask was first seen with the VM running: one that never pauses it (an old ask: a resume, another agent's let-go) is let go. */
  const running = new Map<number, number>();
  let taken = 0;
  for (;;) {
    const vm = await host.running(name);
    if (!vm) return taken;
    const events = await readEvents(storage, await reader.via()).catch(() => []);
    let [ask] = pendingAsks(events, saved, letGo);
    // The instance's checkpoints are listed only when an ask is new to this agent (a volume lists through a helper).
    if (ask) {
      for (const c of await listCheckpoints(storage)) if (c.opTime !== undefined) saved.add(c.opTime);
      [ask] = pendingAsks(events, saved, letGo);
    }
    const paused = ask ? ((await withQmp(() => vm.monitor(30), (q) => q.execute('query-status')).catch(() => ({}))) as { status?: string }).status === 'paused' : false;
    if (ask && !paused) {
      const since = running.get(ask.time) ?? Date.now();
      running.set(ask.time, since);
      if (Date.now() - since > STALE_ASK_MS) {
        letGo.add(ask.time);
        log(`the checkpoint asked for at guest clock ${(ask.vclockNs / 1e9).toFixed(3)} s is not pending (the guest runs): not saved`);
      }
    }
    if (ask && paused) {
      const before = taken;
      await withLock(home.root, checkpointLock(name), { wait: true, what: `the checkpoints of instance ${name}` }, async () => {
        // Under the lock, as it is now: a suspend or a down may have come first.
        const now = await host.running(name);
        if (!now) return;
        const records = await listCheckpoints(storage);
        if (records.some((r) => r.opTime === ask.time)) return void saved.add(ask.time); // saved meanwhile (an agent before this one)
        if (records.length >= MAX_UP_CHECKPOINTS) {
          letGo.add(ask.time);
          await continueGuest(now);
          log(`checkpoint at guest clock ${(ask.vclockNs / 1e9).toFixed(3)} s not saved: the instance holds ${MAX_UP_CHECKPOINTS} (restore one with \`m5dev up --from-checkpoint ${name}:K --name NEW\`, or destroy the instance to drop them); the guest runs on`);
          return;
        }
        const state = requireState(files, name);
        if (!state.portableKey) {
          letGo.add(ask.time);
          await continueGuest(now);
          log('checkpoint not saved: the instance was launched by an m5dev that did not record its machine; the guest runs on');
          return;
        }
        const index = Math.max(0, ...records.map((r) => r.index)) + 1;
        try {
          const record = await takeCheckpoint({ vm: now, storage, state, portableKey: state.portableKey }, index, ask);
          saved.add(ask.time);
          taken++;
          log(`checkpoint ${index} saved (the guest stood still ${record.pauseMs} ms): m5dev up --from-checkpoint ${name}:${index} --name NEW`);
        } catch (e) {
          // The guest runs on (takeCheckpoint continued it); this ask is not tried again.
          letGo.add(ask.time);
          log(`checkpoint ${index} not saved: ${(e as Error).message}; the guest runs on`);
        }
      });
      // The next ask at once only after a save: a guest that asks again and again past the limit
      // (or into a full disk) is answered once a poll, not in a busy loop.
      if (taken > before) continue;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
