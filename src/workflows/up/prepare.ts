/**
 * `up`'s prepare phase: the per-instance artefacts (image digest and download, SSH keys, cloud-init
 * seed, UEFI flash, the image on the engine, the instance disk, the m5ops readfile), each skipped
 * with a reason when it is there already.
 */
import type { ListrTask } from 'listr2';
import { randomUUID } from 'node:crypto';
import { DownloadError, UsageError } from '../../errors.js';
import { MESSAGES } from '../../messages.js';
import { fetchText, fetchVerified } from '../../download/downloader.js';
import { parseSha256Sums, sumsLocation, unverifiableSums } from '../../download/sha256sums.js';
import { writeState, STORED } from '../../vm/instance.js';
import { diskName, makeDisk, makeFlash, makeKeys, makeSeed, seedContents } from '../../vm/prepare.js';
import { cleanupScope, onCleanup } from '../../cleanup.js';
import { dropSaved } from '../../vm/saved-state.js';
import { progressLine } from '../progress.js';
import { putReadfile } from '../m5ops.js';
import { baseState, toolEnv, upSkipped, type UpCtx } from './context.js';

export function prepareTasks(): ListrTask<UpCtx>[] {
  return [
    {
      title: 'Resolve the image digest',
      skip: upSkipped.digest,
      task: async (ctx, task) => {
        if (ctx.config.imageSha256) {
          ctx.sha256 = ctx.config.imageSha256;
          task.title = `Image digest pinned: ${ctx.sha256.slice(0, 12)}…`;
          return;
        }
        const plain = unverifiableSums(ctx.config.imageUrl);
        if (plain) throw new UsageError(`cannot verify ${ctx.config.imageUrl}: ${plain}`, 'Pin the digest with --image-sha256 (or m5dev.json "imageSha256"), or use an https URL.');
        const { sumsUrl, name } = sumsLocation(ctx.config.imageUrl);
        const sums = parseSha256Sums(await fetchText(sumsUrl));
        const sha = sums.get(name);
        if (!sha) throw new DownloadError(`${sumsUrl} has no entry for ${name}`, 'Pin the digest with --image-sha256 or m5dev.json "imageSha256".');
        ctx.sha256 = sha;
        task.title = `Image digest from SHA256SUMS: ${sha.slice(0, 12)}…`;
      },
    },
    {
      title: 'Download the cloud image',
      skip: (ctx) => {
        if (ctx.state && !ctx.sha256) ctx.sha256 = ctx.state.imageSha256;
        return upSkipped.download(ctx);
      },
      task: async (ctx, task) => {
        const abort = new AbortController();
        let lastLine = '';
        const undo = onCleanup('abort download', () => abort.abort());
        try {
          const res = await fetchVerified({
            url: ctx.config.imageUrl,
            sha256: ctx.sha256!,
            store: ctx.store,
            signal: abort.signal,
            onProgress: (p) => {
              const line = progressLine(p.received, p.total, p.attempt);
              if (line !== lastLine) task.output = lastLine = line;
            },
          });
          task.title = `Downloaded and verified (${res.attempts} attempt${res.attempts === 1 ? '' : 's'}${res.resumed ? ', resumed' : ''})`;
        } finally {
          undo();
        }
      },
    },
    {
      title: 'SSH keys (user and pinned host key)',
      skip: upSkipped.keys,
      task: async (ctx, task) => {
        ctx.keysRemade = ctx.state?.instanceId !== undefined;
        if (ctx.keysRemade) {
          // Recorded before anything else can fail: a later up must not reuse the instance-id or
          // resume a saved guest that knows only the lost keys.
          ctx.notes.push('saved state discarded: the SSH keys were made anew');
          ctx.saved = undefined;
          await dropSaved(ctx.storage!);
          ctx.state = { ...ctx.state!, instanceId: undefined, seedHash: undefined };
          writeState(ctx.files, ctx.state);
        }
        await makeKeys(toolEnv(ctx), ctx.name);
        if (ctx.keysRemade) task.title = 'SSH keys made anew (the old ones were missing): the guest boots afresh to install them';
      },
    },
    {
      title: 'cloud-init seed',
      skip: upSkipped.running,
      task: async (ctx, task) => {
        // A stable instance-id: cloud-init runs its per-instance modules once, not on every boot;
        // a new one when the keys were made anew (the keys step cleared it), so that it installs them.
        const instanceId = ctx.state?.instanceId ?? `m5dev-${ctx.name}-${randomUUID().slice(0, 8)}`;
        const contents = seedContents(ctx.files, ctx.name, instanceId);
        if (ctx.state?.seedHash === contents.hash && ctx.stored?.has(STORED.seed)) {
          task.skip(MESSAGES.seedExists);
          return;
        }
        await makeSeed(toolEnv(ctx), contents);
        ctx.state = { ...(ctx.state ?? baseState(ctx)), instanceId, seedHash: contents.hash };
      },
    },
    { title: 'UEFI flash (QEMU_EFI.fd padded to 64 MiB)', skip: upSkipped.flash, task: (ctx) => makeFlash(toolEnv(ctx)) },
    {
      title: 'Copy the cloud image to the engine',
      skip: upSkipped.copyImage,
      task: async (ctx, task) => {
        const present = await ctx.blobs!.stat([ctx.sha256!]);
        if (present.has(ctx.sha256!)) {
          task.skip('cached on the engine');
          return;
        }
        await ctx.blobs!.importFile(ctx.store.path(ctx.sha256!), ctx.sha256!, ctx.sha256!);
        task.title = `Copied the cloud image to the engine (verified there, sha256 ${ctx.sha256!.slice(0, 12)}…)`;
      },
    },
    {
      title: 'Instance disk',
      skip: upSkipped.disk,
      task: async (ctx, task) => {
        // A disk that did not convert whole (a full disk, Ctrl-C) is never kept.
        await using step = cleanupScope('instance disk');
        step.defer('partial disk', () => ctx.storage!.remove([`${diskName(ctx.config.disk)}.tmp`]));
        await makeDisk(toolEnv(ctx), ctx.config.disk, ctx.sha256!, ctx.config.diskGrow);
        step.keep();
        task.title = ctx.config.disk === 'raw' ? `Instance disk: raw copy, grown ${ctx.config.diskGrow}` : `Instance disk: qcow2 overlay, grown ${ctx.config.diskGrow}`;
      },
    },
    {
      title: "The guest's m5ops readfile",
      skip: (ctx) => (ctx.config.m5opsReadfile ? false : 'no readfile (up --m5ops-readfile FILE)'),
      task: async (ctx, task) => {
        // Copied in each up (what the file holds now); `m5dev m5ops readfile` replaces it on a running guest.
        await putReadfile(ctx.storage!, ctx.config.m5opsReadfile!, ctx.readfileWithin);
        task.title = `m5ops readfile: a copy of ${ctx.config.m5opsReadfile}`;
      },
    },
  ];
}
