import { describe, expect, it } from 'vitest';
import { chooseMachine } from '../../src/vm/machine.js';
import { qemuArgs, type QemuSpec } from '../../src/vm/qemu-args.js';
import { GUEST_SSH_FORWARD } from '../../src/vm/guest-access.js';

const spec = (over: Partial<QemuSpec> = {}): QemuSpec => ({
  machine: chooseMachine({ requested: 'auto', hostArch: 'x64', kvmUsable: true }),
  cpus: 2,
  memoryMiB: 2048,
  flash0: '/instance/flash0.img',
  flash1: '/instance/flash1.img',
  disk: { path: '/instance/disk.raw', format: 'raw' },
  seed: { path: '/instance/seed.img', format: 'qcow2' },
  guestSshForward: GUEST_SSH_FORWARD,
  consoleLog: '/instance/console.log',
  qmpSocket: '/instance/qmp.sock',
  ...over,
});

const pairs = (args: string[]) => args.slice(1).reduce<string[]>((acc, a, i, all) => (i % 2 === 0 ? [...acc, `${a} ${all[i + 1]}`] : acc), []);

describe('chooseMachine', () => {
  it('uses the seed TCG machine on x86_64 even with /dev/kvm', () => {
    expect(chooseMachine({ requested: 'auto', hostArch: 'x86_64', kvmUsable: true })).toEqual({ accel: 'tcg', cpu: 'cortex-a57', machine: 'virt' });
  });
  it('uses the seed KVM machine on arm64 with /dev/kvm', () => {
    expect(chooseMachine({ requested: 'auto', hostArch: 'aarch64', kvmUsable: true })).toEqual({ accel: 'kvm', cpu: 'host', machine: 'virt,gic-version=3' });
  });
  it('falls back to TCG on arm64 without usable /dev/kvm', () => {
    expect(chooseMachine({ requested: 'auto', hostArch: 'arm64', kvmUsable: false }).accel).toBe('tcg');
  });
  it('refuses --accel kvm where it cannot work', () => {
    expect(() => chooseMachine({ requested: 'kvm', hostArch: 'x86_64', kvmUsable: true })).toThrow(/arm64 host/);
    expect(() => chooseMachine({ requested: 'kvm', hostArch: 'arm64', kvmUsable: false })).toThrow(/dev\/kvm/);
  });
  it('honours --cpu', () => {
    expect(chooseMachine({ requested: 'tcg', hostArch: 'x86_64', kvmUsable: false, cpuOverride: 'max,pauth-impdef=on' }).cpu).toBe('max,pauth-impdef=on');
  });
});

describe('qemuArgs', () => {
  it('builds the seed machine with flash, disks, console and the SSH forward', () => {
    const args = qemuArgs(spec());
    expect(args[0]).toBe('qemu-system-aarch64');
    const p = pairs(args.filter((a) => a !== '-nographic'));
    expect(p).toContain('-M virt');
    expect(p).toContain('-cpu cortex-a57');
    expect(p).toContain('-smp 2');
    expect(p).toContain('-m 2048');
    expect(args.join(' ')).not.toContain('memory-backend');
    expect(p).toContain('-drive if=pflash,format=raw,file=/instance/flash0.img,readonly=on');
    expect(p).toContain('-drive if=pflash,format=raw,file=/instance/flash1.img');
    expect(args.join(' ')).toContain('file=/instance/disk.raw,format=raw,id=hd0');
    expect(args.join(' ')).toContain('file=/instance/seed.img,format=qcow2,id=cidata');
    expect(p).toContain(`-netdev user,id=net0,hostfwd=tcp::${GUEST_SSH_FORWARD}-:22`);
    expect(p).toContain('-serial chardev:console');
    expect(args).not.toContain('-kernel');
  });

  it('builds the KVM variant', () => {
    const args = qemuArgs(spec({ machine: chooseMachine({ requested: 'auto', hostArch: 'arm64', kvmUsable: true }) }));
    expect(args.join(' ')).toContain('-M virt,gic-version=3 -cpu host -accel kvm');
  });

  it('with a RAM file, guest RAM is that file, shared, the size of -m (suspend leaves it out of the stream)', () => {
    const p = pairs(qemuArgs(spec({ ramFile: '/vmram/ram' })).filter((a) => a !== '-nographic'));
    expect(p).toContain('-M virt,memory-backend=ram0');
    expect(p).toContain('-m 2048');
    expect(p).toContain('-object memory-backend-file,id=ram0,size=2048M,mem-path=/vmram/ram,share=on');
  });

  it('adds direct kernel boot', () => {
    const args = qemuArgs(spec({ kernel: { image: '/kernel/Image', append: 'root=LABEL=cloudimg-rootfs console=ttyAMA0' } }));
    const i = args.indexOf('-kernel');
    expect(args[i + 1]).toBe('/kernel/Image');
    expect(args[args.indexOf('-append') + 1]).toBe('root=LABEL=cloudimg-rootfs console=ttyAMA0');
  });

  it('direct boot drops the firmware and puts the disk last, so the kernel probes it first (vda)', () => {
    const direct = qemuArgs(spec({ kernel: { image: '/kernel/Image', append: 'root=/dev/vda1' } }));
    expect(direct.join(' ')).not.toContain('if=pflash');
    const devices = direct.filter((a) => a.startsWith('virtio-blk-device'));
    expect(devices).toEqual(['virtio-blk-device,drive=cidata', 'virtio-blk-device,drive=hd0']);
    const firmware = qemuArgs(spec());
    expect(firmware.filter((a) => a.startsWith('if=pflash'))).toHaveLength(2);
    expect(firmware.filter((a) => a.startsWith('virtio-blk-device'))[0]).toBe('virtio-blk-device,drive=hd0');
  });
});

