/** Where m5dev keeps its cache and instances: $M5DEV_HOME, else $XDG_CACHE_HOME/m5dev, else ~/.cache/m5dev. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { session } from './session.js';

export function m5devHome(env: Readonly<NodeJS.ProcessEnv> = session().env): string {
  if (env.M5DEV_HOME) return resolve(env.M5DEV_HOME);
  const xdg = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(xdg, 'm5dev');
}

export interface HomeLayout {
  root: string;
  /** Content-addressed downloads: blobs/sha256/<hex>. */
  blobs: string;
  /** Staging for downloads in flight (same filesystem, so rename is atomic). */
  tmp: string;
  instances: string;
  kernels: string;
}

export function layout(root = m5devHome()): HomeLayout {
  return {
    root,
    blobs: join(root, 'blobs', 'sha256'),
    tmp: join(root, 'tmp'),
    instances: join(root, 'instances'),
    kernels: join(root, 'kernels'),
  };
}

export function instanceDir(home: HomeLayout, name: string): string {
  return join(home.instances, name);
}

/** Instance names become container names and directories: keep them simple. */
export const INSTANCE_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,40}$/;
