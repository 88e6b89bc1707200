/** A. Time to a shell: `m5dev up` against the manual recipe's QEMU command; UEFI vs direct boot; cortex-a57 vs max. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HOME, NAME, PORT, RUNS, docker, must, record, sample, upToShell } from '../lib.js';
import type { BenchCtx, BenchGroup } from '../group.js';

/** The manual recipe's QEMU command (-smp 8, 2 GiB, UEFI flash, hostfwd) in the same image, on the same disk. */
async function manualToShell(): Promise<number> {
  await must(['down', '--name', NAME]);
  const inst = join(HOME, 'instances', NAME);
  const tag = JSON.parse((await must(['--json', 'image', 'build'])).stdout).tag as string;
  const disk = existsSync(join(inst, 'disk.qcow2')) ? 'disk.qcow2' : 'disk.raw';
  const qemu = [
    'qemu-system-aarch64', '-m', '2048', '-cpu', 'cortex-a57', '-M', 'virt', '-smp', '8', '-nographic',
    '-drive', 'if=pflash,format=raw,file=/instance/flash0.img,readonly=on', '-drive', 'if=pflash,format=raw,file=/instance/flash1.img',
    '-drive', `if=none,file=/instance/${disk},id=hd0`, '-device', 'virtio-blk-device,drive=hd0',
    '-drive', 'if=none,id=cloud,file=/instance/seed.img', '-device', 'virtio-blk-device,drive=cloud',
    '-netdev', 'user,id=user0,hostfwd=tcp::22022-:22', '-device', 'virtio-net-device,netdev=user0',
  ];
  const name = `m5dev-bench-manual-${process.pid}`;
  const t0 = performance.now();
  docker(['run', '-d', '--rm', '--name', name, '-l', 'dev.m5dev.bench=true', '-p', `127.0.0.1:${PORT}:22022`, '-v', `${inst}:/instance`, '-v', `${join(HOME, 'blobs', 'sha256')}:/cache:ro`, tag, ...qemu]);
  try {
    const ssh = ['-p', String(PORT), '-i', join(inst, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(inst, 'known_hosts')}`, '-o', `HostKeyAlias=m5dev-${NAME}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'ubuntu@127.0.0.1', 'true'];
    for (;;) {
      if (spawnSync('ssh', ssh, { stdio: 'ignore', timeout: 30_000 }).status === 0) return performance.now() - t0;
      if (performance.now() - t0 > 900_000) throw new Error('the manual command did not reach SSH in 15 min');
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  }
}

export const timeToShell: BenchGroup = {
  id: 'A',
  title: "time to a shell: m5dev up (artefacts cached) until the first SSH command succeeds, against the manual recipe's QEMU command in the same image on the same disk; UEFI + GRUB vs direct boot; -cpu cortex-a57 vs max,pauth-impdef=on",
  needs: [],
  guest: 'bench',
  async run(ctx: BenchCtx) {
    const manual = await sample(RUNS, manualToShell);
    const uefi = await sample(RUNS, () => upToShell([]));
    ctx.figures.uefiBoot = uefi;
    record('time to a shell', 'm5dev up → SSH (UEFI + GRUB, cortex-a57, 2 vCPU)', uefi, { label: 'manual recipe command (-smp 8)', ms: manual });
    if (ctx.kernel) {
      const direct = await sample(RUNS, () => upToShell(['--kernel', ctx.kernel!]));
      record('time to a shell', `m5dev up --kernel ${ctx.kernel} → SSH (direct boot)`, direct, { label: 'UEFI + GRUB', ms: uefi });
    }
    const max = await sample(1, () => upToShell(['--cpu', 'max,pauth-impdef=on']));
    record('time to a shell', 'm5dev up --cpu max,pauth-impdef=on → SSH (1 run)', max, { label: 'cortex-a57', ms: uefi });
  },
};
