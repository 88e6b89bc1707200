/** User-facing text in one place. */
import { join } from 'node:path';
import { PACKAGE_ROOT } from './assets.js';
export const MESSAGES = {
  bootstrapBaseHint: (ref: string) =>
    `Without a registry, give the engine ${ref} another way: \`docker load -i <file saved with docker save>\`, or build it on a Debian host with \`bash ${join(PACKAGE_ROOT, 'scripts', 'bootstrap-base-image.sh')} ${ref}\` (needs mmdebstrap); or pass --base-image.`,
  imageCached: (tag: string) => `cached: ${tag} already built from this context`,
  imageBuilt: (tag: string) => `built ${tag}`,
  lockDrift: (drift: { name: string; locked: string; served: string }[]) =>
    `${drift.length} locked version${drift.length === 1 ? '' : 's'} no longer served, or no longer installable beside this base; installed the served one${drift.length === 1 ? '' : 's'} instead: ${drift.map((d) => `${d.name} ${d.locked} → ${d.served}`).join(', ')} (strict: --strict-lock or M5DEV_STRICT_LOCK=1; see docs/pinning.md)`,
  interrupted: 'Interrupted: cleaning up…',
  downloadCached: (sha: string) => `cached: sha256 ${sha.slice(0, 12)}… already in the store`,
  diskExists: 'cached: the instance disk already exists (destroy to reset)',
  flashExists: 'cached: flash0/flash1 already exist',
  keysExist: 'cached: instance keys already exist',
  seedExists: 'cached: cloud-init seed already built for this config',
  suspendedOther: (name: string, reason: string) => `instance ${name} is suspended, but ${reason}`,
  suspendedOtherHint:
    'Run `m5dev up` without new settings to resume it, or `m5dev up --no-resume` to discard the saved memory and boot afresh (the disk was synced when it suspended).',
  alreadyRunning: (name: string) => `instance ${name} is already running`,
};
