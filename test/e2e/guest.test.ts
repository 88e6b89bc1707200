/**
 * The seed workflow end to end: packed CLI, real Docker engine, real QEMU (UEFI + GRUB + cloud-init)
 * booting the arm64 fixture served over loopback, real SSH with the pinned host key.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { chmodSync, closeSync, existsSync, openSync, readSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { CLI, cli, cliEnv, startCli } from '../helpers/cli.js';
import { shellQuote } from '../../src/shell.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { fixture, freePort, type Fixture } from '../helpers/fixture.js';
import { containersOfHome, docker, networksOfHome, removeContainersOfHome } from '../helpers/docker.js';
import { buildM5op } from '../helpers/m5op.js';
import { fileWhenMatching } from '../helpers/wait.js';

/** Which of `needles` occur in a (large, sparse) file, read in chunks that overlap by the longest needle. */
function fileHas(path: string, needles: string[]): boolean[] {
  const found = needles.map(() => false);
  const bufs = needles.map((x) => Buffer.from(x));
  const overlap = Math.max(...bufs.map((b) => b.length));
  const chunk = Buffer.alloc(16 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0, carry = 0; ; ) {
      const n = readSync(fd, chunk, carry, chunk.length - carry, pos);
      if (n === 0) break;
      const view = chunk.subarray(0, carry + n);
      bufs.forEach((b, i) => { if (view.includes(b)) found[i] = true; });
      pos += n;
      carry = Math.min(overlap, view.length);
      view.copy(chunk, 0, view.length - carry);
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

let fx: Fixture;
let server: FileServer;
let home: string;
let env: NodeJS.ProcessEnv;
let port: number;
let imageUrl: string;

beforeAll(async () => {
  fx = fixture();
  server = await serveDir(fx.dir);
  home = mkdtempSync(join(tmpdir(), 'm5dev-e2e-'));
  env = { M5DEV_HOME: home };
  port = await freePort();
  imageUrl = `${server.url}/${fx.image}`;
}, 1_800_000);

afterAll(async () => {
  await removeContainersOfHome(home);
  await server?.close();
});

const blobs = () => (existsSync(join(home, 'blobs', 'sha256')) ? readdirSync(join(home, 'blobs', 'sha256')) : []);
const partials = () => (existsSync(join(home, 'tmp')) ? readdirSync(join(home, 'tmp')) : []);

describe('m5dev up → exec → down on the fixture guest', () => {
  it('refuses a wrong checksum and keeps nothing', async () => {
    const res = await cli(['up', '--name', 'badsum', '--image-url', imageUrl, '--image-sha256', 'e'.repeat(64), '--ssh-port', String(port)], env);
    expect(res.code, res.stderr).toBe(6);
    expect(res.stderr).toMatch(/SHA-256 mismatch/);
    expect(res.stderr).toMatch(/hint: The file was discarded/);
    expect(blobs()).toEqual([]);
    expect(partials()).toEqual([]);
    expect(await containersOfHome(home)).toEqual([]);
  }, 300_000);

  it('boots through UEFI and cloud-init, resuming a dropped download, and answers over SSH', async () => {
    server.dropAfter(`/${fx.image}`, 8 * 1024 * 1024, 1);
    const res = await cli(['--json', 'up', '--image-url', imageUrl, '--disk', 'overlay', '--ssh-port', String(port), '--boot-timeout', '600'], env);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { sshPort: number; accel: string; cpu: string; bootSeconds: number };
    expect(out).toMatchObject({ sshPort: port, accel: 'tcg', cpu: 'cortex-a57' });
    expect(res.stderr).toMatch(/Image digest from SHA256SUMS/);
    expect(res.stderr).toMatch(/Downloaded and verified \(2 attempts, resumed\)/);
    expect(server.requests.some((r) => r.path === `/${fx.image}` && r.range === `bytes=${8 * 1024 * 1024}-`)).toBe(true);
    expect(blobs()).toEqual([fx.sha256]);
    expect(partials()).toEqual([]);
    // The UEFI path really ran: firmware, then GRUB, then the kernel.
    const consoleText = readFileSync(join(home, 'instances', 'default', 'console.log'), 'utf8');
    expect(consoleText).toMatch(/UEFI|EFI stub|BdsDxe/);
    expect(consoleText).toMatch(/Booting Linux on physical CPU/);
  }, 900_000);

  it('runs guest commands with their output and exit code', async () => {
    const uname = await cli(['exec', '--', 'uname', '-m'], env);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout.trim()).toBe('aarch64');
    const who = await cli(['exec', '--', 'id -un; sudo -n id -u; echo $SHELL'], env);
    expect(who.stdout.split('\n').slice(0, 3)).toEqual(['ubuntu', '0', '/bin/bash']);
    const fail = await cli(['exec', '--', 'exit 7'], env);
    expect(fail.code).toBe(7);
    // Two or more words are an argv, passed exactly (as docker exec): sh -c gets its whole script.
    const argv = await cli(['exec', '--', 'sh', '-c', 'echo a; echo "$1"', 'zero', 'it\'s $HOME'], env);
    expect(argv.stdout).toBe("a\nit's $HOME\n");
    // The same through the full CLI (a global option first: not the fast path), and ssh -- joins as ssh does.
    const full = await cli(['--quiet', 'exec', '--name', 'default', '--', 'sh', '-c', 'echo a; echo b'], env);
    expect(full.stdout, full.stderr).toBe('a\nb\n');
    const joined = await cli(['ssh', '--', 'echo', 'a;', 'echo', 'b'], env);
    expect(joined.stdout, joined.stderr).toBe('a\nb\n');
    // The seed's "+10G": cloud-init's growpart and resizefs grew the 2 GiB root into the grown disk.
    const df = await cli(['exec', '--', 'df', '--output=size', '-B', '1G', '/'], env);
    expect(Number(df.stdout.trim().split('\n').pop())).toBeGreaterThanOrEqual(11);
  }, 120_000);

  it('m5dev cp: a tree and a file with spaces, host → guest → host, with either ssh client', async () => {
    const src = mkdtempSync(join(tmpdir(), 'm5dev-cp-'));
    mkdirSync(join(src, 'tree', 'sub dir'), { recursive: true });
    writeFileSync(join(src, 'tree', 'a file.txt'), 'spaces ok\n');
    writeFileSync(join(src, 'tree', 'sub dir', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    chmodSync(join(src, 'tree', 'a file.txt'), 0o755);
    // Into a directory that exists: the tree lands under its own name.
    const up = await cli(['cp', join(src, 'tree'), 'guest:/home/ubuntu'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe('guest:/home/ubuntu/tree');
    const seen = await cli(['exec', '--', "cat '/home/ubuntu/tree/a file.txt'; stat -c '%U %a' '/home/ubuntu/tree/a file.txt'; od -An -tx1 '/home/ubuntu/tree/sub dir/b.bin'"], env);
    expect(seen.stdout.trim().split('\n').map((l) => l.trim())).toEqual(['spaces ok', 'ubuntu 755', '00 01 02 ff']);
    // A single file to a new name, through the container's ssh client.
    const one = await cli(['cp', join(src, 'tree', 'a file.txt'), 'guest:/home/ubuntu/renamed file'], { ...env, M5DEV_SSH: 'container' });
    expect(one.code, one.stderr).toBe(0);
    expect((await cli(['exec', '--', "cat '/home/ubuntu/renamed file'"], env)).stdout).toBe('spaces ok\n');
    // Back to the host: the tree (written in the guest) and a file, both ssh clients.
    await cli(['exec', '--', "echo from-guest > '/home/ubuntu/tree/sub dir/new.txt'"], env);
    const back = mkdtempSync(join(tmpdir(), 'm5dev-cp-back-'));
    const down = await cli(['cp', 'guest:/home/ubuntu/tree', back], env);
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(join(back, 'tree', 'a file.txt'), 'utf8')).toBe('spaces ok\n');
    expect(readFileSync(join(back, 'tree', 'sub dir', 'new.txt'), 'utf8')).toBe('from-guest\n');
    expect(readFileSync(join(back, 'tree', 'sub dir', 'b.bin')).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    const file = await cli(['cp', 'guest:/home/ubuntu/renamed file', join(back, 'copy.txt')], { ...env, M5DEV_SSH: 'container' });
    expect(file.code, file.stderr).toBe(0);
    expect(readFileSync(join(back, 'copy.txt'), 'utf8')).toBe('spaces ok\n');
    expect(readdirSync(back).sort()).toEqual(['copy.txt', 'tree']); // no staging left behind
    // A missing guest path: a clear error, exit 17, nothing written.
    const missing = await cli(['cp', 'guest:/nope', join(back, 'nope')], env);
    expect(missing.code).toBe(17);
    expect(missing.stderr).toMatch(/no such file or directory: \/nope/);
    expect(readdirSync(back).sort()).toEqual(['copy.txt', 'tree']);
    expect((await cli(['cp', 'a', 'b'], env)).code).toBe(2);
    // NAME:PATH, as docker cp and limactl cp spell it; one spelling of the path it prints.
    const named = await cli(['cp', join(src, 'tree', 'a file.txt'), 'default:/tmp//'], env);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout.trim()).toBe('guest:/tmp/a file.txt');
    // Out of the guest: the invoker's files (not the guest user's uid), with no setuid bit.
    await cli(['exec', '--', 'cp /bin/true /tmp/su && chmod 4755 /tmp/su && mkdir -p /tmp/esc && echo x > /tmp/esc/c && ln -s c /tmp/esc/ok'], env);
    const owned = await cli(['cp', 'default:/home/ubuntu/tree', join(back, 'owned')], env);
    expect(owned.code, owned.stderr).toBe(0);
    expect(statSync(join(back, 'owned', 'a file.txt')).uid).toBe(process.getuid!());
    expect((await cli(['cp', 'default:/tmp/su', join(back, 'su')], env)).code).toBe(0);
    expect(statSync(join(back, 'su')).mode & 0o7000).toBe(0);
    // A link inside the tree comes along; one that leads out of it refuses the whole copy (exit 17).
    expect((await cli(['cp', 'default:/tmp/esc', join(back, 'esc1')], env)).code).toBe(0);
    expect(readFileSync(join(back, 'esc1', 'ok'), 'utf8')).toBe('x\n');
    await cli(['exec', '--', 'ln -s ../.bashrc /tmp/esc/up && ln -s /etc/passwd /tmp/esc/abs'], env);
    const esc = await cli(['cp', 'default:/tmp/esc', join(back, 'esc2')], env);
    expect(esc.code).toBe(17);
    expect(esc.stderr).toMatch(/holds a link that leads out of the copied tree: .*(abs -> \/etc\/passwd|up -> \.\.\/\.bashrc)/);
    expect(esc.stderr).not.toMatch(/a bug in m5dev/);
    expect(existsSync(join(back, 'esc2'))).toBe(false);
    // A local path with a colon is ./a:b; an unknown instance before the colon says so.
    const ambiguous = await cli(['cp', 'nosuch:x', back], env);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/there is no instance "nosuch"[\s\S]*written \.\/nosuch:x/);
  }, 180_000);

  it('pins the guest host key it generated (no trust on first use)', async () => {
    const guestKey = (await cli(['exec', '--', 'sudo', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'], env)).stdout.trim().split(/\s+/).slice(0, 2).join(' ');
    const known = readFileSync(join(home, 'instances', 'default', 'known_hosts'), 'utf8').trim();
    expect(known).toBe(`m5dev-default ${guestKey}`);
    // cc_ssh made no host keys of its own: the seeded ed25519 pair is the only one.
    const keys = await cli(['exec', '--', 'ls /etc/ssh/ | grep ^ssh_host_'], env);
    expect(keys.stdout.trim().split('\n')).toEqual(['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']);
    // Swap the pinned key for another: the connection must now be refused.
    const other = mkdtempSync(join(tmpdir(), 'm5dev-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(other, 'k')]);
    const file = join(home, 'instances', 'default', 'known_hosts');
    writeFileSync(file, `m5dev-default ${readFileSync(join(other, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    try {
      const res = await cli(['exec', '--', 'true'], { ...env, M5DEV_SSH: 'host', M5DEV_SSH_REUSE: 'no' });
      expect(res.stderr).toMatch(/host key|HOST IDENTIFICATION/i);
      expect(res.code).toBe(255);
    } finally {
      writeFileSync(file, `${known}\n`);
    }
  }, 120_000);

  it('works with the container\'s ssh client when the host has none', async () => {
    const res = await cli(['exec', '--', 'hostname'], { ...env, M5DEV_SSH: 'container', PATH: '/nonexistent' + ':' + process.env.PATH });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('default');
  }, 120_000);

  it('publishes SSH on 127.0.0.1 only and reports status', async () => {
    const [c] = await containersOfHome(home);
    const info = await docker.getContainer(c!.Id).inspect();
    const bindings = Object.values(info.HostConfig.PortBindings ?? {}).flat() as { HostIp: string; HostPort: string }[];
    expect(bindings).toEqual([{ HostIp: '127.0.0.1', HostPort: String(port) }]);
    const status = await cli(['--json', 'status', '--name', 'default'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: 'default', state: 'running', sshPort: port, accel: 'tcg' });
    // Without --name: the engine and every instance of the home.
    const all = JSON.parse((await cli(['--json', 'status'], env)).stdout) as { engine: unknown; instances: { name: string; state: string }[] };
    expect(all.engine).toMatchObject({ product: 'docker', arch: expect.stringMatching(/^(x86_64|aarch64)$/), version: expect.any(String) });
    expect(all.instances.map((i) => [i.name, i.state])).toContainEqual(['default', 'running']);
    // ssh-proxy run by hand (ssh-config names it for engines whose loopback is not this machine's):
    // its stdio is the guest's sshd, which greets first; it ends when its input does.
    const proxy = spawn(process.execPath, [CLI, 'ssh-proxy', '--home', home, '--name', 'default'], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let greeting = '';
    proxy.stdout.on('data', (d: Buffer) => (greeting += d.toString()));
    const proxyDone = new Promise<number | null>((r) => proxy.on('close', r));
    for (const deadline = Date.now() + 60_000; !greeting.includes('\n') && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
    proxy.stdin.end();
    expect(greeting).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(await proxyDone).toBe(0);
    const cfg = await cli(['ssh-config'], env);
    const cfgFile = join(home, 'ssh_config');
    writeFileSync(cfgFile, cfg.stdout);
    expect(execFileSync('ssh', ['-F', cfgFile, '-o', 'BatchMode=yes', 'm5dev-default', 'echo', 'ok'], { encoding: 'utf8' }).trim()).toBe('ok');
    // --host names the Host block (as VS Code's Remote-SSH list shows it).
    const named = await cli(['ssh-config', '--host', 'arm-box'], env);
    expect(named.stdout).toMatch(/^Host arm-box$/m);
    writeFileSync(cfgFile, named.stdout);
    expect(execFileSync('ssh', ['-F', cfgFile, '-o', 'BatchMode=yes', 'arm-box', 'echo', 'ok'], { encoding: 'utf8' }).trim()).toBe('ok');
    // `m5dev ssh CMD`: the command's output and exit code.
    const viaSsh = await cli(['ssh', '--', 'echo via-ssh; exit 3'], env);
    expect([viaSsh.stdout, viaSsh.code]).toEqual(['via-ssh\n', 3]);
    // `m5dev ssh` alone: a login shell on a terminal (script(1) gives it one); what is typed runs there, and its exit is ssh's.
    const typed = spawnSync('script', ['-qec', `${shellQuote(process.execPath)} ${shellQuote(CLI)} ssh`, '/dev/null'], { input: 'echo typed-$((6*7)); exit 4\n', env: cliEnv(env), cwd: tmpdir(), encoding: 'utf8', timeout: 120_000 });
    expect(typed.status, `${typed.stdout}${typed.stderr}`).toBe(4);
    expect(typed.stdout).toMatch(/^typed-42\r?$/m);
    // `m5dev logs`: the console as the instance's files hold it (and the same by --name).
    const logs = await cli(['logs'], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/Booting Linux on physical CPU/);
    const byName = await cli(['logs', '--name', 'default'], env);
    expect([byName.code, byName.stdout.slice(0, logs.stdout.length)]).toEqual([0, logs.stdout]);
    // The plain-text status: the engine's line, then the instance's, with its state and port.
    const plain = await cli(['status', '--name', 'default'], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^engine: docker \S+ linux\/(x86_64|aarch64)/);
    expect(plain.stdout).toMatch(new RegExp(`^default\\s+running\\s+127\\.0\\.0\\.1:${port}\\s+tcg`, 'm'));
    // A name no instance has: exit 9, as plain text and as JSON.
    for (const json of [[], ['--json']]) {
      const missing = await cli([...json, 'status', '--name', 'nosuch'], env);
      expect(missing.code, missing.stderr).toBe(9);
      expect(missing.stderr).toMatch(/Instance "nosuch" does not exist/);
    }
    // ssh-config --name: the block of that instance.
    const cfgByName = await cli(['ssh-config', '--name', 'default'], env);
    expect(cfgByName.stdout).toBe(cfg.stdout);
  }, 120_000);

  it('suspends to disk and resumes where it was, refusing another machine', async () => {
    const token = `m5dev-${Date.now()}`;
    // The guest keeps writing memory while it is saved (a live save under TCG lost such pages).
    const churn = "nohup setsid sh -c 'echo $$ > /dev/shm/churn.pid; while :; do head -c 32M /dev/urandom > /dev/shm/churn; done' >/dev/null 2>&1 </dev/null &";
    const before = await cli(['exec', '--', `echo ${token} > /dev/shm/marker; ${churn} cat /proc/sys/kernel/random/boot_id`], env);
    expect(before.code, before.stderr).toBe(0);
    const sus = await cli(['--json', 'suspend'], env);
    expect(sus.code, sus.stderr).toBe(0);
    expect(JSON.parse(sus.stdout)).toMatchObject({ synced: true, bytes: expect.any(Number) });
    // By default the guest's RAM is a file in the container's tmpfs: QEMU saved the devices only,
    // and the suspend copied the RAM file out, sparse (2 GiB long, a few hundred MiB of it data).
    const inst = join(home, 'instances', 'default');
    expect(statSync(join(inst, 'vmstate')).size).toBeLessThan(32 * 2 ** 20);
    const ram = statSync(join(inst, 'ram'));
    expect(ram.size).toBe(2048 * 2 ** 20);
    expect(ram.blocks * 512).toBeLessThan(ram.size / 2);
    expect(JSON.parse(sus.stdout).bytes).toBe(statSync(join(inst, 'vmstate')).size + ram.blocks * 512);
    expect(await containersOfHome(home)).toEqual([]);
    expect(JSON.parse((await cli(['--json', 'status', '--name', 'default'], env)).stdout)).toMatchObject({ state: 'suspended' });
    const exec = await cli(['exec', '--', 'true'], env);
    expect(exec.code).toBe(9);
    expect(exec.stderr).toMatch(/is suspended[\s\S]*hint: Resume it with `m5dev up`/);
    // Another machine than the one saved: refused, nothing started, the state kept.
    const other = await cli(['up', '--cpus', '3'], env);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toMatch(/is suspended, but the VM settings/);
    expect(await containersOfHome(home)).toEqual([]);
    const res = await cli(['--json', 'up'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ resumed: true, sshPort: port });
    expect(res.stderr).toMatch(/QEMU resumed the suspended guest/);
    // Same boot, same RAM (tmpfs), and the guest clock brought up to date.
    const after = await cli(['exec', '--', 'cat /dev/shm/marker /proc/sys/kernel/random/boot_id; date +%s'], env);
    const [marker, bootId, secs] = after.stdout.trim().split('\n');
    expect(marker).toBe(token);
    expect(bootId).toBe(before.stdout.trim());
    expect(Math.abs(Number(secs) - Date.now() / 1000)).toBeLessThan(10);
    // Still sound a while later, its writer still running.
    const later = await cli(['exec', '--', "sleep 3; kill $(cat /dev/shm/churn.pid) && rm -f /dev/shm/churn*"], env);
    expect(later.code, later.stderr).toBe(0);
    // Consumed: no saved state is left behind, and the RAM is back in the container's tmpfs only.
    expect(readdirSync(join(home, 'instances', 'default')).filter((f) => f.startsWith('vmstate') || f.startsWith('ram'))).toEqual([]);
  }, 600_000);

  /** Suspend, damage the saved state as `damage` does, then `up`: the guest must boot afresh, leave no saved state and say why. */
  async function suspendDamageUp(damage: (instanceDir: string) => void): Promise<{ notes: string; guest: string }> {
    const bootId = (await cli(['exec', '--', 'cat /proc/sys/kernel/random/boot_id'], env)).stdout.trim();
    expect((await cli(['suspend'], env)).code).toBe(0);
    const dir = join(home, 'instances', 'default');
    damage(dir);
    const res = await cli(['--json', 'up', '--boot-timeout', '600'], env);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { resumed: boolean; notes: string[] };
    expect(out.resumed).toBe(false);
    const now = await cli(['exec', '--', 'cat /proc/sys/kernel/random/boot_id; ls /dev/shm'], env);
    expect(now.stdout.trim().split('\n')[0]).not.toBe(bootId);
    expect(readdirSync(dir).filter((f) => f.startsWith('vmstate') || f.startsWith('ram'))).toEqual([]);
    return { notes: out.notes.join(' '), guest: now.stdout };
  }

  // A disk changed after the suspend is discarded by the same path as the damaged state below: the
  // rule and the stamps of real files are unit tests (test/unit/suspend.test.ts), not a third reboot here.

  it('boots afresh, and says so, when the saved RAM file is damaged', async () => {
    // QEMU refuses a RAM file of the wrong size.
    const { notes } = await suspendDamageUp((dir) => truncateSync(join(dir, 'ram'), statSync(join(dir, 'ram')).size - 4096));
    expect(notes).toMatch(/could not resume \(qemu-system-aarch64: backing store size \w+ does not match 'size' option \w+\); booted afresh/);
  }, 900_000);

  it('makes lost SSH keys anew and boots afresh under a new instance-id, so that cloud-init installs them', async () => {
    const idBefore = JSON.parse(readFileSync(join(home, 'instances', 'default', 'state.json'), 'utf8')).instanceId as string;
    const { notes } = await suspendDamageUp((dir) => {
      for (const f of ['id_ed25519', 'id_ed25519.pub']) rmSync(join(dir, f));
    });
    // Resuming the saved guest (or booting it under the old instance-id) would lock the user out.
    expect(notes).toMatch(/saved state discarded: the SSH keys were made anew/);
    const idAfter = JSON.parse(readFileSync(join(home, 'instances', 'default', 'state.json'), 'utf8')).instanceId as string;
    expect(idAfter).not.toBe(idBefore);
  }, 900_000);

  it('fails clearly when the SSH port is taken, starting nothing', async () => {
    const blocker: Server = createServer();
    const taken = await freePort();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', () => r()));
    try {
      const res = await cli(['up', '--name', 'porttaken', '--image-url', imageUrl, '--disk', 'overlay', '--ssh-port', String(taken)], env);
      expect(res.code, res.stderr).toBe(7);
      expect(res.stderr).toContain(`127.0.0.1:${taken} is already in use`);
      expect(res.stderr).toMatch(/hint: Pick another port with --ssh-port/);
      const names = (await containersOfHome(home)).map((c) => c.Labels['dev.m5dev.instance']);
      expect(names).toEqual(['default']);
    } finally {
      blocker.close();
    }
  }, 300_000);

  it('down --grace powers off and leaves no container; logs -f follows the console until then', async () => {
    const follow = startCli(['logs', '-f'], env);
    let followed = '';
    follow.child.stdout!.on('data', (c: Buffer) => (followed += c.toString()));
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!ok()) {
        if (Date.now() > deadline) {
          follow.child.kill(); // not left following a VM that runs on
          throw new Error(`logs -f never printed ${what}: ${followed.slice(-500)}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    await until('the console so far', () => followed.includes('Booting Linux on physical CPU'));
    // A line the guest writes to its serial console now: printed while following.
    expect((await cli(['exec', '--', "sudo sh -c 'echo m5dev-logs-probe > /dev/ttyAMA0'"], env)).code).toBe(0);
    await until('the new line', () => followed.includes('m5dev-logs-probe'));
    const res = await cli(['down', '--grace', '30'], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^default stopped$/m); // clean: not "stopped (forced)"
    expect(await containersOfHome(home)).toEqual([]);
    const status = await cli(['--json', 'status', '--name', 'default'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'stopped' });
    const exec = await cli(['exec', '--', 'true'], env);
    expect(exec.code).toBe(9);
    expect(exec.stderr).toMatch(/is not running/);
    // The follower stops by itself once the VM has stopped.
    const done = await follow.done;
    expect(done.code, done.stderr).toBe(0);
  }, 180_000);

  it('Ctrl-C during up leaves no container and no partial file', async () => {
    const run = startCli(['up', '--name', 'intr', '--image-url', imageUrl, '--disk', 'overlay', '--ssh-port', String(await freePort())], env);
    // Ctrl-C once the VM container exists (the phase this test names), never at a deadline.
    const deadline = Date.now() + 240_000;
    while ((await containersOfHome(home)).filter((c) => c.Labels['dev.m5dev.instance'] === 'intr').length === 0) {
      if (Date.now() > deadline) throw new Error('up never started the VM container');
      await new Promise((r) => setTimeout(r, 250));
    }
    run.child.kill('SIGINT');
    const res = await run.done;
    expect(res.code, res.stderr).toBe(130);
    expect(res.stderr).toMatch(/Interrupted: cleaning up/);
    expect(await containersOfHome(home)).toEqual([]);
    expect((await networksOfHome(home)).filter((n) => n.startsWith('m5dev-intr-'))).toEqual([]);
    expect(partials()).toEqual([]);
    expect(readdirSync(join(home, 'instances', 'intr')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 300_000);

  it("up --m5ops-checkpoints: the guest's m5 checkpoint is saved by the instance's agent while the guest stands still, and up --from-checkpoint makes a new instance that resumes there, not from boot", async () => {
    const img = await cli(['--json', 'image', 'build'], env);
    expect(img.code, img.stderr).toBe(0);
    const m5op = await buildM5op((JSON.parse(img.stdout) as { tag: string }).tag);
    // Whatever fails here, no instance of this test runs on into the next one.
    onTestFinished(async () => {
      for (const n of ['ck', 'ck2', 'ck3']) if (existsSync(join(home, 'instances', n))) await cli(['destroy', '--name', n], env);
    });
    // The default disk (raw): the checkpoint copies it, sparse.
    const up = await cli(['--json', 'up', '--name', 'ck', '--image-url', imageUrl, '--m5ops-checkpoints', '--boot-timeout', '600'], env);
    expect(up.code, up.stderr).toBe(0);
    const agent = (JSON.parse(up.stdout) as { checkpointAgent: number }).checkpointAgent;
    expect(readFileSync(`/proc/${agent}/cmdline`, 'utf8')).toContain('checkpoint-agent');
    expect(JSON.parse((await cli(['--json', 'status', '--name', 'ck'], env)).stdout)).toMatchObject({ m5ops: { checkpointAgent: agent } });
    expect((await cli(['cp', m5op, 'ck:/home/ubuntu'], env)).code).toBe(0);
    // Tokens the guest computes (N*3: the number is in no command line, so in the guest's memory
    // only once the shell ran that command), in memory only (/dev/shm): one before the op, one by
    // the next command after it, one by a later session. The op (gem5's checkpoint, 0x43, no delay)
    // returns once the agent saved the guest and let it run on. The shell ignores SIGHUP: in a
    // guest resumed from the checkpoint, the same shell runs on from the op (as after gem5's restore)
    // even once its SSH session is gone.
    const n = () => 1e12 + Math.floor(Math.random() * 1e12);
    const [pre, next, later] = [n(), n(), n()];
    const mark = (tag: string, v: number) => `${tag}${v * 3}${tag}`;
    const write = (tag: string, v: number, file: string) => `echo ${tag}$((${v} * 3))${tag} > /dev/shm/${file}`;
    const before = await cli(['exec', '--name', 'ck', '--', `trap '' HUP; ${write('pre', pre, 't')}; cat /proc/sys/kernel/random/boot_id; sudo ./m5op op 0x43 0 0 >/dev/null && ${write('nxt', next, 'next')} && echo ran-on`], env);
    expect(before.code, before.stderr).toBe(0);
    const [bootId, ranOn] = before.stdout.trim().split('\n');
    expect(ranOn).toBe('ran-on');
    expect((await cli(['exec', '--name', 'ck', '--', write('lat', later, 'later')], env)).code).toBe(0);
    const list = await cli(['--json', 'checkpoints', '--name', 'ck'], env);
    const [c] = JSON.parse(list.stdout) as { index: number; pauseMs: number; disk: string }[];
    expect(c).toMatchObject({ index: 1, disk: 'raw' });
    // The agent says so once its last step is done (it lets the guest run on before).
    expect(await fileWhenMatching(join(home, 'instances', 'ck', 'checkpoint-agent.log'), /checkpoint 1 saved/)).toMatch(/checkpoint 1 saved \(the guest stood still \d+ ms\): m5dev up --from-checkpoint ck:1 --name NEW/);
    // The saved memory stands at the op: the token computed before it is in it, the one the very
    // next command computed is not (nor the later session's).
    const ram = join(home, 'instances', 'ck', 'checkpoints', '1', 'ram');
    expect(fileHas(ram, [mark('pre', pre), mark('nxt', next), mark('lat', later)])).toEqual([true, false, false]);
    // A new instance from it: the guest's memory as it was at the op, the same boot, its own name and port.
    const again = await cli(['--json', 'up', '--from-checkpoint', 'ck:1', '--name', 'ck2', '--boot-timeout', '600'], env);
    expect(again.code, again.stderr).toBe(0);
    const a = JSON.parse(again.stdout) as { resumed: boolean; sshPort: number; checkpointAgent: number };
    expect(a.resumed).toBe(true);
    expect(a.sshPort).not.toBe((JSON.parse(up.stdout) as { sshPort: number }).sshPort);
    expect(a.checkpointAgent).not.toBe(agent); // its own agent (the settings came with the checkpoint)
    // The later session's write is not there; the op's own shell ran on from the op in the new guest
    // and wrote its next token there (computed after the resume: it was in no saved byte).
    const seen = await cli(['exec', '--name', 'ck2', '--', 'cat /dev/shm/t /proc/sys/kernel/random/boot_id; for i in $(seq 60); do [ -e /dev/shm/next ] && break; sleep 1; done; cat /dev/shm/next; ls /dev/shm'], env);
    const lines = seen.stdout.trim().split('\n');
    expect(lines.slice(0, 3), seen.stderr).toEqual([mark('pre', pre), bootId, mark('nxt', next)]);
    expect(lines.slice(3)).not.toContain('later');
    // Refused: an existing name, the source's own name, a run's way of naming.
    const exists = await cli(['up', '--from-checkpoint', 'ck:1', '--name', 'ck2'], env);
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/instance ck2 exists/);
    const unnamed = await cli(['up', '--from-checkpoint', 'ck:1'], env);
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toMatch(/name it with --name/);
    const missing = await cli(['up', '--from-checkpoint', 'ck:7', '--name', 'ck3'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/instance ck has no checkpoint 7/);
    expect(existsSync(join(home, 'instances', 'ck3'))).toBe(false);
    // Each agent ends with its VM.
    for (const n of ['ck', 'ck2']) expect((await cli(['destroy', '--name', n], env)).code).toBe(0);
    for (const deadline = Date.now() + 15_000; existsSync(`/proc/${agent}`) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 250));
    expect(existsSync(`/proc/${agent}`)).toBe(false);
  }, 900_000);

  it('up of several names at once: each its own guest, port and container, all answering SSH', async () => {
    // The stopped default instance and a new one, booted side by side. The default one holds what a
    // suspend killed before its commit leaves: up drops it, and says so.
    writeFileSync(join(home, 'instances', 'default', 'vmstate.tmp'), 'a suspend that did not finish');
    // The machine's settings, for both (the stopped default instance takes explicit ones): one vCPU
    // each (two guests booting at once on two cores), less memory, a smaller TCG cache, another CPU
    // model; the new instance's disk grown less.
    const res = await cli(['--json', 'up', '--name', 'default', '--name', 'second', '--image-url', imageUrl, '--disk', 'overlay', '--boot-timeout', '600',
      '--cpus', '1', '--memory', '1536', '--tcg-cache', '256', '--accel', 'tcg', '--cpu', 'cortex-a72', '--disk-grow', '6G'], env);
    expect(res.code, res.stderr).toBe(0);
    const ups = JSON.parse(res.stdout) as { name: string; sshPort: number; container: string; resumed: boolean; notes: string[] }[];
    expect(ups.map((u) => u.name)).toEqual(['default', 'second']);
    expect(ups[0]!.notes).toContain('the files of a suspend that did not finish were dropped (vmstate.tmp)');
    expect(existsSync(join(home, 'instances', 'default', 'vmstate.tmp'))).toBe(false);
    expect(new Set(ups.map((u) => u.sshPort)).size).toBe(2);
    expect(new Set(ups.map((u) => u.container)).size).toBe(2);
    const ids = await Promise.all(ups.map((u) => cli(['exec', '--name', u.name, '--', 'cat /proc/sys/kernel/random/boot_id'], env)));
    expect(ids.map((r) => r.code)).toEqual([0, 0]);
    expect(ids[0]!.stdout).not.toBe(ids[1]!.stdout);
    // What the guests see: 1 CPU, a Cortex-A72 (part 0xd08), under 1.5 GiB; the new disk 2 GiB + 6G, the old one as it was.
    const seen = await Promise.all(ups.map((u) => cli(['exec', '--name', u.name, '--', "nproc; grep -m1 'CPU part' /proc/cpuinfo | awk '{print $NF}'; awk '/MemTotal/{print int($2/1024)}' /proc/meminfo; df --output=size -B 1G / | tail -1"], env)));
    for (const r of seen) {
      const [cpus, part, memMiB] = r.stdout.trim().split('\n');
      expect([cpus, part]).toEqual(['1', '0xd08']);
      expect(Number(memMiB)).toBeLessThan(1536);
      expect(Number(memMiB)).toBeGreaterThan(1024);
    }
    expect(Number(seen[0]!.stdout.trim().split('\n')[3])).toBeGreaterThanOrEqual(11);
    expect(Number(seen[1]!.stdout.trim().split('\n')[3])).toBeLessThanOrEqual(8);
    expect(JSON.parse((await cli(['--json', 'status', '--name', 'second'], env)).stdout)).toMatchObject({ cpu: 'cortex-a72', accel: 'tcg' });
    // QEMU was given the smaller translated-code cache.
    const vms = await containersOfHome(home);
    expect(vms).toHaveLength(2);
    for (const c of vms) expect(c.Command).toMatch(/tb-size=256\b/);
    // cp NAME:PATH between the two guests' sides: each instance by its name.
    const twoDir = mkdtempSync(join(tmpdir(), 'm5dev-cp-two-'));
    writeFileSync(join(twoDir, 'to-second.txt'), 'for second\n');
    expect((await cli(['cp', join(twoDir, 'to-second.txt'), 'second:/tmp'], env)).code).toBe(0);
    expect((await cli(['exec', '--name', 'second', '--', 'cat /tmp/to-second.txt; test -e /tmp/to-second.txt'], env)).stdout).toBe('for second\n');
    expect((await cli(['exec', '--name', 'default', '--', 'test -e /tmp/to-second.txt'], env)).code).toBe(1);
    expect((await cli(['cp', 'second:/tmp/to-second.txt', join(twoDir, 'back.txt')], env)).code).toBe(0);
    expect(readFileSync(join(twoDir, 'back.txt'), 'utf8')).toBe('for second\n');
    // --ssh-port names one port: refused for several instances, before anything starts.
    const port2 = await cli(['up', '--name', 'a', '--name', 'b', '--ssh-port', '6001'], env);
    expect(port2.code).toBe(2);
    expect(port2.stderr).toMatch(/--ssh-port names one port/);
    // The second instance by name: ssh, logs and m5ops log followed until its VM stops, a forced
    // down (--grace 0: said so), destroy; the default instance is untouched by all of it.
    const viaSsh = await cli(['ssh', '--name', 'second', '--', 'echo', 'from-second'], env);
    expect(viaSsh.code, viaSsh.stderr).toBe(0);
    expect(viaSsh.stdout).toBe('from-second\n');
    const follow = startCli(['logs', '--name', 'second', '--follow'], env);
    const ops = startCli(['m5ops', 'log', '--name', 'second', '--follow'], env);
    let followed = '';
    let opsSeen = '';
    follow.child.stdout!.on('data', (c: Buffer) => (followed += c.toString()));
    ops.child.stdout!.on('data', (c: Buffer) => (opsSeen += c.toString()));
    for (const deadline = Date.now() + 60_000; !(followed.includes('Booting Linux on physical CPU') && opsSeen.includes(' start(')); ) {
      if (Date.now() > deadline) throw new Error(`the followers never printed: ${followed.slice(-300)} / ${opsSeen}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const forced = await cli(['down', '--name', 'second', '--grace', '0'], env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^second stopped \(forced\)$/m);
    // Both followers end by themselves once that VM has stopped.
    const [followDone, opsDone] = await Promise.all([follow.done, ops.done]);
    expect([followDone.code, opsDone.code]).toEqual([0, 0]);
    expect(opsDone.stdout).toMatch(/^\S+ vcpu-1 start\(0x10010000\) = 0x0 {2}\[exit=continue\]$/m);
    const destroyed = await cli(['destroy', '--name', 'second'], env);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(existsSync(join(home, 'instances', 'second'))).toBe(false);
    expect((await cli(['status', '--name', 'second'], env)).code).toBe(9);
    expect(JSON.parse((await cli(['--json', 'status', '--name', 'default'], env)).stdout)).toMatchObject({ state: 'running' });
    expect((await cli(['down'], env)).code).toBe(0);
    expect(await containersOfHome(home)).toEqual([]);
  }, 900_000);
});
