/**
 * examples/github-actions.yml runs as written: its `run:` steps in order, with GitHub's `if:` rules,
 * on the local engine. What this machine cannot reach is replaced, and each replacement must match
 * the recipe (a recipe that drifts from them fails here):
 *  - $M5DEV_TARBALL is this checkout's `npm pack` (the release asset the recipe downloads);
 *  - `actions/cache` restores $M5DEV_HOME's kernels/ and blobs/ from the tests' kernel home (as a
 *    cache hit of an earlier run would), `actions/checkout` is the module tree, and the fixture image
 *    (Ubuntu's is out of reach) is named by $M5DEV_HOME/config.json, the operator's own settings (a
 *    repository's m5dev.json may not choose what boots), `actions/setup-node` is this Node;
 *  - `m5dev kernel build` gets the test kernel tarball (kernel.org is out of reach), and the
 *    recipe's 6.6.33 becomes that kernel's version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';
import { cli, ROOT } from '../helpers/cli.js';
import { serveDir, type FileServer } from '../helpers/http-server.js';
import { fixture, type Fixture } from '../helpers/fixture.js';
import { kernelBuildArgs, kernelTarball, kernelTestHome, type KernelTarball } from '../helpers/kernel.js';
import { containersOfHome, removeContainersOfHome } from '../helpers/docker.js';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
}

let fx: Fixture;
let kt: KernelTarball;
let images: FileServer;
let mirror: FileServer;
let scratch: string;

beforeAll(async () => {
  fx = fixture();
  kt = kernelTarball();
  images = await serveDir(fx.dir);
  mirror = await serveDir(kt.dir);
  scratch = mkdtempSync(join(tmpdir(), 'm5dev-recipe-'));
  // The kernel the tests share (built here if no other test file built it yet).
  const built = await cli(kernelBuildArgs(kt, `${mirror.url}/${kt.file}`), { M5DEV_HOME: kernelTestHome() });
  expect(built.code, built.stderr).toBe(0);
}, 3_600_000);

afterAll(async () => {
  await images?.close();
  await mirror?.close();
  if (scratch) {
    await removeContainersOfHome(join(scratch, 'workspace', '.m5dev-home'));
    rmSync(scratch, { recursive: true, force: true });
  }
  if (kt) rmSync(kt.dir, { recursive: true, force: true });
});

describe('examples/github-actions.yml', () => {
  it('runs its steps in order, as GitHub would, and passes', async () => {
    const recipe = parse(readFileSync(join(ROOT, 'examples', 'github-actions.yml'), 'utf8')) as { jobs: Record<string, { env: Record<string, string>; steps: Step[] }> };
    const job = Object.values(recipe.jobs)[0]!;
    const workspace = join(scratch, 'workspace');
    const runnerTemp = join(scratch, 'runner-temp');
    const prefix = join(scratch, 'npm-global');
    mkdirSync(runnerTemp);
    // The release tarball.
    execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = join(scratch, readdirSync(scratch).find((f) => f.endsWith('.tgz'))!);

    const expr = (text: string, env: Record<string, string>) => {
      const out = text.replace(/\$\{\{\s*([\w.]+)\s*\}\}/g, (_m, e: string) => {
        if (e === 'github.workspace') return workspace;
        if (e === 'runner.temp') return runnerTemp;
        if (e === 'runner.arch') return 'X64';
        if (e.startsWith('env.') && env[e.slice(4)] !== undefined) return env[e.slice(4)]!;
        throw new Error(`the recipe uses \${{ ${e} }}, which this test does not know`);
      });
      return out;
    };
    const jobEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(job.env)) jobEnv[k] = expr(String(v), jobEnv);
    jobEnv.M5DEV_TARBALL = tarball;
    const env: NodeJS.ProcessEnv = { ...process.env, ...jobEnv, RUNNER_TEMP: runnerTemp, CI: 'true', GITHUB_ACTIONS: 'true', NPM_CONFIG_PREFIX: prefix, NPM_CONFIG_UPDATE_NOTIFIER: 'false', PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH}` };
    delete env.M5DEV_FIXTURE_DIR;
    const home = jobEnv.M5DEV_HOME!;

    // Replacements for what this machine cannot reach; each must occur in the recipe.
    const replacements: [string | RegExp, string][] = [
      ['m5dev kernel build', `m5dev kernel build --version ${kt.version} --kernel-url ${mirror.url}/${kt.file} --kernel-sha256 ${kt.sha256}`],
      [/6\.6\.33/g, kt.version],
    ];
    const used = new Set<number>();
    const adapt = (script: string) =>
      replacements.reduce((s, [from, to], i) => {
        const next = s.replace(from, to);
        if (next !== s) used.add(i);
        return next;
      }, script);

    const ran: { name: string; code: number; out: string }[] = [];
    let failed = false;
    for (const step of job.steps) {
      const name = step.name ?? step.uses ?? step.run!.split('\n')[0]!;
      const when = step.if ?? 'success()';
      if (!(when === 'always()' || (when === 'failure()' ? failed : when === 'success()' && !failed))) continue;
      if (step.uses) {
        const action = step.uses.replace(/@.*$/, '');
        if (action === 'actions/checkout') {
          cpSync(join(ROOT, 'module'), workspace, { recursive: true });
          // The fixture image instead of Ubuntu's: the CI operator's own choice ($M5DEV_HOME/config.json,
          // trusted), not the repository's (an m5dev.json may not choose what boots).
          mkdirSync(home, { recursive: true });
          writeFileSync(join(home, 'config.json'), JSON.stringify({ imageUrl: `${images.url}/${fx.image}`, imageSha256: fx.sha256 }));
        } else if (action === 'actions/cache') {
          // A cache hit: what an earlier run saved under the recipe's paths.
          const paths = String(step.with?.path ?? '').split('\n').map((p) => expr(p.trim(), jobEnv)).filter(Boolean);
          expect(paths).toEqual(expect.arrayContaining([join(home, 'blobs'), join(home, 'kernels')]));
          mkdirSync(home, { recursive: true });
          // Hard links where they can be (same file system), else a copy.
          for (const dir of ['blobs', 'kernels']) {
            try {
              execFileSync('cp', ['-al', join(kernelTestHome(), dir), join(home, dir)], { stdio: 'ignore' });
            } catch {
              rmSync(join(home, dir), { recursive: true, force: true });
              execFileSync('cp', ['-a', join(kernelTestHome(), dir), join(home, dir)]);
            }
          }
        } else if (action !== 'actions/setup-node') {
          throw new Error(`the recipe uses ${step.uses}, which this test does not know`);
        }
        ran.push({ name, code: 0, out: '' });
        continue;
      }
      const script = adapt(expr(step.run!, jobEnv));
      const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], { cwd: workspace, env, encoding: 'utf8', timeout: 1_800_000 });
      ran.push({ name, code: r.status ?? 128, out: `${r.stdout}\n${r.stderr}` });
      if (r.status !== 0) failed = true;
    }
    const failures = ran.filter((s) => s.code !== 0).map((s) => `${s.name} (exit ${s.code}):\n${s.out.slice(-3000)}`);
    expect(failures).toEqual([]);
    expect([...used].sort()).toEqual(replacements.map((_r, i) => i));
    // Every step ran but the one for failures; the guest built, loaded and tested the module; the
    // toolchain image was saved for the next run; the guest is stopped.
    expect(ran.map((s) => s.name)).toEqual(job.steps.filter((s) => s.if !== 'failure()').map((s) => s.name ?? s.uses ?? ''));
    expect(ran.find((s) => /module/i.test(s.name) && /test/i.test(s.name))!.out).toMatch(/^ok \d/m);
    expect(existsSync(join(runnerTemp, 'm5dev-toolchain.tar'))).toBe(true);
    // The module test's JUnit report, for the CI's test view: every check passed.
    expect(readFileSync(join(runnerTemp, 'm5dev-junit.xml'), 'utf8')).toMatch(/<testsuite name="m5dev module test [^"]*" tests="6" failures="0"/);
    expect(await containersOfHome(home)).toEqual([]);
  }, 3_600_000);
});
