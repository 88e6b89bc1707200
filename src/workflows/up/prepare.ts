/**
 * `up`'s prepare phase: the per-instance artefacts (image digest and download, SSH keys, cloud-init
 * seed, UEFI flash, the image on the engine, the instance disk, the m5ops readfile), each skipped
 * with a reason when it is there already. It ends with the instance's state, and the saved guest
 * that may still resume.
 */
import { randomUUID } from 'node:crypto';
import { DownloadError, UsageError } from '../../errors.js';
import { MESSAGES } from '../../messages.js';
import { fetchText, fetchVerified } from '../../download/downloader.js';
import { parseSha256Sums, sumsLocation, unverifiableSums } from '../../download/sha256sums.js';
import { BlobStore } from '../../download/store.js';
import { instanceRecord, STORED, type InstanceState } from '../../vm/instance.js';
import { diskName, keysExist, makeDisk, makeFlash, makeKeys, makeSeed, seedContents, type ToolEnv } from '../../vm/prepare.js';
import { cleanupScope, onCleanup } from '../../cleanup.js';
import { dropSaved, type SavedRecord } from '../../vm/saved-state.js';
import type { VmConfig } from '../../config.js';
import { progressLine } from '../progress.js';
import { putReadfile } from '../m5ops.js';
import { stepUnless, type Reporter } from '../report.js';
import type { Placement } from '../../vmhost/placement.js';
import type { Found } from './instance.js';

/** What a start launches: the instance's state (its image, instance-id and seed recorded) and the saved guest, if one may resume. */
export interface Prepared {
  found: Found;
  state: InstanceState;
  saved: SavedRecord | undefined;
  /** The saved state is a checkpoint copied in (`run`/`up --from-checkpoint`): it resumes into a launch of this machine. */
  restore?: { portableKey: string };
}

/** The tool containers' view of the instance (vm/prepare.ts). */
export function toolEnv(found: Found): ToolEnv {
  const { toolchain, placement, request, files } = found;
  return {
    runTool: (run) => toolchain.engine.runTool(run),
    image: toolchain.tag,
    home: request.home.root,
    storage: placement.storage,
    blobs: placement.blobs,
    files,
    owner: placement.owner,
  };
}

/** A new instance's state, before its launch records the rest. */
export function baseState(name: string, config: VmConfig, imageSha256: string): InstanceState {
  return {
    name,
    sshPort: config.sshPort,
    imageSha256,
    imageUrl: config.imageUrl,
    disk: config.disk,
    cpus: config.cpus,
    memoryMiB: config.memoryMiB,
    accel: config.accel,
    cpu: config.cpu ?? '',
    createdAt: new Date().toISOString(),
  };
}

export async function prepare(report: Reporter, found: Found, saved: SavedRecord | undefined): Promise<Prepared> {
  const { config, stored, files, placement } = found;
  const name = found.request.name;
  const store = new BlobStore(found.request.home);
  const env = toolEnv(found);
  let state = found.state;
  const sha256 = state ? state.imageSha256 : await resolveDigest(report, config);
  if (state) await report.skipped('Resolve the image digest', `pinned by the instance: sha256 ${state.imageSha256.slice(0, 12)}…`);
  await stepUnless(report, 'Download the cloud image', store.has(sha256) && MESSAGES.downloadCached(sha256), (s) => download(s, config.imageUrl, sha256, store));

  await stepUnless(report, 'SSH keys (user and pinned host key)', keysExist(files) && stored.has(STORED.userKey) && MESSAGES.keysExist, async (s) => {
    if (state?.instanceId !== undefined) {
      // The keys of an instance that had a guest were lost: recorded before anything else can fail:
      // a later up must not reuse the instance-id or resume a saved guest that knows only the lost keys.
      found.notes.push('saved state discarded: the SSH keys were made anew');
      saved = undefined;
      await dropSaved(placement.storage);
      state = instanceRecord.keysRemade(files, state);
      s.title('SSH keys made anew (the old ones were missing): the guest boots afresh to install them');
    }
    await makeKeys(env, name);
  });

  state = await report.step('cloud-init seed', async (s) => {
    // A stable instance-id: cloud-init runs its per-instance modules once, not on every boot; a
    // new one when the keys were made anew (the keys step cleared it), so that it installs them.
    const instanceId = state?.instanceId ?? `m5dev-${name}-${randomUUID().slice(0, 8)}`;
    const contents = seedContents(files, name, instanceId);
    if (state && state.seedHash === contents.hash && stored.has(STORED.seed)) {
      s.skip(MESSAGES.seedExists);
      return state;
    }
    await makeSeed(env, contents);
    return { ...(state ?? baseState(name, config, sha256)), instanceId, seedHash: contents.hash };
  });
  await stepUnless(report, 'UEFI flash (QEMU_EFI.fd padded to 64 MiB)', stored.has(STORED.flash0) && stored.has(STORED.flash1) && MESSAGES.flashExists, () => makeFlash(env));

  const hasDisk = stored.has(diskName(config.disk));
  await blobOnEngine(report, placement, store, sha256, 'the cloud image', hasDisk && MESSAGES.diskExists);
  await stepUnless(report, 'Instance disk', hasDisk && MESSAGES.diskExists, async (s) => {
    // A disk that did not convert whole (a full disk, Ctrl-C) is never kept.
    await using step = cleanupScope('instance disk');
    step.defer('partial disk', () => placement.storage.remove([`${diskName(config.disk)}.tmp`]));
    await makeDisk(env, config.disk, sha256, config.diskGrow);
    step.keep();
    s.title(config.disk === 'raw' ? `Instance disk: raw copy, grown ${config.diskGrow}` : `Instance disk: qcow2 overlay, grown ${config.diskGrow}`);
  });
  await readfileStep(report, found);
  return { found, state, saved, restore: found.request.restore };
}

