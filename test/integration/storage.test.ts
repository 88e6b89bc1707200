/**
 * Both storages against the real engine, through the same interface: a client directory, and a
 * named volume reached only by helper containers and tar streams (as on a remote engine).
 * The saved-state commit protocol runs on each.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { LocalDirStorage, VolumeStorage, type Storage } from '../../src/engine/storage.js';
import { Engine, volumeName } from '../../src/engine/engine.js';
import { currentEndpoint } from '../../src/docker/client.js';
import { DEFAULTS } from '../../src/config.js';
import { SAVED_FORMAT, commitSaved, dropSaved, guestStamps, readSaved, savedFilesPresent } from '../../src/vm/saved-state.js';
import { docker, TEST_LABEL } from '../helpers/docker.js';

const home = mkdtempSync(join(tmpdir(), 'm5dev-storage-'));
const volumes: VolumeStorage[] = [];
afterAll(async () => {
  for (const v of volumes) await v.destroy();
});

function kinds(): [string, () => Storage][] {
  return [
    ['client directory', () => new LocalDirStorage(mkdtempSync(join(tmpdir(), 'm5dev-st-')))],
    [
      'engine volume',
      () => {
        const v = new VolumeStorage(docker, volumeName(home, 'test', randomBytes(4).toString('hex')), { [TEST_LABEL]: 'true' }, () => DEFAULTS.baseImage);
        volumes.push(v);
        return v;
      },
    ],
  ];
}

describe.each(kinds())('storage: %s', (_kind, make) => {
  it('writes, stats, reads, tails, removes', async () => {
    const st = make();
    await st.write([{ name: 'a.txt', data: 'alpha\n' }, { name: 'key', data: 'secret', mode: 0o600 }]);
    const stats = await st.stat(['a.txt', 'key', 'missing']);
    expect([...stats.keys()].sort()).toEqual(['a.txt', 'key']);
    expect(stats.get('a.txt')?.size).toBe(6);
    expect((await st.read('a.txt'))?.toString()).toBe('alpha\n');
    expect(await st.read('missing')).toBeUndefined();
    expect(await st.readTail('a.txt', 3)).toBe('ha\n');
    expect(await st.readTail('missing', 3)).toBe('');
    await st.remove(['a.txt', 'missing']);
    expect([...(await st.stat(['a.txt', 'key'])).keys()]).toEqual(['key']);
    await st.destroy();
    expect((await st.stat(['key'])).size).toBe(0);
  }, 60_000);

  it('imports a client file verified where it lands; a digest that does not match keeps nothing', async () => {
    const st = make();
    const file = join(mkdtempSync(join(tmpdir(), 'm5dev-import-')), 'blob');
    writeFileSync(file, 'the bytes\n');
    const sha = createHash('sha256').update('the bytes\n').digest('hex');
    await st.importFile(file, 'blob', sha);
    expect((await st.read('blob'))?.toString()).toBe('the bytes\n');
    await expect(st.importFile(file, 'other', 'f'.repeat(64))).rejects.toThrow();
    expect((await st.stat(['blob', 'other', '.incoming-other'])).size).toBe(1);
    await st.destroy();
  }, 60_000);

  it('holds trees: nested writes, a client tree copied in, digests computed where stored, trees removed', async () => {
    const st = make();
    await st.write([{ name: 'fragments/a.config', data: 'CONFIG_X=y\n' }]);
    expect((await st.read('fragments/a.config'))?.toString()).toBe('CONFIG_X=y\n');
    const tree = mkdtempSync(join(tmpdir(), 'm5dev-tree-'));
    mkdirSync(join(tree, 'arch', 'arm64', 'boot'), { recursive: true });
    writeFileSync(join(tree, 'arch', 'arm64', 'boot', 'Image'), 'image bytes');
    writeFileSync(join(tree, '.config'), 'CONFIG_X=y\n');
    await st.importTree(tree, 'build/k');
    expect(await st.sha256('build/k/arch/arm64/boot/Image')).toBe(createHash('sha256').update('image bytes').digest('hex'));
    expect([...(await st.stat(['build/k/.config', 'build/k.incoming'])).keys()]).toEqual(['build/k/.config']);
    await st.removeTree('build/k');
    expect((await st.stat(['build/k/.config'])).size).toBe(0);
    await st.destroy();
  }, 60_000);

  it('commits a suspend (state, RAM, then record) and drops it', async () => {
    const st = make();
    await st.write([{ name: 'disk.qcow2', data: 'disk' }, { name: 'vmstate.tmp', data: 'devices' }, { name: 'ram.tmp', data: 'ram' }]);
    const rec = { format: SAVED_FORMAT.ramFile, launchKey: 'k', stamps: await guestStamps(st), bytes: 1, savedAt: 'now', saveMs: 1 };
    expect(rec.stamps.map((s) => s.file)).toEqual(['disk.qcow2']);
    await commitSaved(st, rec);
    expect(await readSaved(st)).toEqual(rec);
    expect(await savedFilesPresent(st, rec)).toBe(true);
    expect([...(await st.stat(['vmstate.tmp', 'ram.tmp', 'vmstate.json.tmp'])).keys()]).toEqual([]);
    await dropSaved(st);
    expect(await readSaved(st)).toBeUndefined();
    expect([...(await st.stat(['vmstate', 'ram', 'disk.qcow2'])).keys()]).toEqual(['disk.qcow2']);
  }, 60_000);
});

describe('volume storage imports a client file verified where it lands', () => {
  it('copies a file in under its digest, and refuses a wrong digest keeping nothing', async () => {
    const v = new VolumeStorage(docker, volumeName(home, 'blobs-test'), { [TEST_LABEL]: 'true' }, () => DEFAULTS.baseImage);
    volumes.push(v);
    const file = join(mkdtempSync(join(tmpdir(), 'm5dev-blob-')), 'image.qcow2');
    const data = randomBytes(3 * 2 ** 20 + 7);
    writeFileSync(file, data);
    const sha = createHash('sha256').update(data).digest('hex');
    await v.importFile(file, sha, sha);
    expect((await v.stat([sha])).get(sha)?.size).toBe(data.length);
    await expect(v.importFile(file, 'other', 'f'.repeat(64))).rejects.toThrow(/copying other/);
    expect((await v.stat(['other', '.incoming-other'])).size).toBe(0);
  }, 60_000);
});

describe('engine probe (local engine)', () => {
  it('sees that the local engine shares our files, and remembers it', async () => {
    const e = new Engine(docker, currentEndpoint());
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-probe-'));
    expect(await e.filesMode(dir, DEFAULTS.baseImage, {})).toBe('shared');
    expect(await e.filesMode(dir, DEFAULTS.baseImage, { M5DEV_ENGINE_FILES: 'volumes' })).toBe('volumes');
    const info = await e.info();
    expect(info).toMatchObject({ product: 'docker', arch: 'x86_64', rootless: false, source: 'default' });
  }, 60_000);
});

describe('paths the old "src:dst:opts" bind strings could not carry', () => {
  it('mounts a client directory whose path has ":", "," and " " (M5DEV_HOME, TMPDIR, a share)', async () => {
    const { runTool } = await import('../../src/docker/containers.js');
    const st = new LocalDirStorage(mkdtempSync(join(tmpdir(), 'm5dev st:a,b ')));
    await st.write([{ name: 'in.txt', data: 'from the client\n' }]);
    const out = await runTool(docker, { image: DEFAULTS.baseImage, cmd: ['sh', '-c', 'cat /st/in.txt && echo written > /st/out.txt'], binds: [st.bind('/st')], home, description: 'mount test' });
    expect(out).toBe('from the client\n');
    expect((await st.read('out.txt'))?.toString()).toBe('written\n');
    const ro = runTool(docker, { image: DEFAULTS.baseImage, cmd: ['sh', '-c', 'echo no > /st/x'], binds: [st.bind('/st', true)], home, description: 'read-only mount test' });
    await expect(ro).rejects.toThrow(/read-only mount test failed/);
    await st.destroy();
  }, 60_000);
});
