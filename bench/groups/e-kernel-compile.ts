/** E. Compiling kernel files: the toolchain container's cross gcc against gcc inside the guest (TCG). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOME, NAME, PORT, ROOT, RUNS, docker, must, record, sample } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

/** Kernel files compiled by both sides: large, typical translation units of the built kernel. */
const COMPILE_SAMPLE = ['kernel/fork.c', 'mm/page_alloc.c', 'fs/namei.c'];

/**
 * In the toolchain container, from the built kernel tree (argv: the source tree, then the sample
 * files, run in the build tree): each sample file preprocessed to <n>.i and
 * its compile flags (from kbuild's .<file>.o.cmd, dependency output and -c/-o removed) to <n>.flags.
 * `time` prints seconds per compile; each side sums them.
 */
const PREPARE = [
  'set -euo pipefail',
  'n=0',
  'src=$1; shift',
  'for f in "$@"; do',
  '  n=$((n+1)); d=$(dirname "$f"); b=$(basename "$f" .c)',
  '  cmd=$(sed -n "s/^cmd_[^ ]* := //p" "$d/.$b.o.cmd" | head -1)',
  "  cmd=$(sed -E 's/ -Wp,-MMD,[^ ]+//; s/ -c -o [^ ]+ [^ ]+ *$//' <<<\"$cmd\")",
  '  eval "$cmd -E -o /work/$n.i $src/$f"',
  "  printf '%s\\n' \"${cmd#* }\" > /work/$n.flags",
  'done',
].join('\n');
const COMPILE = (cc: string) =>
  `cd "$1"; TIMEFORMAT=%R; for f in *.i; do time eval "${cc} $(cat "$(basename "$f" .i).flags") -c -o /tmp/m5dev-bench.o $f"; done 2>&1`;
const sumSeconds = (out: string) => out.split('\n').filter((l) => /^\d+\.\d+$/.test(l.trim())).reduce((a, l) => a + Number(l) * 1000, 0);

async function compileInContainerAndGuest(kernel: string): Promise<void> {
  // The kernel cache as every tool container mounts it (kbuild's command lines name those paths).
  const rec = JSON.parse(readFileSync(join(HOME, 'kernels', `${kernel}.latest.json`), 'utf8')) as { build: string; src: string; toolchainTag: string };
  const work = mkdtempSync(join(tmpdir(), 'm5dev-bench-cc-'));
  try {
    const tag = rec.toolchainTag;
    docker(['run', '--rm', '-l', 'dev.m5dev.bench=true', '-v', `${join(HOME, 'kernels')}:/kernels:ro`, '-v', `${work}:/work`, '-w', `/kernels/${rec.build}`, tag, 'bash', '-c', PREPARE, 'prepare', `/kernels/${rec.src}`, ...COMPILE_SAMPLE]);
    const container = await sample(RUNS, async () => sumSeconds(docker(['run', '--rm', '-l', 'dev.m5dev.bench=true', '-v', `${work}:/work:ro`, tag, 'bash', '-c', COMPILE('aarch64-linux-gnu-gcc'), 'compile', '/work'])));
    // The guest: gcc 12 in an arm64 Debian root (scripts/guest-cc-rootfs.sh), used through chroot.
    const cc = spawnSync('bash', [join(ROOT, 'scripts', 'guest-cc-rootfs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (cc.status !== 0) throw new Error('scripts/guest-cc-rootfs.sh failed');
    const root = '/opt/m5dev-cc';
    await must(['exec', '--name', NAME, '--', `sudo mkdir -p ${root} && sudo tar -x -C ${root}`], {}, cc.stdout.trim());
    const files = join(work, 'files.tar');
    spawnSync('tar', ['-c', '-f', files, '-C', work, ...readdirSync(work).filter((f) => /\.(i|flags)$/.test(f))]);
    await must(['exec', '--name', NAME, '--', `sudo mkdir -p ${root}/work && sudo tar -x -C ${root}/work`], {}, files);
    // ssh joins the remote words with spaces: hand it one quoted command line.
    const quoted = `'${COMPILE('gcc-12').replace(/'/g, `'\\''`)}'`;
    const guestRun = await must(['exec', '--name', NAME, '--', `sudo chroot ${root} bash -c ${quoted} compile /work`]);
    const guest = sumSeconds(guestRun.stdout);
    if (guest === 0 || container === 0) throw new Error(`no compile times: ${guestRun.stdout.slice(-500)}`);
    record('kernel compile', `${COMPILE_SAMPLE.length} kernel files (gcc 12 -O2) in the guest under TCG (1 run)`, guest, { label: 'toolchain container, cross gcc 12', ms: container });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export const kernelCompile: BenchGroup = {
  id: 'E',
  title: "compiling kernel files: the toolchain container's cross gcc 12 against gcc 12 inside the guest (TCG), on the same preprocessed files with the kernel build's own flags",
  needs: ['kernel'],
  guest: 'bench',
  async run(ctx: BenchCtx) {
    await must(['up', '--name', NAME, '--ssh-port', String(PORT)]);
    await compileInContainerAndGuest(ctx.kernel!);
  },
};
