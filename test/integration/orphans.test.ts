/** Tool containers of a killed m5dev are swept; those of live processes and other machines are not (real engine). */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { sweepOrphanTools } from '../../src/docker/containers.js';
import { CLIENT_HOST, LABELS } from '../../src/docker/labels.js';
import { DEFAULTS } from '../../src/config.js';
import { docker, TEST_LABEL } from '../helpers/docker.js';

const made: string[] = [];
afterAll(async () => {
  for (const id of made) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
});

async function toolContainer(client: string): Promise<string> {
  const c = await docker.createContainer({
    Image: DEFAULTS.baseImage,
    Cmd: ['sleep', '600'],
    Labels: { [TEST_LABEL]: 'true', [LABELS.role]: 'tool', [LABELS.client]: client },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  made.push(c.id);
  return c.id;
}

const exists = async (id: string) => (await docker.getContainer(id).inspect().then(() => true, () => false));

describe('sweepOrphanTools', () => {
  it('removes the running tool container of a dead m5dev on this machine, and nothing else', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid; // a pid that has exited
    const orphan = await toolContainer(`${CLIENT_HOST}:${dead}`);
    const live = await toolContainer(`${CLIENT_HOST}:${process.pid}`);
    const elsewhere = await toolContainer(`another-machine/12345678:${dead}`);
    expect(await sweepOrphanTools(docker)).toBeGreaterThanOrEqual(1);
    expect(await exists(orphan)).toBe(false);
    expect(await exists(live)).toBe(true);
    expect(await exists(elsewhere)).toBe(true);
  }, 60_000);
});
