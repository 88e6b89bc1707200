import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
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

  it('parses back to exactly what was put in, whatever the values hold (written by the YAML library)', () => {
    expect(parse(ud)).toEqual({
      users: [{ name: 'ubuntu', sudo: 'ALL=(ALL) NOPASSWD:ALL', groups: 'sudo', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: ['ssh-ed25519 AAAAuser m5dev-dev'] }],
      manage_etc_hosts: 'localhost',
      ssh_deletekeys: true,
      ssh_keys: { ed25519_private: priv, ed25519_public: 'ssh-ed25519 AAAAhost m5dev-dev-host' },
    });
    // Values that would break YAML built by hand: a comment sign, a colon and space, quotes, a key line.
    const odd = userData({ instanceId: 'i', hostname: 'h', userPublicKey: "ssh-ed25519 AAAA it's: #not a comment\n", hostKey: { privateKey: 'a: b\n- c\n', publicKey: '"x" y' } });
    const back = parse(odd) as { users: { ssh_authorized_keys: string[] }[]; ssh_keys: Record<string, string>; runcmd?: unknown };
    expect(back.users[0]!.ssh_authorized_keys).toEqual(["ssh-ed25519 AAAA it's: #not a comment"]);
    expect(back.ssh_keys).toEqual({ ed25519_private: 'a: b\n- c\n', ed25519_public: '"x" y' });
    expect(back.runcmd).toBeUndefined();
    const md = metaData({ instanceId: 'i-1\nruncmd: [reboot]', hostname: 'dev: x' });
    expect(parse(md)).toEqual({ 'instance-id': 'i-1\nruncmd: [reboot]', 'local-hostname': 'dev: x' });
  });

  it('writes meta-data and a pinned known_hosts line', () => {
    expect(metaData({ instanceId: 'i-1', hostname: 'dev' })).toBe('instance-id: i-1\nlocal-hostname: dev\n');
    expect(knownHostsLine('m5dev-dev', 'ssh-ed25519 AAAAhost comment\n')).toBe('m5dev-dev ssh-ed25519 AAAAhost\n');
  });
});
