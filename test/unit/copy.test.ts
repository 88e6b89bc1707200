/** `m5dev cp`'s pure parts: which side is a guest's, and which links would leave a copied tree. */
import { describe, expect, it } from 'vitest';
import { copyPlan, linkEscapes, parseCopySide } from '../../src/workflows/copy.js';

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
