/**
 * `m5dev doctor`: what this machine and its Docker engine can do for m5dev, one check at a time,
 * each failing check with what to do. `up` runs the blocking ones up front with the same words.
 */
import { DockerUnavailableError, ExitCode, M5devError } from '../errors.js';
import { LocalDirStorage, type Storage } from './storage.js';
import { blobStorage } from './instance-storage.js';
import { layout } from '../paths.js';
import { MESSAGES } from '../messages.js';
import type { Engine, EngineInfo, FilesMode } from './engine.js';
import { session } from '../session.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
}

/** Below this, a fresh instance (raw disk of the cloud image, its cache, a suspend's RAM) will not fit. */
export const MIN_FREE_GIB = 4;

/** Pure: the engine platforms m5dev's toolchain image is built for. */
export function platformCheck(info: Pick<EngineInfo, 'os' | 'arch'>): Check {
  const ok = info.os === 'linux' && (info.arch === 'x86_64' || info.arch === 'aarch64');
  return ok
    ? { name: 'engine platform', status: 'ok', detail: `${info.os}/${info.arch}` }
    : {
        name: 'engine platform',
        status: 'fail',
        detail: `${info.os}/${info.arch}`,
        hint: 'The toolchain image is built for linux/amd64 and linux/arm64 engines: use such an engine (on Windows, Docker Desktop with the WSL2 backend).',
      };
}

/** The bar for free space: MIN_FREE_GIB, or M5DEV_MIN_FREE_GIB for a guest known to be smaller. */
export function minFreeGib(env: Readonly<NodeJS.ProcessEnv> = session().env): number {
  const v = Number(env.M5DEV_MIN_FREE_GIB);
  return env.M5DEV_MIN_FREE_GIB !== undefined && Number.isFinite(v) && v >= 0 ? v : MIN_FREE_GIB;
}

/** Pure: free space where m5dev keeps its files. */
export function diskCheck(where: string, freeBytes: number, minGib = MIN_FREE_GIB): Check {
  const gib = freeBytes / 2 ** 30;
  const detail = `${gib.toFixed(1)} GiB free in ${where}`;
  return gib >= minGib
    ? { name: 'free disk', status: 'ok', detail }
    : {
        name: 'free disk',
        status: 'fail',
        detail,
        hint: `An instance needs at least ${minGib} GiB: free space there, or point M5DEV_HOME at a larger disk (a smaller guest can lower the bar with M5DEV_MIN_FREE_GIB).`,
      };
}

/** Pure: KVM is only of use to an arm64 guest on an arm64 engine. */
export function kvmCheck(arch: string, usable: boolean | undefined): Check {
  if (arch !== 'aarch64') return { name: 'KVM', status: 'ok', detail: `not applicable on an ${arch} engine: the arm64 guest runs under TCG` };
  return usable
    ? { name: 'KVM', status: 'ok', detail: '/dev/kvm can be given to a container: the guest runs with -cpu host, gic-version=3' }
    : { name: 'KVM', status: 'warn', detail: 'no usable /dev/kvm on the engine: the guest runs under TCG (slower)', hint: 'On a Linux arm64 host, load kvm and let the engine use /dev/kvm; Docker Desktop on a Mac has none.' };
}

export function filesCheck(mode: FilesMode | undefined): Check {
  if (!mode) return { name: 'files', status: 'warn', detail: 'not probed: no base image on the engine yet' };
  return mode === 'shared'
    ? { name: 'files', status: 'ok', detail: 'the engine sees this machine\'s files: instances live in $M5DEV_HOME, SSH on 127.0.0.1' }
    : { name: 'files', status: 'ok', detail: 'the engine cannot see this machine\'s files: instances live in volumes on the engine, SSH through the Engine API' };
}

export function sshCheck(hostSsh: string | undefined): Check {
  return hostSsh
    ? { name: 'ssh client', status: 'ok', detail: hostSsh }
    : { name: 'ssh client', status: 'warn', detail: 'no ssh on PATH: m5dev uses the toolchain container\'s client', hint: 'Install OpenSSH for `m5dev ssh-config` and VS Code Remote-SSH.' };
}

export async function storageDiskCheck(st: Storage): Promise<Check> {
  const { bytes, where } = await st.free();
  return diskCheck(where, bytes, minFreeGib());
}

/** A failed check as the error `up` stops with (the same words as doctor's). */
export function checkError(c: Check): M5devError {
  return new M5devError(`${c.name}: ${c.detail}`, ExitCode.doctorFailed, c.hint);
}

export interface DoctorInputs {
  connect: () => Promise<Engine>;
  home: string;
  baseImage: string;
  toolchainTag: (engine: Engine) => Promise<string | undefined>;
  hostSsh: string | undefined;
}

/** All checks; a failure to reach the engine ends the list there (nothing else can be known). */
export async function doctor(i: DoctorInputs): Promise<{ engine?: EngineInfo; checks: Check[] }> {
  const checks: Check[] = [];
  let engine: Engine;
  try {
    engine = await i.connect();
  } catch (e) {
    const err = e instanceof M5devError ? e : new DockerUnavailableError((e as Error).message);
    checks.push({ name: 'engine', status: 'fail', detail: err.message, hint: err.hint });
    checks.push(sshCheck(i.hostSsh), await storageDiskCheck(new LocalDirStorage(i.home)));
    return { checks };
  }
  const info = await engine.info();
  checks.push({ name: 'engine', status: 'ok', detail: `${info.product} ${info.version} at ${info.host} (${info.transport}, from ${info.source})${info.rootless ? ', rootless' : ''}` });
  checks.push(platformCheck(info));
  const base = (await engine.images.id(i.baseImage)) !== undefined;
  checks.push(
    base
      ? { name: 'base image', status: 'ok', detail: i.baseImage }
      : { name: 'base image', status: 'fail', detail: `${i.baseImage} is not on the engine (m5dev pulls it when a registry serves it)`, hint: MESSAGES.bootstrapBaseHint(i.baseImage) },
  );
  const tag = base ? await i.toolchainTag(engine) : undefined;
  if (tag) {
    const built = (await engine.images.id(tag)) !== undefined;
    checks.push(built ? { name: 'toolchain image', status: 'ok', detail: tag } : { name: 'toolchain image', status: 'warn', detail: `${tag} not built yet`, hint: 'The first `m5dev up` (or `m5dev image build`) builds it, a few minutes; a toolchain given pinned by digest (--toolchain REF@sha256:…) is pulled instead.' });
  }
  const mode = base ? await engine.filesMode(i.home, i.baseImage) : undefined;
  checks.push(filesCheck(mode));
  checks.push(kvmCheck(info.arch, info.arch === 'aarch64' && base ? await engine.kvmUsable(i.baseImage) : undefined));
  checks.push(sshCheck(i.hostSsh), await storageDiskCheck(new LocalDirStorage(i.home)));
  if (mode === 'volumes') checks.push(await storageDiskCheck(blobStorage(engine, mode, layout(i.home), () => i.baseImage)));
  return { engine: info, checks };
}
