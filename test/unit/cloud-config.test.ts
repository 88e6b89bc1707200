import { describe, expect, it } from 'vitest';
import { knownHostsLine, metaData, userData } from '../../src/vm/cloud-config.js';

const priv = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n-----END OPENSSH PRIVATE KEY-----\n';

describe('cloud-config', () => {
  const ud = userData({
    instanceId: 'i-1',
    hostname: 'dev',
    userPublicKey: 'ssh-ed25519 AAAAuser m5dev-dev\n',
    hostKey: { privateKey: priv, publicKey: 'ssh-ed25519 AAAAhost m5dev-dev-host\n' },
  });

  it('is a cloud-config with the seed user', () => {
    expect(ud.startsWith('#cloud-config\n')).toBe(true);
    expect(ud).toContain('  - name: ubuntu\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    groups: sudo\n    shell: /bin/bash\n');
    expect(ud).toContain('    ssh_authorized_keys:\n      - ssh-ed25519 AAAAuser m5dev-dev\n');
  });

  it('pre-seeds the host key as a YAML block and generates no others', () => {
    expect(ud).toContain('ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    AAAA\n    BBBB\n    -----END OPENSSH PRIVATE KEY-----\n');
    expect(ud).toContain('  ed25519_public: ssh-ed25519 AAAAhost m5dev-dev-host\n');
    // cc_ssh generates no host keys when ssh_keys is given; `ssh_genkeytypes: []` is invalid schema.
    expect(ud).not.toContain('ssh_genkeytypes');
  });

  it('writes meta-data and a pinned known_hosts line', () => {
    expect(metaData({ instanceId: 'i-1', hostname: 'dev' })).toBe('instance-id: i-1\nlocal-hostname: dev\n');
    expect(knownHostsLine('m5dev-dev', 'ssh-ed25519 AAAAhost comment\n')).toBe('m5dev-dev ssh-ed25519 AAAAhost\n');
  });
});
