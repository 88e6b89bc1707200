/** Files shipped with the package (docker/, module/, config/), located from the compiled code. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** Package root: dist/assets.js -> .. ; also right when run from src/ by vitest. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOCKER_CONTEXT = join(PACKAGE_ROOT, 'docker');
export const MODULE_DIR = join(PACKAGE_ROOT, 'module');
export const KERNEL_CONFIG_DIR = join(PACKAGE_ROOT, 'config', 'kernel');
/** m5dev.json's JSON Schema, published in the package (src/config-schema.ts writes it: `make schema`). */
export const CONFIG_SCHEMA_FILE = join(PACKAGE_ROOT, 'm5dev.schema.json');
