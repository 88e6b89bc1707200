/**
 * `m5dev completion bash|zsh|fish`: a completion script made from commander's own metadata (the
 * command tree and each command's flags), so it cannot drift from the CLI. Instance names come from
 * the instance directories at completion time ($M5DEV_HOME, else $XDG_CACHE_HOME/m5dev, else
 * ~/.cache/m5dev), without starting m5dev. Pure: the tree in, the script out.
 */
import type { Command } from 'commander';

export interface CommandSpec {
  path: string[];
  flags: string[];
  subcommands: string[];
  /** Flags whose value is an instance name. */
  nameFlags: string[];
}

/** Every command (the program first) with its flags and subcommands. */
export function commandSpecs(program: Command): CommandSpec[] {
  const out: CommandSpec[] = [];
  const walk = (cmd: Command, path: string[]) => {
    const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
    const nameFlags = cmd.options.filter((o) => o.long === '--name').flatMap((o) => (o.long ? [o.long] : []));
    out.push({ path, flags: [...flags, '--help'], subcommands: cmd.commands.map((c) => c.name()), nameFlags });
    for (const c of cmd.commands) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return out;
}

const INSTANCES_DIR = '"${M5DEV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/m5dev}/instances"';

export function completionScript(shell: 'bash' | 'zsh' | 'fish', program: Command): string {
  const specs = commandSpecs(program);
  if (shell === 'fish') return fishScript(specs);
  const cases = specs
    .map((s) => `    '${s.path.join(' ')}') words="${[...s.subcommands, ...s.flags].join(' ')}"; names="${s.nameFlags.join(' ')}" ;;`)
    .join('\n');
  const bash = `# m5dev completion for ${shell} (m5dev completion ${shell}); made from m5dev's own command tree
_m5dev_instances() { ls -1 ${INSTANCES_DIR} 2>/dev/null; }
_m5dev() {
  local cur prev path="" w i words names
  cur="\${COMP_WORDS[COMP_CWORD]}"; prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # The command path: the words so far that name a subcommand of the path before them.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case " $(_m5dev_words "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  case "$prev" in
    --name) COMPREPLY=($(compgen -W "$(_m5dev_instances)" -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "$(_m5dev_words "$path")" -- "$cur"))
  # cp's sides: NAME: for each instance.
  if [ "$path" = cp ] && [[ "$cur" != -* ]]; then
    COMPREPLY+=($(compgen -W "$(_m5dev_instances | sed 's/$/:/') guest:" -- "$cur"))
    compopt -o nospace 2>/dev/null
    COMPREPLY+=($(compgen -f -- "$cur"))
  fi
}
_m5dev_words() {
  local words names
  case "$1" in
${cases}
    *) words="" ;;
  esac
  echo "$words"
}
complete -F _m5dev m5dev
`;
  return shell === 'zsh' ? `#compdef m5dev\n# zsh runs the bash completion through bashcompinit\nautoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

function fishScript(specs: CommandSpec[]): string {
  const lines = ['# m5dev completion for fish (m5dev completion fish); made from m5dev\'s own command tree', 'complete -c m5dev -f'];
  lines.push(
    'function __m5dev_instances',
    '  set -l root $HOME/.cache/m5dev',
    '  set -q XDG_CACHE_HOME; and set root $XDG_CACHE_HOME/m5dev',
    '  set -q M5DEV_HOME; and set root $M5DEV_HOME',
    '  ls -1 $root/instances 2>/dev/null',
    'end',
  );
  for (const s of specs) {
    const cond = s.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${s.path[s.path.length - 1]}`;
    for (const sub of s.subcommands) lines.push(`complete -c m5dev -n '${cond}' -a ${sub}`);
    for (const f of s.flags) {
      if (f.startsWith('--')) lines.push(`complete -c m5dev -n '${cond}' -l ${f.slice(2)}${s.nameFlags.includes(f) ? " -r -a '(__m5dev_instances)'" : ''}`);
      else lines.push(`complete -c m5dev -n '${cond}' -s ${f.slice(1)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
