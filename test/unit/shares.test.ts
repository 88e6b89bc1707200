import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { checkShares, mappedFileNote, mountScriptArgs, shareMounts, ownerNotes, parseShare, sameShares, shareExports, shareModels, shareQemuArgs, unmountScriptArgs } from '../../src/vm/shares.js';
import { qemuArgs } from '../../src/vm/qemu-args.js';
import { chooseMachine } from '../../src/vm/machine.js';
import { guestTreeCommand, guestTreeStamp } from '../../src/kernel/guest-tree.js';
import type { KernelRecord } from '../../src/kernel/cache.js';
import { ROOT } from '../helpers/cli.js';

describe('share specs', () => {
  it('HOST[:GUEST]: host relative to the base dir, guest absolute or under the guest user\'s home', () => {
    expect(parseShare('src', '/work', 't')).toEqual({ host: '/work/src', guest: '/home/ubuntu/src', readOnly: false });
    expect(parseShare('/a/my tree:/opt/tree/', '/work', 't')).toEqual({ host: '/a/my tree', guest: '/opt/tree', readOnly: false });
    expect(parseShare('.:m5', '/work/m5dev', 't')).toEqual({ host: '/work/m5dev', guest: '/home/ubuntu/m5', readOnly: false });
    expect(parseShare('../x:a/../b', '/work/m5dev', 't')).toEqual({ host: '/work/x', guest: '/home/ubuntu/b', readOnly: false });
    // :ro and :rw at the end; HOST::ro keeps the default guest path; a default read-only (m5dev.json) yields to :rw.
    expect(parseShare('src:/opt/s:ro', '/work', 't')).toEqual({ host: '/work/src', guest: '/opt/s', readOnly: true });
    expect(parseShare('src::ro', '/work', 't')).toEqual({ host: '/work/src', guest: '/home/ubuntu/src', readOnly: true });
    expect(parseShare('src:ro', '/work', 't')).toEqual({ host: '/work/src', guest: '/home/ubuntu/src', readOnly: true });
    expect(parseShare('src', '/work', 't', true).readOnly).toBe(true);
    expect(parseShare('src:/opt/s:rw', '/work', 't', true)).toEqual({ host: '/work/src', guest: '/opt/s', readOnly: false });
    expect(parseShare('src:/opt/rox', '/work', 't').guest).toBe('/opt/rox');
  });

  it.each([
    [':/opt/x', /names no host directory/],
    ['/src:/', /cannot cover \/ in the guest/],
    ['/src:/lib/modules', /cannot cover \/lib\/modules/],
    ['/src:/home/ubuntu', /cannot cover \/home\/ubuntu/],
    ['/src:/etc/ssh', /cannot cover \/etc\/ssh in the guest/],
    ['/src:.ssh', /cannot cover \/home\/ubuntu\/\.ssh in the guest/],
    ['/src:/home/ubuntu/.ssh/keys', /cannot cover \/home\/ubuntu\/\.ssh\/keys/],
    ['/src:/usr/local/src', /cannot cover \/usr\/local\/src/],
    ['/src:/opt/a b', /space or comma/],
  ])('rejects %s', (spec, msg) => {
    expect(() => parseShare(spec, '/work', 't')).toThrow(msg);
    expect(() => parseShare(spec, '/work', 't')).toThrow(UsageError);
  });

  it('refuses shares that overlap in the guest', () => {
    const a = { host: '/a', guest: '/opt/a', readOnly: false };
    const b = (guest: string) => ({ host: '/b', guest, readOnly: false });
    expect(() => checkShares([a, b('/opt/a/b')], 't')).toThrow(/overlap/);
    // Reverse-nested: the second share holds the first.
    expect(() => checkShares([b('/opt/a/b'), a], 't')).toThrow(/overlap/);
    expect(() => checkShares([a, b('/opt')], 't')).toThrow(/overlap/);
    expect(() => checkShares([a, b('/opt/a')], 't')).toThrow(/overlap/);
    expect(checkShares([a, b('/opt/ab')], 't')).toHaveLength(2);
    expect(checkShares([b('/opt/ab'), a], 't')).toHaveLength(2);
  });

  it('m5dev.json "shares": strings or {host, guest}, relative to the file\'s directory; each must exist', () => {
    const proj = realpathSync(mkdtempSync(join(tmpdir(), 'proj-')));
    const x = realpathSync(mkdtempSync(join(tmpdir(), 'x-')));
    mkdirSync(join(proj, 'debs'));
    expect(parseConfig({ shares: ['.', { host: 'debs', guest: '/opt/debs' }, { host: x }] }, 'm5dev.json', proj)).toEqual({
      shares: [
        { host: proj, guest: `/home/ubuntu/${basename(proj)}`, readOnly: false },
        { host: join(proj, 'debs'), guest: '/opt/debs', readOnly: false },
        { host: x, guest: `/home/ubuntu/${basename(x)}`, readOnly: false },
      ],
    });
    // Read-only by ":ro" or "readOnly": true; ":rw" says writable; "readOnly" must be a boolean.
    expect(parseConfig({ shares: ['.:/opt/p:ro', 'debs::ro', { host: x, readOnly: true }, 'debs:/opt/d:rw'] }, 'm5dev.json', proj)).toEqual({
      shares: [
        { host: proj, guest: '/opt/p', readOnly: true },
        { host: join(proj, 'debs'), guest: '/home/ubuntu/debs', readOnly: true },
        { host: x, guest: `/home/ubuntu/${basename(x)}`, readOnly: true },
        { host: join(proj, 'debs'), guest: '/opt/d', readOnly: false },
      ],
    });
    expect(() => parseConfig({ shares: [{ host: x, readOnly: 'yes' }] }, 'm5dev.json', proj)).toThrow(/"shares" must be a list/);
    expect(() => parseConfig({ shares: ['missing'] }, 'm5dev.json', proj)).toThrow(/the share .*missing is not a directory m5dev can resolve/);
    expect(() => parseConfig({ shares: 'src' }, 'm5dev.json')).toThrow(/"shares" must be a list/);
    expect(() => parseConfig({ shares: [{ guest: '/x' }] }, 'm5dev.json')).toThrow(/"shares" must be a list/);
  });

  it('compares share lists by value and order', () => {
    const s = [{ host: '/a', guest: '/b', readOnly: false }];
    expect(sameShares(s, [{ host: '/a', guest: '/b', readOnly: false }])).toBe(true);
    expect(sameShares(s, [{ host: '/a', guest: '/b', readOnly: true }])).toBe(false);
    expect(sameShares(s, [{ host: '/a', guest: '/c', readOnly: false }])).toBe(false);
    expect(sameShares(s, [{ host: '/x', guest: '/b', readOnly: false }])).toBe(false);
    expect(sameShares(s, [])).toBe(false);
    expect(sameShares([], s)).toBe(false);
    expect(sameShares(undefined, [])).toBe(true);
  });
});

