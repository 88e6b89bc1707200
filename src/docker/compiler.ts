/**
 * The exact compiler and linker of a toolchain image, as their first `--version` lines: part of
 * every kernel and module cache key, so a build made by another toolchain is never reused. Asked
 * once per image ID (a throwaway container) and remembered under $M5DEV_HOME/engines.
 */
import type Docker from 'dockerode';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTool } from './containers.js';

export async function toolchainCompiler(docker: Docker, image: string, imageId: string, home: string): Promise<string> {
  const dir = join(home, 'engines');
  const file = join(dir, `compiler-${imageId.replace(/^sha256:/, '').slice(0, 32)}.txt`);
  if (existsSync(file)) return readFileSync(file, 'utf8');
  const out = await runTool(docker, {
    image,
    cmd: ['sh', '-c', 'aarch64-linux-gnu-gcc --version | head -n1 && aarch64-linux-gnu-ld --version | head -n1'],
    binds: [],
    home,
    description: 'Asking the toolchain image for its compiler version',
  });
  const versions = out.trim();
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, versions);
  renameSync(`${file}.tmp`, file);
  return versions;
}
