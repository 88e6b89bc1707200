/** up's first decision (vm/reconcile.ts), rule by rule: attach, resume, boot or refuse, and with which config. */
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type VmConfig } from '../../src/config.js';
import type { InstanceState } from '../../src/vm/instance.js';
import { reconcile, type Asked, type Observed } from '../../src/vm/reconcile.js';

const state: InstanceState = {
  name: 'dev', sshPort: 5555, imageSha256: 'a'.repeat(64), imageUrl: DEFAULTS.imageUrl, disk: 'raw', cpus: 4, memoryMiB: 4096,
  accel: 'tcg', cpu: 'max', ramFile: true, kernel: '6.6.33', kernelVersion: '6.6.33', shares: [{ host: '/h/m5', guest: '/home/ubuntu/m5', readOnly: false }],
  m5ops: { addr: 0x10010000, exit: 'continue' }, createdAt: 'then',
};
const observed = (o: Partial<Observed> = {}): Observed => ({ name: 'dev', state, live: false, suspended: false, kernelRelease: undefined, disks: new Set(['raw']), ...o });
const asked = (config: Partial<VmConfig> = {}, explicit: (keyof VmConfig)[] = [], noResume = false): Asked => ({ config: { ...DEFAULTS, ...config }, explicit: new Set(explicit), noResume });

describe('reconcile', () => {
  const rows: { case: string; o: Observed; a: Asked; want: string; check?: (plan: ReturnType<typeof reconcile>) => void }[] = [
    { case: 'a new instance boots with what was asked', o: observed({ state: undefined, disks: new Set() }), a: asked({ cpus: 3 }, ['cpus']), want: 'boot', check: (p) => expect(p).toMatchObject({ fresh: true, config: { cpus: 3 } }) },
    { case: 'a stopped instance boots, keeping its disk kind', o: observed(), a: asked({ disk: 'overlay' }), want: 'boot', check: (p) => expect(p).toMatchObject({ fresh: false, config: { disk: 'raw' } }) },
    { case: 'a stopped instance cannot change its disk kind while its disk exists', o: observed(), a: asked({ disk: 'overlay' }, ['disk']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/was created with --disk raw/) },
    { case: 'a disk kind may change once the old disk is gone', o: observed({ disks: new Set() }), a: asked({ disk: 'overlay' }, ['disk']), want: 'boot', check: (p) => expect(p).toMatchObject({ config: { disk: 'overlay' } }) },
    { case: 'a running instance cannot change its disk kind either', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ disk: 'overlay' }, ['disk']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/was created with --disk raw/) },
    { case: 'a running instance is attached to, with the shares it runs with', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked(), want: 'attach', check: (p) => expect(p.kind === 'attach' && p.config.shares).toEqual(state.shares) },
    { case: 'a running instance with another kernel is refused', o: observed({ live: true, kernelRelease: undefined }), a: asked(), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toBe('instance dev is running kernel 6.6.33') },
    { case: 'a running instance asked for other shares is refused', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ shares: [] }, ['shares']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/other shares/) },
    { case: 'the same shares, given again, attach', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ shares: state.shares! }, ['shares']), want: 'attach' },
    { case: 'a running instance asked to count instructions is refused (its plugin was started without)', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsStats: 'insns' }, ['m5opsStats']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/another m5ops device/) },
    { case: 'a running instance asked for other init_param values is refused', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsParams: [{ key: 'size', value: '4' }] }, ['m5opsParams']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/another m5ops device/) },
    { case: 'a running instance asked for the stats it has attaches', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsStats: 'clock' }, ['m5opsStats']), want: 'attach' },
    { case: 'a running instance asked for another m5ops base is refused', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsAddr: 0x10020000 }, ['m5opsAddr']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/another m5ops device/) },
    { case: 'a suspended instance resumes as it was saved, with its kernel', o: observed({ suspended: true }), a: asked({ cpus: 2, shares: [] }), want: 'resume', check: (p) => expect(p).toMatchObject({ kernelVersion: '6.6.33', config: { cpus: 4, memoryMiB: 4096, shares: state.shares, ramFile: true } }) },
    { case: 'an explicit flag wins over the saved machine (the launch then refuses a mismatch)', o: observed({ suspended: true }), a: asked({ cpus: 3 }, ['cpus']), want: 'resume', check: (p) => expect(p).toMatchObject({ config: { cpus: 3, memoryMiB: 4096 } }) },
    { case: '--kernel names the kernel of a resume', o: observed({ suspended: true, kernelRelease: '6.6.33' }), a: asked(), want: 'resume', check: (p) => expect(p.kind === 'resume' && p.kernelVersion).toBeUndefined() },
    { case: '--no-resume boots a suspended instance with what was asked', o: observed({ suspended: true }), a: asked({ cpus: 2 }, [], true), want: 'boot', check: (p) => expect(p).toMatchObject({ config: { cpus: 2 } }) },
  ];
  it.each(rows)('$case', ({ o, a, want, check }) => {
    const plan = reconcile(o, a);
    expect(plan.kind).toBe(want);
    check?.(plan);
  });
});
