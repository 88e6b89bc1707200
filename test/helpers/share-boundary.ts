/**
 * The host boundary through a 9p share (issue: the host boundary): what guest root plants in a
 * share (a setuid/setgid shell it chowned to root, a device node, a link out, a setuid directory)
 * is, on the host, a plain file or directory of the invoking user without special bits.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { CliResult } from './cli.js';

/** `exec` runs a shell command in the guest; `guestDir` is the share's guest path, `hostDir` its host side. */
export async function expectShareHoldsTheLine(exec: (command: string) => Promise<CliResult>, guestDir: string, hostDir: string, hostUid = process.getuid!()): Promise<void> {
  const planted = await exec(`cd ${guestDir} && sudo cp /bin/sh x && sudo chown 0:0 x && sudo chmod 6755 x && sudo mknod null c 1 3 && ln -s /etc/passwd lnk && sudo mkdir -m 6777 d && stat -c "%u %a %F" x null lnk d`);
  expect(planted.code, planted.stderr).toBe(0);
  // The guest sees what it set (kept in the share's extended attributes)...
  expect(planted.stdout.trim().split('\n')).toEqual(['0 6755 regular file', '0 644 character special file', '1000 777 symbolic link', '0 6777 directory']);
  // ...the host, plain files and a directory of the invoking user, no setuid, setgid, device or link.
  for (const [f, kind, mode] of [['x', 'file', 0o644], ['null', 'file', 0o644], ['lnk', 'file', 0o644], ['d', 'dir', 0o755]] as const) {
    const st = lstatSync(join(hostDir, f));
    expect({ f, uid: st.uid, mode: st.mode & 0o7777, kind: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other' }).toEqual({ f, uid: hostUid, mode, kind });
  }
  expect(readFileSync(join(hostDir, 'lnk'), 'utf8')).toBe('/etc/passwd');
  // In the guest they still work as what the guest made them.
  const used = await exec(`cd ${guestDir} && ./x -c "echo runs" && head -1 lnk && sudo rm -rf x null lnk d`);
  expect(used.stdout).toMatch(/^runs\nroot:/);
}
