/** I. N guests side by side (N = 1, 2, 4): time until every one answers SSH, host memory per idle guest. */
import { containerMiB, m5dev, must, record } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

async function sideBySide(image: { url: string; sha256: string }): Promise<void> {
  let one: number | undefined;
  for (const n of [1, 2, 4]) {
    const names = Array.from({ length: n }, (_, i) => `side-${i + 1}`);
    for (const name of names) await m5dev(['destroy', '--name', name]); // a previous run's, if any
    const r = await must(['--json', 'up', ...names.flatMap((x) => ['--name', x]), '--disk', 'overlay', '--image-url', image.url, '--image-sha256', image.sha256]);
    const ups = (n === 1 ? [JSON.parse(r.stdout)] : JSON.parse(r.stdout)) as { name: string; container: string; bootSeconds: number }[];
    one ??= r.ms;
    record('side by side', `${n} guest${n > 1 ? 's' : ''}: m5dev up of all → every one answers SSH`, r.ms, n > 1 ? { label: '1 guest', ms: one } : undefined);
    for (const name of names) await m5dev(['exec', '--name', name, '--', 'sudo systemctl is-system-running --wait >/dev/null']);
    if (n === 1) {
      const why = await must(['exec', '--name', names[0]!, '--', 'sudo systemd-analyze 2>&1; sudo systemd-analyze critical-chain --no-pager 2>&1 | head -24; sudo systemd-analyze blame --no-pager 2>&1 | head -15']);
      process.stderr.write(`bench: first boot, systemd-analyze in the guest:\n${why.stdout}\n`);
    }
    await new Promise((res) => setTimeout(res, 20_000));
    const mem = ups.map((u) => containerMiB(u.container));
    record('side by side', `${n} guest${n > 1 ? 's' : ''}: host memory per guest, idle (VM container: QEMU + touched guest RAM)`, mem.reduce((a, b) => a + b, 0) / n, undefined, 'MiB');
    for (const name of names) await must(['destroy', '--name', name]);
  }
}

export const sideBySideGroup: BenchGroup = {
  id: 'I',
  title: 'N guests side by side (N = 1, 2, 4; up --name … --name …): time until every one answers SSH, host memory per guest once they idle; systemd-analyze of the first boot',
  needs: [],
  guest: 'own',
  run: (ctx: BenchCtx) => sideBySide(ctx.image),
};
