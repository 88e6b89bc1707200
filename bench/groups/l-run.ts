import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAME, PORT, ROOT, RUNS, m5dev, must, record, sample } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

const RUN = 'benchrun';

/**
 * Group L: `m5dev run` on the gem5-resources stand-in (scripts/gem5-standin-image.sh, derived from
 * the fixture): boot to the guest's first m5 exit, against `up` of the fixture itself to its first
 * SSH command; the guest's pause per checkpoint; and what `--m5ops-stats insns` costs a CPU-bound job.
 */
async function runGroup(image: { url: string; sha256: string }): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-run-'));
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  cpSync(join(ROOT, 'module', 'm5op', 'm5op.c'), join(work, 'm5op.c'));
  if (spawnSync('docker', ['run', '--rm', '-v', `${work}:/w`, tag, 'aarch64-linux-gnu-gcc', '-static', '-O2', '-o', '/w/m5op', '/w/m5op.c'], { stdio: 'inherit' }).status !== 0) throw new Error('m5op did not build');
  const standin = join(work, 'standin.qcow2');
  const fixture = fileURLToPath(image.url);
  if (spawnSync('bash', [join(ROOT, 'scripts', 'gem5-standin-image.sh'), fixture, join(work, 'm5op'), standin], { stdio: 'inherit' }).status !== 0) throw new Error('the stand-in image did not build');
  const job = (name: string, text: string) => {
    writeFileSync(join(work, name), text);
    return join(work, name);
  };
  const run = (extra: string[]) => must(['--json', 'run', '--name', RUN, '--disk', standin, '--timeout', '900', ...extra]);
  await run(['--exits', '1']); // the image into the blob cache, the toolchain found: not timed
  const toExit = await sample(RUNS, async () => (await run(['--exits', '1'])).ms);
  const toShell = await sample(RUNS, async () => {
    await m5dev(['destroy', '--name', NAME]);
    return (await must(['up', '--name', NAME, '--image-url', image.url, '--image-sha256', image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT)])).ms;
  });
  await m5dev(['destroy', '--name', NAME]);
  record('run', 'm5dev run of the stand-in: start to the guest\'s first m5 exit (no SSH, no cloud-init, no systemd)', toExit, { label: 'm5dev up of the fixture it was made from, to its first SSH command', ms: toShell });

  const ckpt = job('ckpt.sh', 'm5 op 0x43 0 0 >/dev/null\n');
  const pauses = await sample(RUNS, async () => {
    await run(['--exits', '2', '--m5ops-readfile', ckpt]);
    const list = JSON.parse((await must(['--json', 'checkpoints', '--name', RUN])).stdout) as { pauseMs: number }[];
    return list[0]!.pauseMs;
  });
  const exitOnly = await sample(RUNS, async () => (await run(['--exits', '2', '--m5ops-readfile', job('none.sh', 'true\n')])).ms);
  record('run', 'the guest stands still for a checkpoint (2 GiB RAM file, sparse; m5dev checkpoints pauseMs)', pauses, { label: 'the whole run of the same job without the checkpoint, for scale', ms: exitOnly });

  const loop = job('loop.sh', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done\n');
  const clock = await sample(RUNS, async () => (await run(['--exits', '2', '--m5ops-readfile', loop])).ms);
  const insns = await sample(RUNS, async () => (await run(['--exits', '2', '--m5ops-readfile', loop, '--m5ops-stats', 'insns'])).ms);
  record('run', 'a CPU-bound job (300000 shell loop turns) with --m5ops-stats insns (every instruction counted)', insns, { label: 'the same job with the default clock stats', ms: clock });
  await m5dev(['destroy', '--name', RUN]);
  rmSync(work, { recursive: true, force: true });
}

export const jobRunGroup: BenchGroup = {
  id: 'L',
  title: "m5dev run: a gem5-style image's boot to its first m5 exit against up to SSH; the guest's pause per checkpoint; the cost of --m5ops-stats insns",
  needs: [],
  guest: 'own',
  run: (ctx: BenchCtx) => runGroup(ctx.image),
};