describe('qemuArgs: memory', () => {
  it('caps the TCG code cache when asked, and leaves KVM alone', () => {
    const tcg = spec({ machine: chooseMachine({ requested: 'tcg', hostArch: 'x86_64', kvmUsable: false }), tcgCacheMiB: 256 });
    expect(pairs(qemuArgs(tcg))).toContain('-accel tcg,thread=multi,tb-size=256');
    expect(pairs(qemuArgs({ ...tcg, tcgCacheMiB: undefined }))).toContain('-accel tcg,thread=multi');
    const kvm = spec({ machine: chooseMachine({ requested: 'kvm', hostArch: 'aarch64', kvmUsable: true }), tcgCacheMiB: 256 });
    expect(pairs(qemuArgs(kvm))).toContain('-accel kvm');
  });
  it('gives every guest a balloon with free page reporting (freed guest pages go back to the host)', () => {
    const args = qemuArgs(spec());
    expect(args[args.indexOf('virtio-balloon-device,free-page-reporting=on') - 1]).toBe('-device');
  });
});

describe('the m5ops device', () => {
  it('QEMU loads the plugin with the base, the instance directory and the exit policy', () => {
    const args = qemuArgs(spec({ m5ops: { plugin: '/usr/local/lib/m5dev/m5ops.so', addr: 0x10010000, dir: '/instance', exit: 'poweroff' } }));
    expect(args[args.indexOf('-plugin') + 1]).toBe('file=/usr/local/lib/m5dev/m5ops.so,base=0x10010000,dir=/instance,exit=poweroff');
    expect(qemuArgs(spec())).not.toContain('-plugin');
    const counting = qemuArgs(spec({ m5ops: { plugin: '/p.so', addr: 0x10010000, dir: '/instance', exit: 'continue', stats: 'insns' } }));
    expect(counting[counting.indexOf('-plugin') + 1]).toBe('file=/p.so,base=0x10010000,dir=/instance,exit=continue,stats=insns');
    const clock = qemuArgs(spec({ m5ops: { plugin: '/p.so', addr: 0x10010000, dir: '/instance', exit: 'continue', stats: 'clock' } }));
    expect(clock[clock.indexOf('-plugin') + 1]).toBe('file=/p.so,base=0x10010000,dir=/instance,exit=continue');
  });
  it("a job's (m5dev run): QEMU powers off at the Nth exit, and boots without a seed", () => {
    const job = qemuArgs(spec({ seed: undefined, m5ops: { plugin: '/p.so', addr: 0x10010000, dir: '/instance', exit: 'poweroff', exits: 2 } }));
    expect(job[job.indexOf('-plugin') + 1]).toBe('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff,exits=2');
    expect(job.join(' ')).not.toContain('cidata');
    expect(job.filter((a) => a.startsWith('if=none,file=/instance/')).length).toBe(1);
    const once = qemuArgs(spec({ m5ops: { plugin: '/p.so', addr: 0x10010000, dir: '/instance', exit: 'poweroff', exits: 1 } }));
    expect(once[once.indexOf('-plugin') + 1]).toBe('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff');
  });
  it("QEMU's plugin options: checkpoints paused for run, each init_param value", () => {
    const args = qemuArgs(spec({ m5ops: { plugin: '/p.so', addr: 0x10010000, dir: '/instance', exit: 'poweroff', exits: 2, checkpoints: true, params: [{ key: 'size', value: '4' }, { key: '', value: '7' }] } }));
    expect(args[args.indexOf('-plugin') + 1]).toBe('file=/p.so,base=0x10010000,dir=/instance,exit=poweroff,exits=2,checkpoint=pause,param=size=4,param==7');
  });
});
