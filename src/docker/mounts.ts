/**
 * What a container mounts: a client directory (bind) or an engine volume. Given to the engine as
 * HostConfig.Mounts fields, never as a "src:dst:opts" Binds string, so a ':' or ',' in a path (in
 * M5DEV_HOME, TMPDIR or a shared directory) is just a character.
 */
export interface Mount {
  kind: 'bind' | 'volume';
  /** The client directory, or the volume's name. */
  source: string;
  target: string;
  readOnly?: boolean;
}

export function engineMount(m: Mount): { Type: 'bind' | 'volume'; Source: string; Target: string; ReadOnly: boolean } {
  return { Type: m.kind, Source: m.source, Target: m.target, ReadOnly: m.readOnly === true };
}

/** The mount as `docker -v` writes it: what a launch key records (unchanged from the Binds days). */
export function mountLabel(m: Mount): string {
  return `${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`;
}
