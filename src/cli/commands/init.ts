/** `m5dev init`: a starter m5dev.json whose `$schema` lets editors and CI linters check and complete it. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { writeWhole } from '../../staging.js';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CONFIG_SCHEMA_FILE } from '../../assets.js';
import { DEFAULTS, parseConfig } from '../../config.js';
import { UsageError } from '../../errors.js';
import { globalOpts } from '../options.js';
import { printJson } from '../ui.js';

/**
 * Where the file names its schema: the project's own copy of m5dev (`npm i -D m5dev`: a relative
 * path every clone resolves), else the installed package's (a file URL on this machine).
 */
export function schemaRef(dir: string, installed = CONFIG_SCHEMA_FILE): string {
  const local = join(dir, 'node_modules', 'm5dev', 'm5dev.schema.json');
  if (existsSync(local)) return `./${relative(dir, local)}`;
  return pathToFileURL(installed).href;
}

/** The starter settings: the defaults a project usually names, valid by the schema. Pure. */
export function starterConfig(schema: string): Record<string, unknown> {
  return { $schema: schema, cpus: DEFAULTS.cpus, memoryMiB: DEFAULTS.memoryMiB, disk: DEFAULTS.disk, m5opsAddr: `0x${DEFAULTS.m5opsAddr.toString(16)}` };
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a starter ./m5dev.json with "$schema" set, so editors (VS Code, JetBrains) and CI linters check and complete it')
    .option('--force', 'replace an m5dev.json that is there')
    .action((opts: { force?: boolean }, cmd: Command) => {
      const g = globalOpts(cmd);
      const dir = process.cwd();
      const file = join(dir, 'm5dev.json');
      if (existsSync(file) && !opts.force) throw new UsageError(`${file} exists`, 'Edit it (its "$schema" line lets your editor check it), or replace it with `m5dev init --force`.');
      const config = starterConfig(schemaRef(dir));
      parseConfig(config, 'the starter m5dev.json', dir); // what it writes is what m5dev reads
      writeWhole(file, `${JSON.stringify(config, null, 2)}\n`);
      if (g.json) printJson({ file, schema: config.$schema });
      else process.stdout.write(`${file}\n`);
    });
}
