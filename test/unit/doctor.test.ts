import { describe, expect, it } from 'vitest';
import { MIN_FREE_GIB, diskCheck, filesCheck, kvmCheck, minFreeGib, platformCheck, sshCheck } from '../../src/engine/doctor.js';
import { chooseMachine } from '../../src/vm/machine.js';

describe('doctor checks (pure)', () => {
  it('accepts amd64 and arm64 Linux engines only, saying what to do otherwise', () => {
    expect(platformCheck({ os: 'linux', arch: 'x86_64' }).status).toBe('ok');
    expect(platformCheck({ os: 'linux', arch: 'aarch64' }).status).toBe('ok');
    const win = platformCheck({ os: 'windows', arch: 'x86_64' });
    expect(win.status).toBe('fail');
    expect(win.hint).toMatch(/WSL2/);
    expect(platformCheck({ os: 'linux', arch: 's390x' }).status).toBe('fail');
  });

  it('fails below the free space an instance needs', () => {
    expect(diskCheck('/h', MIN_FREE_GIB * 2 ** 30).status).toBe('ok');
    const low = diskCheck('/h', 2 ** 30);
    expect(low.status).toBe('fail');
    expect(low.detail).toBe('1.0 GiB free in /h');
    expect(low.hint).toMatch(/M5DEV_HOME/);
  });

  it('KVM matters only for an arm64 engine, and then decides the machine', () => {
    expect(kvmCheck('x86_64', undefined)).toMatchObject({ status: 'ok', detail: expect.stringMatching(/TCG/) });
    expect(kvmCheck('aarch64', true).status).toBe('ok');
    expect(kvmCheck('aarch64', false)).toMatchObject({ status: 'warn', hint: expect.stringMatching(/Docker Desktop/) });
    // The same facts choose QEMU's accelerator: the seed's KVM line on arm64 with KVM, TCG otherwise.
    expect(chooseMachine({ requested: 'auto', hostArch: 'aarch64', kvmUsable: true })).toEqual({ accel: 'kvm', cpu: 'host', machine: 'virt,gic-version=3' });
    expect(chooseMachine({ requested: 'auto', hostArch: 'aarch64', kvmUsable: false }).accel).toBe('tcg');
    expect(() => chooseMachine({ requested: 'kvm', hostArch: 'aarch64', kvmUsable: false })).toThrow(/\/dev\/kvm/);
  });

  it('reports where instances live and the ssh fallback', () => {
    expect(filesCheck('shared').detail).toMatch(/127\.0\.0\.1/);
    expect(filesCheck('volumes').detail).toMatch(/volumes on the engine/);
    expect(filesCheck(undefined).status).toBe('warn');
    expect(sshCheck(undefined)).toMatchObject({ status: 'warn', hint: expect.stringMatching(/VS Code/) });
    expect(sshCheck('/usr/bin/ssh').status).toBe('ok');
  });
});

describe('minFreeGib', () => {
  it('is MIN_FREE_GIB unless M5DEV_MIN_FREE_GIB gives a number ≥ 0', () => {
    expect(minFreeGib({})).toBe(MIN_FREE_GIB);
    expect(minFreeGib({ M5DEV_MIN_FREE_GIB: '0.5' })).toBe(0.5);
    expect(minFreeGib({ M5DEV_MIN_FREE_GIB: 'lots' })).toBe(MIN_FREE_GIB);
    expect(minFreeGib({ M5DEV_MIN_FREE_GIB: '-1' })).toBe(MIN_FREE_GIB);
    expect(diskCheck('/h', 2 ** 30, 0.5).status).toBe('ok');
  });
});
