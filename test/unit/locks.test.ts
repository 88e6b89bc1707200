/**
 * Instance locks between real processes (no engine): a holder is waited for while its process
 * lives, even stopped (Ctrl-Z, a laptop asleep) long past the lock's age limit, and its lock is
 * taken over at once when it died (kill -9).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STALE_MS, withLock } from '../../src/locks.js';
import { BusyError } from '../../src/errors.js';

/** The holder runs the built module (make builds dist/ before any test). */
const LOCKS_JS = resolve(import.meta.dirname, '../../dist/locks.js');
let home = '';
let holder: ChildProcess | undefined;
afterEach(() => {
  holder?.kill('SIGKILL');
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Another process holding the lock on `resource` until killed; resolves once it holds it. */
function holdInChild(resource: string): Promise<ChildProcess> {
  const script = join(home, 'hold.mjs');
  writeFileSync(script, `import { withLock } from ${JSON.stringify(LOCKS_JS)};\nawait withLock(${JSON.stringify(home)}, ${JSON.stringify(resource)}, { wait: false, what: 't' }, async () => { console.log('held'); await new Promise(() => setInterval(() => {}, 1000)); });\n`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((ok, fail) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && ok(child));
    child.on('exit', (code) => fail(new Error(`the holder exited (${code})`)));
  });
}

const tryLock = (resource: string) => withLock(home, resource, { wait: false, what: 'instance t' }, async () => 'got it');

describe('instance locks', () => {
  it('never takes over the lock of a live holder, however long it has not run; takes a dead one\'s at once', async () => {
    home = mkdtempSync(join(tmpdir(), 'm5dev-locks-'));
    holder = await holdInChild('instance-t');
    holder.kill('SIGSTOP');
    // Stopped, its lock not refreshed for far longer than the age limit (as after a night asleep).
    const old = new Date(Date.now() - 100 * STALE_MS);
    utimesSync(join(home, 'locks', 'instance-t.lock'), old, old);
    await expect(tryLock('instance-t')).rejects.toThrow(BusyError);
    await expect(tryLock('instance-t')).rejects.toThrow(new RegExp(`in use by another m5dev \\(pid ${holder.pid},`));
    // Killed (kill -9): its lock is free at once, without waiting out any age (refreshed just now).
    const now = new Date();
    utimesSync(join(home, 'locks', 'instance-t.lock'), now, now);
    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
    // Without waiting (wait: false): a lock still held would throw BusyError here.
    expect(await tryLock('instance-t')).toBe('got it');
  }, 60_000);

  it('lets one waiter at a time take a dead holder\'s lock over: two waiters never hold it together', async () => {
    home = mkdtempSync(join(tmpdir(), 'm5dev-locks-'));
    holder = await holdInChild('instance-w');
    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
    const spans: [number, number][] = [];
    const hold = () => withLock(home, 'instance-w', { wait: true, what: 'instance w' }, async () => {
      const from = performance.now();
      await new Promise((r) => setTimeout(r, 400));
      spans.push([from, performance.now()]);
    });
    await Promise.all([hold(), hold(), hold()]);
    spans.sort((a, b) => a[0] - b[0]);
    expect(spans).toHaveLength(3);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  }, 60_000);

  it('falls back to the age limit for a holder it cannot check (another machine sharing the home)', async () => {
    home = mkdtempSync(join(tmpdir(), 'm5dev-locks-'));
    holder = await holdInChild('instance-u');
    holder.kill('SIGSTOP');
    const holderFile = join(home, 'locks', 'instance-u.holder.json');
    writeFileSync(holderFile, JSON.stringify({ pid: 1, client: 'another-machine/12345678:1', command: 'up', since: 'then' }));
    await expect(tryLock('instance-u')).rejects.toThrow(/in use by another m5dev \(pid 1, `up`/);
    const old = new Date(Date.now() - 2 * STALE_MS);
    utimesSync(join(home, 'locks', 'instance-u.lock'), old, old);
    expect(await tryLock('instance-u')).toBe('got it');
  }, 60_000);

  it('a lock lost under a running command stops it (exit 15, its undo run), instead of a warning while it goes on', async () => {
    home = mkdtempSync(join(tmpdir(), 'm5dev-locks-'));
    const script = join(home, 'lose.mjs');
    const cleanup = resolve(import.meta.dirname, '../../dist/cleanup.js');
    writeFileSync(script, [
      `import { withLock } from ${JSON.stringify(LOCKS_JS)};`,
      `import { onCleanup } from ${JSON.stringify(cleanup)};`,
      `await withLock(${JSON.stringify(home)}, 'instance-l', { wait: false, what: 'instance l' }, async () => {`,
      "  onCleanup('half-made thing', () => console.log('undone'));",
      "  console.log('held');",
      '  await new Promise(() => setInterval(() => {}, 1000));',
      '});',
      '',
    ].join('\n'));
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    holder = child;
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!out.includes('held') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Someone else removes the lock (another machine took it over, a user cleared locks/).
    rmSync(join(home, 'locks', 'instance-l.lock'), { recursive: true, force: true });
    const code = await new Promise<number | null>((ok) => child.on('exit', ok));
    expect(code).toBe(15);
    expect(err).toMatch(/^m5dev: error: lost the lock on instance l \(.*\): another m5dev may be using it; stopped/);
    expect(out).toContain('undone');
  }, 60_000);
});