describe('shares in QEMU and the guest', () => {
  it('exports each container path over virtio-9p with its own tag, in the model its file system allows', () => {
    const two = [{ host: '/a', guest: '/g/a', readOnly: false }, { host: '/b', guest: '/g/b', readOnly: true }];
    const exports = shareExports(two, ['mapped-xattr', 'mapped-file'], () => false);
    expect(shareQemuArgs(exports)).toEqual([
      '-fsdev', 'local,id=fsm5dev0,path=/shares/0,security_model=mapped-xattr,fmode=0644,dmode=0755', '-device', 'virtio-9p-device,fsdev=fsm5dev0,mount_tag=m5dev0',
      '-fsdev', 'local,id=fsm5dev1,path=/shares/1,security_model=mapped-file,fmode=0644,dmode=0755,readonly=on', '-device', 'virtio-9p-device,fsdev=fsm5dev1,mount_tag=m5dev1',
    ]);
    // A writable share's .git is exported again, read-only, over it (mounted after it, unmounted before it);
    // a read-only share needs no second export.
    const withGit = shareExports(two, ['mapped-xattr', 'mapped-xattr'], () => true);
    expect(withGit.map((e) => [e.tag, e.path, e.guest, e.readOnly])).toEqual([
      ['m5dev0', '/shares/0', '/g/a', false],
      ['m5dev0git', '/shares/0/.git', '/g/a/.git', true],
      ['m5dev1', '/shares/1', '/g/b', true],
    ]);
    expect(shareQemuArgs(withGit)[5]).toBe('local,id=fsm5dev0git,path=/shares/0/.git,security_model=mapped-xattr,fmode=0644,dmode=0755,readonly=on');
    expect(mountScriptArgs(withGit)).toEqual(['ubuntu', expect.stringContaining('trans=virtio'), 'm5dev0', '/g/a', 'rw', 'm5dev0git', '/g/a/.git', 'ro', 'm5dev1', '/g/b', 'ro']);
    expect(unmountScriptArgs(withGit)).toEqual(['/g/b', '/g/a/.git', '/g/a']);
    // And in the VM container, under QEMU: the writable share's .git is bound read-only over it, so
    // guest root gets nothing by unmounting its view or mounting the share's tag a second time.
    expect(shareMounts(two, () => true)).toEqual([
      { kind: 'bind', source: '/a', target: '/shares/0', readOnly: false },
      { kind: 'bind', source: '/a/.git', target: '/shares/0/.git', readOnly: true },
      { kind: 'bind', source: '/b', target: '/shares/1', readOnly: true },
    ]);
    expect(shareMounts(two)).toHaveLength(2);
    // The probe mounts everything read-only, and no .git apart.
    expect(shareMounts(two, () => true, true).map((m) => [m.target, m.readOnly])).toEqual([['/shares/0', true], ['/shares/1', true]]);
    // The probe's answer per share: only a clear "file" (ENOTSUP) gives up the extended attributes.
    expect(shareModels('0 xattr\n1 file\n', 2)).toEqual(['mapped-xattr', 'mapped-file']);
    // Matched by index, whatever else the container printed; no answer keeps mapped-xattr.
    expect(shareModels('a warning\n1 file\n', 3)).toEqual(['mapped-xattr', 'mapped-file', 'mapped-xattr']);
    expect(shareModels('', 1)).toEqual(['mapped-xattr']);
    expect(mappedFileNote({ host: '/mnt/x', guest: '/opt/x', readOnly: false })).toMatch(/^share \/opt\/x: the file system of \/mnt\/x keeps no extended attributes/);
    const base = {
      machine: chooseMachine({ requested: 'tcg', hostArch: 'x86_64', kvmUsable: false }),
      cpus: 2, memoryMiB: 2048, flash0: '/f0', flash1: '/f1', disk: { path: '/d', format: 'raw' as const }, seed: { path: '/s', format: 'qcow2' as const },
      guestSshForward: 2222, consoleLog: '/c', qmpSocket: '/q',
    };
    expect(qemuArgs(base).join(' ')).not.toContain('9p');
    // QEMU drops to the invoking user (a non-root user on a rootful engine) once it has opened its files.
    expect(qemuArgs(base)).not.toContain('-runas');
    const dropping = qemuArgs({ ...base, runAs: { uid: 1001, gid: 1002 } });
    expect(dropping.slice(dropping.indexOf('-runas'), dropping.indexOf('-runas') + 2)).toEqual(['-runas', '1001:1002']);
    // The seccomp sandbox: set*uid denied unless QEMU must drop to the user itself (-runas is a setuid).
    expect(dropping.slice(-2)).toEqual(['-sandbox', 'on,obsolete=deny,resourcecontrol=deny,elevateprivileges=allow,spawn=deny']);
    expect(qemuArgs(base).slice(-2)).toEqual(['-sandbox', 'on,obsolete=deny,resourcecontrol=deny,elevateprivileges=deny,spawn=deny']);
    const direct = qemuArgs({ ...base, shares: shareExports([two[0]!], ['mapped-xattr'], () => false), kernel: { image: '/I', append: 'root=/dev/vda1' } });
    expect(direct.join(' ')).toContain('virtio-9p-device,fsdev=fsm5dev0,mount_tag=m5dev0');
    // The instance disk stays the last block device (vda for a directly booted kernel).
    expect(direct.lastIndexOf('virtio-blk-device,drive=hd0')).toBeGreaterThan(direct.lastIndexOf('virtio-blk-device,drive=cidata'));
  });

  it('turns the mount script\'s owner lines into notes', () => {
    expect(ownerNotes('')).toEqual([]);
    const notes = ownerNotes('0 /opt/debs\n');
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^share \/opt\/debs belongs to uid 0 on the host, not to ubuntu/);
  });
});

