import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/config.js';
import { ROOT, RUNS, containerMiB, inGuestMs, m5dev, must, record, sample, guestCcDebs, moduleCopy } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

/** Group J: the TCG code cache, m5dev's default against QEMU's own (1 GiB). */
async function tcgCache(image: { url: string; sha256: string }, kernel: string): Promise<void> {
  const debs = guestCcDebs();
  const work = moduleCopy('m5dev-bench-cache-', true);
  const of: Record<number, { boot: number; idle: number; build: number; afterBuild: number }> = {};
  for (const mib of [DEFAULTS.tcgCacheMiB, 1024]) {
    const name = `cache-${mib}`;
    const cache = ['--tcg-cache', String(mib)];
    await m5dev(['destroy', '--name', name]);
    const first = await must(['--json', 'up', '--name', name, '--disk', 'overlay', '--image-url', image.url, '--image-sha256', image.sha256, ...cache]);
    await must(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null || true']);
    await new Promise((res) => setTimeout(res, 20_000));
    const idle = containerMiB((JSON.parse(first.stdout) as { container: string }).container);
    await must(['down', '--name', name]);
    const direct = await must(['--json', 'up', '--name', name, '--kernel', kernel, '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`, ...cache]);
    await must(['exec', '--name', name, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')]);
    await must(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null || true']);
    const build = await sample(RUNS, () => inGuestMs('cd ~/m5 && make clean && make', name));
    const afterBuild = containerMiB((JSON.parse(direct.stdout) as { container: string }).container);
    of[mib] = { boot: first.ms, idle, build, afterBuild };
    await must(['destroy', '--name', name]);
  }
  rmSync(work, { recursive: true, force: true });
  const [mine, qemu] = [of[DEFAULTS.tcgCacheMiB]!, of[1024]!];
  const vs = (ms: number) => ({ label: "--tcg-cache 1024 (QEMU's default)", ms });
  record('tcg cache', `first boot (UEFI) → SSH, --tcg-cache ${DEFAULTS.tcgCacheMiB} (1 run)`, mine.boot, vs(qemu.boot));
  record('tcg cache', 'host memory of the VM container, idle after first boot (1 run)', mine.idle, vs(qemu.idle), 'MiB');
  record('tcg cache', 'in-guest make of m5 (gcc under TCG), direct-boot guest', mine.build, vs(qemu.build));
  record('tcg cache', 'host memory of the VM container after the in-guest builds (1 run)', mine.afterBuild, vs(qemu.afterBuild), 'MiB');
}

export const tcgCacheGroup: BenchGroup = {
  id: 'J',
  title: "QEMU's TCG code cache: m5dev's default against QEMU's own 1 GiB: first boot, idle host memory, an in-guest gcc build",
  needs: ['kernel'],
  guest: 'own',
  run: (ctx: BenchCtx) => tcgCache(ctx.image, ctx.kernel!),
};
