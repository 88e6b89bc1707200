/**
 * The session of a hidden command that runs on an instance's behalf, started by ssh or by m5dev
 * itself rather than by the user's shell (`ssh-proxy`, `checkpoint-agent`): the instance's home as
 * given, and the engine the instance lives on, whatever the environment it was started with.
 */
import { layout } from '../paths.js';
import { session, updateSession } from '../session.js';
import { openInstance, requireState, type InstanceFiles, type InstanceState } from '../vm/instance.js';

export function instanceSession(name: string, home: string | undefined): { files: InstanceFiles; state: InstanceState } {
  if (home) updateSession({ M5DEV_HOME: home });
  const files = openInstance(layout(), name);
  const state = requireState(files, name);
  if (state.engine?.context && !session().env.DOCKER_HOST) updateSession({ DOCKER_CONTEXT: state.engine.context });
  else if (state.engine) updateSession({ DOCKER_HOST: state.engine.host });
  return { files, state };
}