/** The guest's m5ops readfile, copied in each up (what the file holds now); `m5dev m5ops readfile` replaces it on a running guest. */
export async function readfileStep(report: Reporter, found: Found): Promise<void> {
  const file = found.config.m5opsReadfile;
  if (file === undefined) return report.skipped("The guest's m5ops readfile", 'no readfile (--m5ops-readfile FILE)');
  await report.step("The guest's m5ops readfile", async (s) => {
    await putReadfile(found.placement.storage, file, found.request.readfileWithin);
    s.title(`m5ops readfile: a copy of ${file}`);
  });
}

/** The cloud image's digest: pinned by the config, or read from the SHA256SUMS beside it. */
function resolveDigest(report: Reporter, config: VmConfig): Promise<string> {
  return report.step('Resolve the image digest', async (s) => {
    if (config.imageSha256) {
      s.title(`Image digest pinned: ${config.imageSha256.slice(0, 12)}…`);
      return config.imageSha256;
    }
    const plain = unverifiableSums(config.imageUrl);
    if (plain) throw new UsageError(`cannot verify ${config.imageUrl}: ${plain}`, 'Pin the digest with --image-sha256 (or m5dev.json "imageSha256"), or use an https URL.');
    const { sumsUrl, name } = sumsLocation(config.imageUrl);
    const sha = parseSha256Sums(await fetchText(sumsUrl)).get(name);
    if (!sha) throw new DownloadError(`${sumsUrl} has no entry for ${name}`, 'Pin the digest with --image-sha256 or m5dev.json "imageSha256".');
    s.title(`Image digest from SHA256SUMS: ${sha.slice(0, 12)}…`);
    return sha;
  });
}

async function download(s: { output(line: string): void; title(t: string): void }, url: string, sha256: string, store: BlobStore): Promise<void> {
  const abort = new AbortController();
  let lastLine = '';
  const undo = onCleanup('abort download', () => abort.abort());
  try {
    const res = await fetchVerified({
      url,
      sha256,
      store,
      signal: abort.signal,
      onProgress: (p) => {
        const line = progressLine(p.received, p.total, p.attempt);
        if (line !== lastLine) s.output((lastLine = line));
      },
    });
    s.title(`Downloaded and verified (${res.attempts} attempt${res.attempts === 1 ? '' : 's'}${res.resumed ? ', resumed' : ''})`);
  } finally {
    undo();
  }
}

/**
 * A blob of the client's cache (the cloud image, a job's disk image) on the engine, copied once
 * and verified there; nothing to do when the engine reads the client's cache, or `skip` says why.
 */
export async function blobOnEngine(report: Reporter, placement: Placement, store: BlobStore, sha256: string, what: string, skip: string | false = false): Promise<void> {
  const reads = placement.blobs.clientPath(sha256) !== undefined && "the engine reads the client's blob cache";
  await stepUnless(report, `Copy ${what} to the engine`, skip || reads, async (s) => {
    if ((await placement.blobs.stat([sha256])).has(sha256)) return s.skip('cached on the engine');
    await placement.blobs.importFile(store.path(sha256), sha256, sha256);
    s.title(`Copied ${what} to the engine (verified there, sha256 ${sha256.slice(0, 12)}…)`);
  });
}
