/** The instance state's one writer (vm/instance.ts instanceRecord): each intent changes what it names, and writes it whole. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { instanceFiles, instanceRecord, readState, type InstanceState } from '../../src/vm/instance.js';

describe('instanceRecord', () => {
  it('records a launch, a moved port, a guest that must boot afresh and dropped shares, each as the next read sees it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-record-'));
    try {
      const files = instanceFiles(dir);
      const launched = { name: 'dev', sshPort: 5555, imageSha256: 'a'.repeat(64), imageUrl: 'file:///i', disk: 'raw', cpus: 2, memoryMiB: 2048, createdAt: 'then', instanceId: 'm5dev-dev-1', seedHash: 'h', shares: [{ host: '/h', guest: '/g', readOnly: false }], exports: [] } as unknown as InstanceState;
      expect(instanceRecord.launched(files, launched)).toEqual(launched);
      expect(readState(files)).toEqual(launched);
      const moved = instanceRecord.portMoved(files, launched, 5556);
      expect(readState(files)).toEqual({ ...launched, sshPort: 5556 });
      const afresh = instanceRecord.keysRemade(files, moved);
      expect(readState(files)).toEqual(afresh);
      expect([afresh.instanceId, afresh.seedHash, afresh.sshPort]).toEqual([undefined, undefined, 5556]);
      const unshared = instanceRecord.sharesDropped(files, afresh);
      expect(readState(files)).toEqual(unshared);
      expect([unshared.shares, unshared.exports, unshared.cpus]).toEqual([undefined, undefined, 2]);
      expect(readdirSync(dir)).toEqual(['state.json']); // written whole: no temporary file left
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
