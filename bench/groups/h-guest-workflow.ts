/** H. The guest workflow: up --share and in-guest builds; with a base, the 9p export modes. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, NAME, PORT, ROOT, RUNS, inGuestMs, must, record, sample, settled, guestCcDebs, moduleCopy } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

async function guestWorkflow(kernel: string): Promise<void> {
  const debs = guestCcDebs();
  const work = moduleCopy('m5dev-bench-share-', true);
  await must(['down', '--name', NAME]);
  await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT), '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`]);
  await must(['exec', '--name', NAME, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')]);
  await must(['exec', '--name', NAME, '--', 'rm -rf ~/m5-disk /var/tmp/debs && cp -a ~/m5 ~/m5-disk && cp -a /opt/debs /var/tmp/debs && sync']);
  await settled();
  const build = (dir: string) => inGuestMs(`cd ${dir} && make clean && make`);
  const onShare = await sample(RUNS, () => build('~/m5'));
  const onDisk = await sample(RUNS, () => build('~/m5-disk'));
  record('guest workflow', 'in-guest make of m5 against /lib/modules/V/build, sources on the 9p share', onShare, { label: 'same tree on the guest disk', ms: onDisk });
  // Cold reads: the guest's page cache dropped before each.
  const read = (dir: string) => inGuestMs(`sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat ${dir}/*.deb | wc -c`);
  const readShare = await sample(RUNS, () => read('/opt/debs'));
  const readDisk = await sample(RUNS, () => read('/var/tmp/debs'));
  record('guest workflow', 'read 50 MiB of .debs, cold, from the 9p share', readShare, { label: 'from the guest disk', ms: readDisk });
  const copied = await sample(RUNS, async () => (await must(['cp', '--name', NAME, work, 'guest:/home/ubuntu/m5-cp'])).ms);
  record('guest workflow', 'm5dev cp of the module tree into the guest', copied);
  rmSync(work, { recursive: true, force: true });
}

/**
 * Group H with BENCH_BASE_CLI: the share's 9p export of this checkout (mapped-xattr: what the guest
 * sets kept in xattrs) against the base's (security_model=none), on one instance, one after the
 * other: an in-guest build on the share, a cold read, and a metadata-heavy copy (kernel headers into
 * the share, listed with their owners, removed).
 */
async function shareModes(kernel: string, base: string): Promise<void> {
  const debs = guestCcDebs();
  const work = moduleCopy('m5dev-bench-9p-', true);
  const measure = async (cli: string) => {
    await must(['down', '--name', NAME], {}, undefined, cli);
    await must(['up', '--name', NAME, '--kernel', kernel, '--ssh-port', String(PORT), '--share', `${work}:m5`, '--share', `${debs}:/opt/debs`], {}, undefined, cli);
    await must(['exec', '--name', NAME, '--', readFileSync(join(ROOT, 'scripts', 'guest-cc-install.sh'), 'utf8')], {}, undefined, cli);
    await settled();
    const build = await sample(RUNS, () => inGuestMs('cd ~/m5 && make clean && make'));
    const read = await sample(RUNS, () => inGuestMs('sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; cat /opt/debs/*.deb | wc -c'));
    const meta = await sample(RUNS, () => inGuestMs('cp -r /usr/src/linux-headers-$(uname -r)/include ~/m5/hdr && ls -lR ~/m5/hdr | wc -l && rm -rf ~/m5/hdr'));
    return { build, read, meta };
  };
  const mine = await measure(CLI);
  const theirs = await measure(base);
  record('9p export', 'in-guest make of m5 on the share, mapped-xattr', mine.build, { label: 'security_model=none (base)', ms: theirs.build });
  record('9p export', 'read 50 MiB of .debs, cold, from the share, mapped-xattr', mine.read, { label: 'security_model=none (base)', ms: theirs.read });
  record('9p export', "copy the kernel's include/ into the share, ls -lR, rm -rf, mapped-xattr", mine.meta, { label: 'security_model=none (base)', ms: theirs.meta });
  await must(['down', '--name', NAME]);
  rmSync(work, { recursive: true, force: true });
}

export const guestWorkflowGroup: BenchGroup = {
  id: 'H',
  title: "the guest workflow: the m5 module built in the guest with its sources on the 9p share vs the guest disk; reading 50 MiB from the share vs the disk; m5dev cp of the tree; with BENCH_BASE_CLI, the share's 9p export against the base's",
  needs: ['kernel'],
  guest: 'bench',
  async run(ctx: BenchCtx) {
    await guestWorkflow(ctx.kernel!);
    if (ctx.base) await shareModes(ctx.kernel!, ctx.base);
  },
};
