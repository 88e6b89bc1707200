/** `m5dev cp`'s pure parts: which side is a guest's, and which links would leave a copied tree. */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CopyError, ExitCode } from '../../src/errors.js';
import type { GuestSsh } from '../../src/ssh/client.js';
import { copy, copyPlan, linkEscapes, parseCopySide } from '../../src/workflows/copy.js';

describe('m5dev cp sides', () => {
  it('NAME:PATH names an instance, guest:PATH the --name one; a colon after a slash is a local path', () => {
    expect(parseCopySide('bar9:/tmp/')).toEqual({ instance: 'bar9', path: '/tmp/' });
    expect(parseCopySide('guest:/tmp')).toEqual({ instance: undefined, path: '/tmp' });
    expect(parseCopySide('./a:b')).toBeUndefined();
    expect(parseCopySide('/abs/a:b')).toBeUndefined();
    expect(parseCopySide('plain')).toBeUndefined();
  });

  it('plans either way, with one spelling of the guest path', () => {
    expect(copyPlan('./f', 'bar9:/tmp//x/')).toEqual({ to: 'guest', local: './f', remote: '/tmp/x', instance: 'bar9' });
    expect(copyPlan('guest:/var/log/syslog', '.')).toEqual({ to: 'host', remote: '/var/log/syslog', local: '.', instance: undefined });
    expect(copyPlan('./f', 'guest:/')).toMatchObject({ remote: '/' });
  });

  it('refuses both or neither side in a guest, an unknown instance (hinting ./a:b), and an empty path', () => {
    expect(() => copyPlan('a', 'b')).toThrow(/neither side is in the guest/);
    expect(() => copyPlan('a:x', 'guest:y')).toThrow(/both sides are in a guest/);
    const known = (n: string) => n === 'bar9';
    expect(() => copyPlan('a:b', '/tmp', known)).toThrow(/a:b: there is no instance "a"/);
    try {
      copyPlan('a:b', '/tmp', known);
    } catch (e) {
      expect((e as { hint: string }).hint).toMatch(/written \.\/a:b/);
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
    expect(() => copyPlan('./f', 'bar9:', known)).toThrow(/needs a path/);
    expect(() => copyPlan('./f', 'Bad_Name:/x', known)).toThrow(/no instance/);
  });
});

describe('links in a tree copied out of a guest', () => {
  it('may point only inside the tree', () => {
    expect(linkEscapes('a', 'symlink', 'b')).toBe(false);
    expect(linkEscapes('d/a', 'symlink', '../b')).toBe(false);
    expect(linkEscapes('d/a', 'symlink', '.')).toBe(false);
    expect(linkEscapes('a', 'symlink', '../.bashrc')).toBe(true);
    expect(linkEscapes('d/e/a', 'symlink', '../../../x')).toBe(true);
    expect(linkEscapes('a', 'symlink', '/etc/passwd')).toBe(true);
    expect(linkEscapes('d/a', 'link', 'd/b')).toBe(false);
    expect(linkEscapes('d/a', 'link', '../b')).toBe(true);
  });
});

describe('links in a copied tree, as the kernel resolves them', () => {
  it('a chain of links that climbs out by ".." after a link is caught (a string check is not enough)', async () => {
    const { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { linksLeaving } = await import('../../src/workflows/copy.js');
    const root = join(mkdtempSync(join(tmpdir(), 'm5dev-links-')), 'tree');
    mkdirSync(join(root, 'd'), { recursive: true });
    writeFileSync(join(root, 'f'), 'x');
    symlinkSync('f', join(root, 'ok'));
    symlinkSync('../f', join(root, 'd', 'up-ok'));
    symlinkSync('nowhere', join(root, 'dangling'));
    expect(linksLeaving(root)).toEqual([]);
    symlinkSync('.', join(root, 'a'));
    symlinkSync('a/..', join(root, 'b'));
    symlinkSync('b/..', join(root, 'c'));
    expect(linkEscapes('b', 'symlink', 'a/..')).toBe(false); // by string it looks inside…
    expect(linksLeaving(root)).toEqual(['b -> a/..', 'c -> b/..']); // …the kernel says otherwise
  });
});

/**
 * copy() with a stand-in for the guest's SSH: cp-pack.sh's tar stream made here from a local tree
 * (what a guest could send), or cp-unpack.sh's exit code; exit 17 on each path, nothing half-copied.
 */
describe('m5dev cp: what the guest sends or answers (exit 17)', () => {
  const guestSending = (tree: string) =>
    ({
      pipe: async (_cmd: unknown, io: { output?: NodeJS.WritableStream }) => {
        const { pack } = await import('tar-fs');
        const done = new Promise<void>((resolve, reject) => io.output!.once('finish', resolve).once('error', reject));
        (pack(dirname(tree), { entries: [basename(tree)] }) as unknown as NodeJS.ReadableStream).pipe(io.output!);
        await done;
        return { exitCode: 0, stderr: '' };
      },
    }) as unknown as GuestSsh;
  const scratch = () => mkdtempSync(join(tmpdir(), 'm5dev-cp-unit-'));
  /** As the Engine API's exec and ssh's stdout do: done when the guest's tar has sent its last byte, not when it is unpacked. */
  const guestStreaming = (tree: string) =>
    ({
      pipe: async (_cmd: unknown, io: { output?: NodeJS.WritableStream }) => {
        const { pack } = await import('tar-fs');
        const src = pack(dirname(tree), { entries: [basename(tree)] }) as unknown as NodeJS.ReadableStream;
        const sent = new Promise<void>((resolve) => src.once('end', resolve));
        src.pipe(io.output!);
        await sent;
        return { exitCode: 0, stderr: '' };
      },
    }) as unknown as GuestSsh;

  it('waits for the last file to be written, not only sent, before it moves the copy into place (seen in CI: a crash)', async () => {
    const guest = join(scratch(), 'tree');
    mkdirSync(guest);
    for (let i = 0; i < 24; i++) writeFileSync(join(guest, `f${i}.bin`), Buffer.alloc(256 * 1024, i));
    const host = scratch();
    for (let round = 0; round < 3; round++) {
      const dest = join(host, `copy${round}`);
      await copy(guestStreaming(guest), { to: 'host', remote: '/home/ubuntu/tree', local: dest });
      expect(readdirSync(dest).length).toBe(24);
      for (let i = 0; i < 24; i++) expect(readFileSync(join(dest, `f${i}.bin`)).equals(Buffer.alloc(256 * 1024, i))).toBe(true);
    }
    expect(readdirSync(host).sort()).toEqual(['copy0', 'copy1', 'copy2']); // no staging left
  });

  it('a chain of links that leaves the tree once resolved is refused, and nothing lands', async () => {
    const guest = join(scratch(), 'tree');
    mkdirSync(guest);
    writeFileSync(join(guest, 'f'), 'x');
    symlinkSync('.', join(guest, 'a'));
    symlinkSync('a/..', join(guest, 'b'));
    const host = scratch();
    const err = await copy(guestSending(guest), { to: 'host', remote: '/home/ubuntu/tree', local: host }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect((err as CopyError).exitCode).toBe(ExitCode.copyFailed);
    expect((err as CopyError).message).toMatch(/holds a link that leads out of the copied tree: .*b.*; nothing was copied/);
    expect(readdirSync(host)).toEqual([]);
  });

  it('a guest file onto a host directory is refused; the directory is as it was', async () => {
    const guest = join(scratch(), 'x');
    writeFileSync(guest, 'a file in the guest');
    const host = scratch();
    mkdirSync(join(host, 'x'));
    writeFileSync(join(host, 'x', 'kept'), 'mine');
    const err = await copy(guestSending(guest), { to: 'host', remote: '/tmp/x', local: host }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect((err as CopyError).message).toBe(`cannot overwrite directory ${join(host, 'x')} with a file`);
    expect(readdirSync(host)).toEqual(['x']);
    expect(readdirSync(join(host, 'x'))).toEqual(['kept']);
  });

  it('the guest refusing the unpack, or ssh not starting: a CopyError with the guest\'s words', async () => {
    const src = scratch();
    writeFileSync(join(src, 'f'), 'x');
    const refusing = { pipe: async () => ({ exitCode: 1, stderr: 'cp-unpack: cannot overwrite directory /tmp/f\n' }) } as unknown as GuestSsh;
    const refused = await copy(refusing, { to: 'guest', local: join(src, 'f'), remote: '/tmp/f' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CopyError);
    expect((refused as CopyError).message).toBe(`copying ${join(src, 'f')} to guest:/tmp/f failed (exit 1)`);
    expect((refused as CopyError).details).toMatch(/cannot overwrite directory/);
    const noSsh = { pipe: async () => Promise.reject(new Error('spawn ssh ENOENT')) } as unknown as GuestSsh;
    const host = scratch();
    const failed = await copy(noSsh, { to: 'host', remote: '/tmp/f', local: host }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CopyError);
    expect((failed as CopyError).message).toMatch(/copying guest:\/tmp\/f to .* failed: spawn ssh ENOENT/);
    expect(readdirSync(host)).toEqual([]); // the staging directory is gone too
  });
});
