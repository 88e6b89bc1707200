/** Prepare the toolchain image: engine reachable, base image present, image built once per context hash. */
import type { Reporter } from './report.js';
import { connectEngine, type Engine, type EngineInfo } from '../engine/engine.js';
import { contextHash, toolchainStageHash } from '../docker/build-context.js';
import { LABELS, baseLabels } from '../docker/labels.js';
import { MESSAGES } from '../messages.js';
import { checkError, platformCheck } from '../engine/doctor.js';
import { DOCKER_CONTEXT } from '../assets.js';
import { toolchainTag } from '../docker/toolchain-tag.js';
import { LOCK_FILE, debianArch, isDriftLine, lockFailure, parseDrift, parseLock, type LockDrift, type ToolchainLock } from '../docker/toolchain-lock.js';
import { ImageBuildError, UsageError } from '../errors.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { session } from '../session.js';

export { TOOLCHAIN_REPO, toolchainTag } from '../docker/toolchain-tag.js';

/** Where m5dev-install-locked records the image's drift from its lock ("NAME LOCKED SERVED" lines). */
const DRIFT_RECORD = '/usr/local/share/m5dev/lock-drift';

/** What toolchain image is wanted: the build context and base, or an image given as it is. */
export interface ToolchainRequest {
  contextDir: string;
  baseImage: string;
  /** A toolchain image to use as it is (`--toolchain REF`, M5DEV_TOOLCHAIN): loaded, pulled by digest, or built elsewhere. */
  given?: string;
  /** `--strict-lock` / M5DEV_STRICT_LOCK=1: a locked version the mirror no longer serves, or that no longer installs, fails the build (its own tag). */
  strict: boolean;
}

/** The engine, connected and checked. */
export interface ConnectedEngine {
  engine: Engine;
  info: EngineInfo;
}

/** The toolchain image on the engine, found or built: every phase after it runs in or beside it. */
export interface Toolchain extends ConnectedEngine {
  request: ToolchainRequest;
  /** The base image as it was built from (a lock-pinned base by its registry digest); absent for a given image. */
  baseImage?: string;
  tag: string;
  imageId: string;
  /** The build context's hash (absent for a given image from before that label). */
  hash?: string;
  /** The toolchain stage's own hash (toolchainStageHash): kernel and module builds are keyed by it. */
  toolsHash?: string;
  /** The tag existed before this run. */
  cached: boolean;
  /** Locked packages this build installed at another version; undefined when it was not built here. */
  drift?: LockDrift[];
}

/**
 * The toolchain as kernel and module cache keys name it: its toolchain stage (the compiler, the lock,
 * the base; not the m5ops plugin built beside it), the same whether it was built here, loaded, or
 * pulled by digest under another name; for an image from before that label, the tag its context
 * hash gives; else the reference it was given by.
 */
export function toolchainIdentity(img: { toolsHash?: string; hash?: string; tag: string }): string {
  if (img.toolsHash) return `m5dev/toolchain-stage:${img.toolsHash.slice(0, 16)}`;
  return img.hash ? toolchainTag(img.hash) : img.tag;
}

export function toolchainRequest(baseImage: string, contextDir = DOCKER_CONTEXT, given = session().toolchain, strict = session().strictLock): ToolchainRequest {
  return { contextDir, baseImage, given, strict };
}

/** The build args of the toolchain image; a strict build is its own image (and tag). */
export function toolchainBuildArgs(req: Pick<ToolchainRequest, 'baseImage' | 'strict'>): Record<string, string> {
  return { BASE_IMAGE: req.baseImage, ...(req.strict ? { M5DEV_STRICT_LOCK: '1' } : {}) };
}

/** Connect to the engine, check its platform, and sweep what a killed m5dev left running there. */
export function connectToEngine(report: Reporter): Promise<ConnectedEngine> {
  return report.step('Connect to the Docker engine', async (s) => {
    const engine = await connectEngine();
    const info = await engine.info();
    const platform = platformCheck(info);
    if (platform.status === 'fail') throw checkError(platform);
    // What an m5dev killed with -9 left running on this engine goes before we touch the files it wrote.
    const orphans = await engine.containers.sweepOrphanTools();
    s.title(`Docker engine: ${info.product} ${info.version}, ${info.os}/${info.arch}${info.rootless ? ', rootless' : ''} at ${info.host} (${info.source})${orphans ? `; removed ${orphans} tool container${orphans === 1 ? '' : 's'} of a killed m5dev` : ''}`);
    return { engine, info };
  });
}

