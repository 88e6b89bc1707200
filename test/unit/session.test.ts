import { afterEach, describe, expect, it } from 'vitest';
import { session, sessionOf, startSession, updateSession } from '../../src/session.js';
import { m5devHome } from '../../src/paths.js';
import { chooseSshMode } from '../../src/ssh/client.js';

describe('the session (the one reader of the environment)', () => {
  afterEach(() => startSession(sessionOf({ ...process.env })));

  it('reads each setting from its variable, and nothing from an unset one', () => {
    expect(sessionOf({})).toEqual({ env: {}, toolchain: undefined, strictLock: false, sshReuse: true, debug: false, timings: false });
    const env = { M5DEV_TOOLCHAIN: 'tc@sha256:ab', M5DEV_STRICT_LOCK: '1', M5DEV_SSH_REUSE: 'no', M5DEV_DEBUG: '1', M5DEV_TIMINGS: '1' };
    expect(sessionOf(env)).toEqual({ env, toolchain: 'tc@sha256:ab', strictLock: true, sshReuse: false, debug: true, timings: true });
    // Only the values that mean yes: a strict lock and timings are "1", reuse is off only at "no".
    expect(sessionOf({ M5DEV_STRICT_LOCK: 'yes', M5DEV_TIMINGS: 'true', M5DEV_SSH_REUSE: '0', M5DEV_TOOLCHAIN: '' })).toMatchObject({ strictLock: false, timings: false, sshReuse: true, toolchain: undefined });
  });

  it('is what the layers below read by default, and a change to it (a flag, ssh-proxy) is what they see next', () => {
    startSession(sessionOf({ M5DEV_HOME: '/h/one', PATH: '' }));
    expect(m5devHome()).toBe('/h/one');
    expect(chooseSshMode()).toBe('container'); // no ssh on an empty PATH
    updateSession({ M5DEV_HOME: '/h/two' });
    expect(session().env).toEqual({ M5DEV_HOME: '/h/two', PATH: '' });
    expect(m5devHome()).toBe('/h/two');
    updateSession({ M5DEV_TOOLCHAIN: 'given' });
    expect(session().toolchain).toBe('given');
  });
});
