import { describe, expect, it } from 'vitest';
import { confinement } from '../../src/docker/containers.js';
import { tarDirs } from '../../src/docker/archive.js';
import { buildUser } from '../../src/workflows/module.js';

describe('a confined tool run (a module build: its Kbuild may be the guest\'s)', () => {
  it('runs as the given user, with no capability, no privilege to gain and no network', () => {
    expect(confinement({ uid: 1000, gid: 1001 })).toEqual({
      User: '1000:1001',
      HostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], NetworkMode: 'none' },
    });
    // Root's builds too: uid 0, but no capability.
    expect(confinement({ uid: 0, gid: 0 }).HostConfig.CapDrop).toEqual(['ALL']);
    expect(confinement(undefined)).toEqual({ HostConfig: {} });
  });

  it('builds as the invoking user', () => {
    expect(buildUser()).toEqual({ uid: process.getuid!(), gid: process.getgid!() });
  });

  it('gets the directories its files make, owned by it, parents first', () => {
    expect(tarDirs(['mod/Makefile', 'mod/test/m5_test.c', 'mod/a/b/c.h', 'top'])).toEqual(['mod', 'mod/a', 'mod/test', 'mod/a/b']);
    expect(tarDirs(['x'])).toEqual([]);
  });
});