/** The toolchain image: the engine, the base image (pinned by the lock), the image built once per context hash. */
export async function ensureToolchain(report: Reporter, req: ToolchainRequest): Promise<Toolchain> {
  const connected = await connectToEngine(report);
  const { engine } = connected;
  if (req.given) {
    const given = req.given;
    return report.step('Base image', async (s) => {
      const found = await useGivenToolchain(engine, given);
      s.title(`Toolchain image ${given} (given; ${found.imageId.slice(7, 19)})`);
      return { ...connected, request: req, ...found, cached: true };
    });
  }
  const found = await report.step('Base image', async (s) => {
    // A base the lock pins by registry digest is pulled and built by that digest.
    const lock = readContextLock(req.contextDir);
    const arch = debianArch(connected.info.arch);
    if (lock && !lock.packages.has(arch)) {
      const why = lockFailure(`m5dev-lock: no-arch ${arch}`);
      throw new ImageBuildError(why?.message ?? `the toolchain lock has no packages for ${arch}`, '', why?.hint);
    }
    const pinned = lock?.bases.get(arch);
    const baseImage = pinned?.repoDigest && pinned.ref === req.baseImage ? `${pinned.ref.replace(/:[^/:]+$/, '')}@${pinned.repoDigest}` : req.baseImage;
    const baseId = await engine.images.ensureBase(baseImage);
    const args = { ...toolchainBuildArgs({ baseImage, strict: req.strict }), BASE_IMAGE_ID: baseId };
    const hash = contextHash(req.contextDir, args);
    const tag = toolchainTag(hash);
    s.title(`Base image ${baseImage} (${baseId.slice(7, 19)})`);
    return { baseImage, hash, toolsHash: toolchainStageHash(req.contextDir, args), tag, existing: await engine.images.id(tag) };
  });
  const { existing, ...image } = found;
  if (existing) {
    await report.skipped('Build the toolchain image', MESSAGES.imageCached(image.tag));
    return { ...connected, request: req, ...image, imageId: existing, cached: true };
  }
  return report.step('Build the toolchain image', async (s) => {
    const driftLines: string[] = [];
    const id = await engine.images.build({
      contextDir: req.contextDir,
      tag: image.tag,
      buildArgs: toolchainBuildArgs({ baseImage: image.baseImage, strict: req.strict }),
      labels: { ...baseLabels('toolchain'), [LABELS.contextHash]: image.hash, [LABELS.toolsHash]: image.toolsHash },
      explain: lockFailure,
      onLine: (line) => {
        if (isDriftLine(line)) driftLines.push(line);
        s.output(line);
      },
    });
    // A build the engine's layer cache answered replays no output: then the image's own record says it.
    const drift = driftLines.length ? parseDrift(driftLines.join('\n')) : await imageLockDrift(engine, image.tag);
    s.title(`${MESSAGES.imageBuilt(image.tag)}${drift.length ? `; ${MESSAGES.lockDrift(drift)}` : ''}`);
    return { ...connected, request: req, ...image, imageId: id, cached: false, drift };
  });
}

/** The toolchain tag this package would build on an engine (its base image must be there). */
export async function toolchainTagOn(engine: Engine, baseImage: string, contextDir = DOCKER_CONTEXT): Promise<string | undefined> {
  const baseId = await engine.images.id(baseImage);
  return baseId ? toolchainTag(contextHash(contextDir, { ...toolchainBuildArgs({ baseImage, strict: session().strictLock }), BASE_IMAGE_ID: baseId })) : undefined;
}

/** What a toolchain image recorded of its lock's drift (an image built before the record, or given, has none). */
export async function imageLockDrift(engine: Engine, ref: string): Promise<LockDrift[]> {
  return parseDrift(await engine.images.readFile(ref, DRIFT_RECORD));
}

/** The toolchain lock of a build context, if it has one (a custom `--context` may not). */
export function readContextLock(contextDir: string): ToolchainLock | undefined {
  const path = join(contextDir, LOCK_FILE);
  return existsSync(path) ? parseLock(readFileSync(path, 'utf8'), path) : undefined;
}

/**
 * `--toolchain REF`: that image, as it is. A digest-pinned REF missing from the engine is pulled
 * (and verified by the engine against the digest); anything else must be there already.
 */
async function useGivenToolchain(engine: Engine, ref: string): Promise<{ tag: string; imageId: string; hash?: string; toolsHash?: string }> {
  let id = await engine.images.id(ref);
  if (!id && /@sha256:[0-9a-f]{64}$/.test(ref)) id = (await engine.images.pull(ref)).id;
  if (!id) throw new UsageError(`toolchain image ${ref} is not on the engine`, 'Load it with `m5dev image load FILE`, or give it pinned by digest (REF@sha256:…) so it is pulled.');
  const labels = await engine.images.labels(ref);
  return { tag: ref, imageId: id, hash: labels[LABELS.contextHash], toolsHash: labels[LABELS.toolsHash] };
}
