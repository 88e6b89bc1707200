/** bench/ is a registry of groups: every group file is registered once, with a unique id and what it needs. */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GROUPS } from '../../bench/groups/index.js';
import { ROOT } from '../helpers/cli.js';

describe('the bench registry', () => {
  it('has every group file once, ids unique, the shared-instance groups before those with their own', () => {
    const files = readdirSync(join(ROOT, 'bench', 'groups')).filter((f) => /^[a-z]-.*\.ts$/.test(f));
    expect(GROUPS.length).toBe(files.length);
    expect(new Set(GROUPS.map((g) => g.id)).size).toBe(GROUPS.length);
    expect(GROUPS.map((g) => g.id).sort()).toEqual(files.map((f) => f[0]!.toUpperCase()).sort());
    const firstOwn = GROUPS.findIndex((g) => g.guest === 'own');
    expect(GROUPS.slice(firstOwn).every((g) => g.guest === 'own')).toBe(true);
    for (const g of GROUPS) expect(g.needs.every((n) => n === 'kernel' || n === 'base'), g.id).toBe(true);
  });
});
