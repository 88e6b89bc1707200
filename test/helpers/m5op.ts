/** The project's m5op client (module/m5op/m5op.c), cross-built static for the guest in the toolchain image. */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.js';
import { docker, TEST_LABEL } from './docker.js';

/** Build m5op with the toolchain image `tag`; returns the binary's path (in a directory of its own). */
export async function buildM5op(tag: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'm5dev-m5op-'));
  cpSync(join(ROOT, 'module', 'm5op', 'm5op.c'), join(dir, 'm5op.c'));
  const [res] = (await docker.run(tag, ['aarch64-linux-gnu-gcc', '-static', '-O2', '-Wall', '-Werror', '-o', '/w/m5op', '/w/m5op.c'], process.stderr, {
    Labels: { [TEST_LABEL]: 'true' },
    HostConfig: { AutoRemove: true, Binds: [`${dir}:/w`] },
  })) as [{ StatusCode: number }];
  if (res.StatusCode !== 0) throw new Error(`m5op did not build (exit ${res.StatusCode})`);
  return join(dir, 'm5op');
}
