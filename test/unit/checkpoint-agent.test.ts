/** The checkpoint agent of `up --m5ops-checkpoints` (workflows/checkpoint-agent.ts): which asks are pending, and one agent per instance. */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_FILES, agentPid, claimAgent, pendingAsks } from '../../src/workflows/checkpoint-agent.js';
import { instanceFiles } from '../../src/vm/instance.js';
import type { M5opEvent } from '../../src/m5ops/ops.js';

const ev = (op: string, time: number, note?: string): M5opEvent => ({ time, vclockNs: time * 1000, vcpu: 0, func: 0x43, op, args: [], result: '0x0', ...(note ? { note } : {}) });

describe('pending checkpoint asks', () => {
  it("are the latest launch's paused checkpoint ops not saved nor let go, oldest first", () => {
    const events = [ev('start', 1), ev('checkpoint', 2, 'paused'), ev('start', 3), ev('exit', 4), ev('checkpoint', 5, 'paused'), ev('checkpoint', 6, 'scheduled in 1000 ns'), ev('checkpoint', 7, 'paused'), ev('checkpoint', 8, 'paused')];
    expect(pendingAsks(events, new Set(), new Set())).toEqual([{ time: 5, vclockNs: 5000 }, { time: 7, vclockNs: 7000 }, { time: 8, vclockNs: 8000 }]);
    expect(pendingAsks(events, new Set([5]), new Set([7]))).toEqual([{ time: 8, vclockNs: 8000 }]);
    // An earlier launch's ask is history (above: 2); with no launch record, all of the log is one launch.
    expect(pendingAsks([ev('checkpoint', 2, 'paused')], new Set(), new Set())).toEqual([{ time: 2, vclockNs: 2000 }]);
  });
});

describe('one agent per instance', () => {
  it("claims the instance once, replaces a dead agent's PID file, and gives it back only if still its own", () => {
    const files = instanceFiles(mkdtempSync(join(tmpdir(), 'm5dev-agent-')));
    const pidFile = join(files.dir, AGENT_FILES.pid);
    // A dead process's file: taken over.
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    writeFileSync(pidFile, `${dead}\n`);
    expect(agentPid(files)).toBeUndefined();
    const release = claimAgent(files);
    expect(release).toBeDefined();
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(process.pid));
    // This test process is not named checkpoint-agent: a live PID that is not an agent is no agent.
    expect(agentPid(files)).toBeUndefined();
    release?.();
    expect(existsSync(pidFile)).toBe(false);
    // Another's file is left alone by a release that is not its own.
    writeFileSync(pidFile, '1\n');
    const mine = claimAgent(files);
    expect(mine).toBeDefined(); // PID 1 is no agent
    writeFileSync(pidFile, '424242\n');
    mine?.();
    expect(readFileSync(pidFile, 'utf8')).toBe('424242\n');
  });

  it("a live agent keeps the instance: a second claim is refused; another instance's agent or a process that only names the word is no agent of it", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'm5dev-agent-')), 'ck');
    mkdirSync(dir);
    const files = instanceFiles(dir);
    // Processes whose command lines are as `m5dev checkpoint-agent --name NAME --home H` has it (sh's $0 and $@).
    const proc = (...words: string[]) => spawn('sh', ['-c', 'sleep 30', ...words], { stdio: 'ignore' });
    const children = [proc('checkpoint-agent', '--name', 'ck', '--home', '/h'), proc('checkpoint-agent', '--name', 'other', '--home', '/h'), proc('vi', 'checkpoint-agent')];
    try {
      await new Promise((r) => setTimeout(r, 100));
      const agentOf = (pid: number | undefined) => {
        writeFileSync(join(files.dir, AGENT_FILES.pid), `${pid}\n`);
        return agentPid(files);
      };
      expect(children.map((c) => agentOf(c.pid))).toEqual([children[0]!.pid, undefined, undefined]);
      agentOf(children[0]!.pid);
      expect(claimAgent(files)).toBeUndefined();
    } finally {
      for (const c of children) c.kill();
    }
  });
});
