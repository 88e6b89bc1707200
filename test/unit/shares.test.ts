import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { checkShares, mappedFileNote, mountArgs, ownerNotes, parseShare, sameShares, shareModels, shareQemuArgs } from '../../src/vm/shares.js';
import { qemuArgs } from '../../src/vm/qemu-args.js';
import { chooseMachine } from '../../src/vm/machine.js';
import { guestTreeCommand, guestTreeStamp } from '../../src/kernel/guest-tree.js';
import type { KernelRecord } from '../../src/kernel/cache.js';
import { ROOT } from '../helpers/cli.js';

describe('share specs', () => {
  it('HOST[:GUEST]: host relative to the base dir, guest absolute or under the guest user\'s home', () => {
    expect(parseShare('src', '/work', 't')).toEqual({ host: '/work/src', guest: '/home/ubuntu/src' });
    expect(parseShare('/a/my tree:/opt/tree/', '/work', 't')).toEqual({ host: '/a/my tree', guest: '/opt/tree' });
    expect(parseShare('.:m5', '/work/m5dev', 't')).toEqual({ host: '/work/m5dev', guest: '/home/ubuntu/m5' });
    expect(parseShare('../x:a/../b', '/work/m5dev', 't')).toEqual({ host: '/work/x', guest: '/home/ubuntu/b' });
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
    const a = { host: '/a', guest: '/opt/a' };
    expect(() => checkShares([a, { host: '/b', guest: '/opt/a/b' }], 't')).toThrow(/overlap/);
    expect(() => checkShares([a, { host: '/b', guest: '/opt/a' }], 't')).toThrow(/overlap/);
    expect(checkShares([a, { host: '/b', guest: '/opt/ab' }], 't')).toHaveLength(2);
  });

  it('m5dev.json "shares": strings or {host, guest}, relative to the file\'s directory; each must exist', () => {
    const proj = realpathSync(mkdtempSync(join(tmpdir(), 'proj-')));
    const x = realpathSync(mkdtempSync(join(tmpdir(), 'x-')));
    mkdirSync(join(proj, 'debs'));
    expect(parseConfig({ shares: ['.', { host: 'debs', guest: '/opt/debs' }, { host: x }] }, 'm5dev.json', proj)).toEqual({
      shares: [
        { host: proj, guest: `/home/ubuntu/${basename(proj)}` },
        { host: join(proj, 'debs'), guest: '/opt/debs' },
        { host: x, guest: `/home/ubuntu/${basename(x)}` },
      ],
    });
    expect(() => parseConfig({ shares: ['missing'] }, 'm5dev.json', proj)).toThrow(/the share .*missing is not a directory m5dev can resolve/);
    expect(() => parseConfig({ shares: 'src' }, 'm5dev.json')).toThrow(/"shares" must be a list/);
    expect(() => parseConfig({ shares: [{ guest: '/x' }] }, 'm5dev.json')).toThrow(/"shares" must be a list/);
  });

  it('compares share lists by value and order', () => {
    const s = [{ host: '/a', guest: '/b' }];
    expect(sameShares(s, [{ host: '/a', guest: '/b' }])).toBe(true);
    expect(sameShares(s, [])).toBe(false);
    expect(sameShares(undefined, [])).toBe(true);
  });
});

describe('shares in QEMU and the guest', () => {
  it('exports each container path over virtio-9p with its own tag, in the model its file system allows', () => {
    expect(shareQemuArgs(['mapped-xattr', 'mapped-file'])).toEqual([
      '-fsdev', 'local,id=fsdev0,path=/shares/0,security_model=mapped-xattr,fmode=0644,dmode=0755', '-device', 'virtio-9p-device,fsdev=fsdev0,mount_tag=m5dev0',
      '-fsdev', 'local,id=fsdev1,path=/shares/1,security_model=mapped-file,fmode=0644,dmode=0755', '-device', 'virtio-9p-device,fsdev=fsdev1,mount_tag=m5dev1',
    ]);
    // The probe's answer per share: only a clear "file" (ENOTSUP) gives up the extended attributes.
    expect(shareModels('0 xattr\n1 file\n', 2)).toEqual(['mapped-xattr', 'mapped-file']);
    // Matched by index, whatever else the container printed; no answer keeps mapped-xattr.
    expect(shareModels('a warning\n1 file\n', 3)).toEqual(['mapped-xattr', 'mapped-file', 'mapped-xattr']);
    expect(shareModels('', 1)).toEqual(['mapped-xattr']);
    expect(mappedFileNote({ host: '/mnt/x', guest: '/opt/x' })).toMatch(/^share \/opt\/x: the file system of \/mnt\/x keeps no extended attributes/);
    const base = {
      machine: chooseMachine({ requested: 'tcg', hostArch: 'x86_64', kvmUsable: false }),
      cpus: 2, memoryMiB: 2048, flash0: '/f0', flash1: '/f1', disk: { path: '/d', format: 'raw' as const }, seed: { path: '/s', format: 'qcow2' as const },
      guestSshForward: 2222, consoleLog: '/c', qmpSocket: '/q',
    };
    expect(qemuArgs(base).join(' ')).not.toContain('9p');
    // QEMU drops to the invoking user (a non-root user on a rootful engine) once it has opened its files.
    expect(qemuArgs(base)).not.toContain('-runas');
    expect(qemuArgs({ ...base, runAs: { uid: 1001, gid: 1002 } }).slice(-2)).toEqual(['-runas', '1001:1002']);
    const direct = qemuArgs({ ...base, shares: ['mapped-xattr'], kernel: { image: '/I', append: 'root=/dev/vda1' } });
    expect(direct.join(' ')).toContain('virtio-9p-device,fsdev=fsdev0,mount_tag=m5dev0');
    // The instance disk stays the last block device (vda for a directly booted kernel).
    expect(direct.lastIndexOf('virtio-blk-device,drive=hd0')).toBeGreaterThan(direct.lastIndexOf('virtio-blk-device,drive=cidata'));
    expect(mountArgs([{ host: '/a', guest: '/g/a' }, { host: '/b', guest: '/g/b' }])).toEqual(['m5dev0', '/g/a', 'm5dev1', '/g/b']);
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
    for (const p of ['/', '/etc', '/etc/ssh', '/usr/src', '/var/lib/docker', '/root', '/home', '/proc/1']) expect(hostShareRefusal(p, home), p).toBeDefined();
    for (const p of ['/home/dev', '/home/dev/.ssh', '/home/dev/.ssh/keys', '/home/dev/.cache/m5dev/instances']) expect(hostShareRefusal(p, home), p).toMatch(/the guest would reach/);
    expect(hostShareRefusal('/srv/m5home', home, ['/srv/m5home/x'])).toMatch(/the guest would reach \/srv\/m5home\/x/);
    for (const p of ['/home/dev/m5', '/tmp/work', '/root/.cache/m5dev-fixtures/debs', '/srv/project']) expect(hostShareRefusal(p, home), p).toBeUndefined();
  });
});