describe('guest module tree', () => {
  const rec = { version: '6.6.33', release: '6.6.33', key: '6.6.33-abc', src: 'src/sha', build: 'build/6.6.33-abc', image: 'build/6.6.33-abc/arch/arm64/boot/Image' } as KernelRecord;
  it('is made beside the build, from its source and build trees, stamped with the build key and format', () => {
    const cmd = guestTreeCommand(rec);
    expect(cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(cmd.slice(3)).toEqual(['m5dev-guest-tree', '/kernels/src/sha', '/kernels/build/6.6.33-abc', '/kernels/build/6.6.33-abc/m5dev-guest', guestTreeStamp(rec), 'arm64', 'aarch64-linux-gnu-']);
    expect(guestTreeStamp(rec)).toMatch(/^6\.6\.33-abc format \d+$/);
    // The script is sh/tool/make-guest-tree.sh: the host programs are rebuilt with the cross compiler
    // given as its 6th argument, from both command formats of the kernel's .cmd files.
    expect(cmd[2]).toBe(readFileSync(join(ROOT, 'sh', 'tool', 'make-guest-tree.sh'), 'utf8'));
    expect(cmd[2]).toContain('line="${CROSS_COMPILE}gcc ${line#gcc }"');
    expect(cmd[2]).toContain('-e "s|^savedcmd_$1 := ||p"');
  });
});

describe('host places a share may not be (issue: the host boundary)', () => {
  it('refuses the system, every user\'s files, and the user\'s secrets (inside them or containing them)', async () => {
    const { hostShareRefusal } = await import('../../src/vm/shares.js');
    const home = '/home/dev';
    // Each refused for its own reason (a refusal for the wrong one would hide a broken rule).
    const why: [string, RegExp][] = [
      ['/', /^\/ holds every user's files$/],
      ['/root', /^\/root holds every user's files$/],
      ['/home', /^\/home holds every user's files$/],
      ['/etc', /^\/etc is a system directory of the host$/],
      ['/etc/ssh', /^\/etc is a system directory of the host$/],
      ['/usr/src', /^\/usr is a system directory/],
      ['/var/lib/docker', /^\/var is a system directory/],
      ['/proc/1', /^\/proc is a system directory/],
      ['/lib64', /^\/lib64 is a system directory/],
    ];
    for (const [p, re] of why) expect(hostShareRefusal(p, home), p).toMatch(re);
    // A sibling whose name starts like a system directory is not one.
    expect(hostShareRefusal('/etcetera', home)).toBeUndefined();
    expect(hostShareRefusal('/home/dev/.sshx', home)).toBeUndefined();
    for (const p of ['/home/dev', '/home/dev/.ssh', '/home/dev/.ssh/keys', '/home/dev/.cache/m5dev/instances']) expect(hostShareRefusal(p, home), p).toMatch(/the guest would reach/);
    expect(hostShareRefusal('/srv/m5home', home, ['/srv/m5home/x'])).toMatch(/the guest would reach \/srv\/m5home\/x/);
    for (const p of ['/home/dev/m5', '/tmp/work', '/root/.cache/m5dev-fixtures/debs', '/srv/project']) expect(hostShareRefusal(p, home), p).toBeUndefined();
  });
});
