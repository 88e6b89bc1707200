/** up's first decision (vm/reconcile.ts), rule by rule: attach, resume, boot or refuse, and with which config. */
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type VmConfig } from '../../src/config.js';
import type { InstanceState } from '../../src/vm/instance.js';
import { reconcile, suspendedSettings, type Asked, type Observed } from '../../src/vm/reconcile.js';

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
    { case: 'a running instance asked for checkpoints it was not launched with is refused', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsCheckpoints: true }, ['m5opsCheckpoints']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/another m5ops device/) },
    { case: 'a running instance with checkpoints asked for them attaches', o: observed({ state: { ...state, m5ops: { addr: 0x10010000, exit: 'continue', checkpoints: true } }, live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsCheckpoints: true }, ['m5opsCheckpoints']), want: 'attach' },
    { case: 'a running instance asked for another m5ops base is refused', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsAddr: 0x10020000 }, ['m5opsAddr']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toMatch(/another m5ops device/) },
    { case: 'a suspended instance resumes as it was saved, with its kernel', o: observed({ suspended: true }), a: asked({ cpus: 2, shares: [] }), want: 'resume', check: (p) => expect(p).toMatchObject({ kernelVersion: '6.6.33', config: { cpus: 4, memoryMiB: 4096, shares: state.shares, ramFile: true } }) },
    { case: 'an explicit flag wins over the saved machine (the launch then refuses a mismatch)', o: observed({ suspended: true }), a: asked({ cpus: 3 }, ['cpus']), want: 'resume', check: (p) => expect(p).toMatchObject({ config: { cpus: 3, memoryMiB: 4096 } }) },
    { case: '--kernel names the kernel of a resume', o: observed({ suspended: true, kernelRelease: '6.6.33' }), a: asked(), want: 'resume', check: (p) => expect(p.kind === 'resume' && p.kernelVersion).toBeUndefined() },
    { case: '--no-resume boots a suspended instance with what was asked', o: observed({ suspended: true }), a: asked({ cpus: 2 }, [], true), want: 'boot', check: (p) => expect(p).toMatchObject({ config: { cpus: 2 } }) },
    { case: 'a refusal says how to stop the instance, by name unless it is the default', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ shares: [] }, ['shares']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.hint).toBe('Stop it first: `m5dev down --name dev`, then run up again with the shares you want (a suspended guest resumes with the shares it had).') },
    { case: 'the default instance is stopped with a plain down', o: observed({ name: 'default', live: true, kernelRelease: undefined }), a: asked(), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && [p.error.message, p.error.hint]).toEqual(['instance default is running kernel 6.6.33', 'Stop it first: `m5dev down`, then run up again.']) },
    { case: 'an instance on its image\'s own kernel asked for a built one is refused, naming what it runs', o: observed({ state: { ...state, kernel: undefined }, live: true, kernelRelease: '6.6.33' }), a: asked(), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.message).toBe("instance dev is running the image's own kernel") },
    { case: 'the disk kind refusal says to destroy first', o: observed(), a: asked({ disk: 'overlay' }, ['disk']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && p.error.hint).toBe('Run `m5dev destroy --name dev` first to change the disk kind.') },
    { case: 'a running instance with no shares recorded attaches with none', o: observed({ state: { ...state, shares: undefined }, live: true, kernelRelease: '6.6.33' }), a: asked(), want: 'attach', check: (p) => expect(p.kind === 'attach' && p.config.shares).toEqual([]) },
    { case: 'a running instance asked for the m5ops it has attaches (each setting the same)', o: observed({ state: { ...state, m5ops: { addr: 0x10020000, exit: 'poweroff', stats: 'insns', params: [{ key: 'a', value: '1' }] } }, live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsAddr: 0x10020000, m5opsExit: 'poweroff', m5opsStats: 'insns', m5opsParams: [{ key: 'a', value: '1' }] }, ['m5opsAddr', 'm5opsExit', 'm5opsStats', 'm5opsParams']), want: 'attach' },
    { case: 'a running instance asked for another exit behaviour is refused, saying how to restart it', o: observed({ live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsExit: 'poweroff' }, ['m5opsExit']), want: 'refuse', check: (p) => expect(p.kind === 'refuse' && [p.error.message, p.error.hint]).toEqual(['instance dev is running with another m5ops device', 'Stop it first: `m5dev down --name dev`, then run up again with --m5ops-addr/--m5ops-exit/--m5ops-stats/--m5ops-param/--m5ops-checkpoints (a readfile can change on a running guest: `m5dev m5ops readfile FILE`).']) },
    { case: 'm5ops settings not given do not count as asked for (the defaults differ from the running ones)', o: observed({ state: { ...state, m5ops: { addr: 0x10020000, exit: 'poweroff', stats: 'insns', params: [{ key: 'a', value: '1' }] } }, live: true, kernelRelease: '6.6.33' }), a: asked(), want: 'attach' },
    { case: 'a running instance with no m5ops recorded, asked for the default base, is refused (it has none)', o: observed({ state: { ...state, m5ops: undefined }, live: true, kernelRelease: '6.6.33' }), a: asked({ m5opsAddr: 0x10010000 }, ['m5opsAddr']), want: 'refuse' },
    { case: 'a suspended instance without a state file is a fresh boot', o: observed({ state: undefined, suspended: true, disks: new Set() }), a: asked(), want: 'boot', check: (p) => expect(p).toMatchObject({ fresh: true }) },
  ];
  it.each(rows)('$case', ({ o, a, want, check }) => {
    const plan = reconcile(o, a);
    expect(plan.kind).toBe(want);
    check?.(plan);
  });
});

describe('suspendedSettings: every setting of the saved machine, unless its flag was given', () => {
  const saved: InstanceState = { ...state, accel: 'kvm', tcgCacheMiB: 512, m5ops: { addr: 0x10020000, exit: 'poweroff', stats: 'insns', params: [{ key: 'a', value: '1' }], checkpoints: true } };
  const all = { cpus: 4, memoryMiB: 4096, cpu: 'max', accel: 'kvm', ramFile: true, tcgCacheMiB: 512, shares: state.shares, m5opsAddr: 0x10020000, m5opsExit: 'poweroff', m5opsStats: 'insns', m5opsParams: [{ key: 'a', value: '1' }], m5opsCheckpoints: true };
  it('keeps each of them', () => {
    expect(suspendedSettings(saved, new Set())).toEqual(all);
  });
  it.each(Object.keys(all) as (keyof VmConfig)[])('leaves %s to its flag', (key) => {
    const kept = suspendedSettings(saved, new Set([key]));
    expect(Object.keys(kept).sort()).toEqual(Object.keys(all).filter((k) => k !== key).sort());
  });
  it('a machine saved without m5ops, a TCG cache or a known accelerator keeps only what it had; stats default to the clock, params to none', () => {
    expect(suspendedSettings({ ...state, m5ops: undefined, tcgCacheMiB: undefined, accel: 'auto' }, new Set())).toEqual({ cpus: 4, memoryMiB: 4096, cpu: 'max', ramFile: true, shares: state.shares });
    expect(suspendedSettings({ ...state, m5ops: { addr: 0x10010000, exit: 'continue' } }, new Set())).toMatchObject({ m5opsStats: 'clock', m5opsParams: [], m5opsCheckpoints: false });
    expect(suspendedSettings({ ...state, accel: 'tcg' }, new Set())).toMatchObject({ accel: 'tcg' });
  });
});
