import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NAME, PORT, ROOT, RUNS, m5dev, must, record, sample, settled } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

/** Group K: m5ops answered by QEMU, against the other ways a guest gets host bytes. */
async function m5ops(image: { url: string; sha256: string }, kernel: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-m5ops-'));
  chmodSync(work, 0o755); // the guest user reads the share
  const file = join(work, 'data.bin');
  spawnSync('head', ['-c', String(20 * 2 ** 20), '/dev/urandom'], { stdio: ['ignore', openSync(file, 'w'), 'inherit'] });
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  cpSync(join(ROOT, 'module', 'm5op', 'm5op.c'), join(work, 'm5op.c'));
  if (spawnSync('docker', ['run', '--rm', '-v', `${work}:/w`, tag, 'aarch64-linux-gnu-gcc', '-static', '-O2', '-o', '/w/m5op', '/w/m5op.c'], { stdio: 'inherit' }).status !== 0) throw new Error('m5op did not build');
  await m5dev(['destroy', '--name', NAME]);
  await must(['up', '--name', NAME, '--kernel', kernel, '--image-url', image.url, '--image-sha256', image.sha256, '--disk', 'overlay', '--ssh-port', String(PORT), '--share', `${work}:/opt/bench`, '--m5ops-readfile', file]);
  await must(['module', 'load', '--name', NAME]);
  await must(['exec', '--name', NAME, '--', 'cp /opt/bench/m5op ~/m5op']);
  await settled();
  const rt = await sample(RUNS, async () => Number((await must(['exec', '--name', NAME, '--', './m5op bench 20000'])).stdout.trim()) / 1e6);
  const py = 'python3 -c "import os,time; t=time.perf_counter_ns(); [os.getppid() for _ in range(20000)]; print((time.perf_counter_ns()-t)/20000/1e6)"';
  const getpid = await sample(RUNS, async () => Number((await must(['exec', '--name', NAME, '--', py])).stdout.trim()));
  record('m5ops', 'sum round trip (m5op bench 20000, per call)', rt, { label: 'a getppid() syscall from python, per call', ms: getpid });
  const viaM5 = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', './m5op readfile | wc -c'])).ms);
  const viaShare = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', 'sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat /opt/bench/data.bin | wc -c'])).ms);
  const viaSsh = await sample(RUNS, async () => (await must(['exec', '--name', NAME, '--', 'cat | wc -c'], {}, file)).ms);
  const mibs = (ms: number) => `${(20 / (ms / 1000)).toFixed(1)} MiB/s`;
  record('m5ops', `read 20 MiB with m5 readfile (${mibs(viaM5)}; m5dev exec wall time)`, viaM5, { label: `cat from the 9p share, cold (${mibs(viaShare)})`, ms: viaShare });
  record('m5ops', `read 20 MiB with m5 readfile (${mibs(viaM5)})`, viaM5, { label: `streamed in over SSH (${mibs(viaSsh)})`, ms: viaSsh });
  rmSync(work, { recursive: true, force: true });
}

export const m5opsGroup: BenchGroup = {
  id: 'K',
  title: "m5ops: a sum round trip through the m5 module and QEMU's m5ops device; reading 20 MiB with m5 readfile against cat from the 9p share and streamed over SSH",
  needs: ['kernel'],
  guest: 'own',
  run: (ctx: BenchCtx) => m5ops(ctx.image, ctx.kernel!),
};
