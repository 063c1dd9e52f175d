import type { CommandSpec, OptionSpec } from './context.js';

export const shells = ['bash', 'zsh'] as const;
export type Shell = (typeof shells)[number];

const flags = (options: Record<string, OptionSpec>) =>
  Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);

/**
 * The completion script for `shell`, generated from the commands themselves so that it never lists an
 * option a command does not take. Bash completes the command words, then each command's options; an
 * option's value (a file, a case id) falls back to the shell's own file completion. Zsh loads the same
 * function through its bash compatibility layer (bashcompinit).
 */
export function completionScript(
  shell: Shell,
  commands: readonly CommandSpec[],
  globalOptions: Record<string, OptionSpec>,
): string {
  const global = flags(globalOptions).filter((f) => f !== '--stack-region');
  const top = [...new Set(commands.map((c) => c.path[0] ?? ''))].filter(Boolean);
  const groups = [...new Set(commands.filter((c) => c.path.length > 1).map((c) => c.path[0] ?? ''))];
  // Longest paths first: `evidence ls` before `evidence`.
  const cases = [...commands]
    .sort((a, b) => b.path.length - a.path.length)
    .map((c) => {
      const path = c.path.join(' ');
      const words = [...flags(c.options), ...global].join(' ');
      return `    "${path}"|"${path} "*) words="${words}" ;;`;
    });
  // Where the next word is one of a few: a group's subcommands, or completion's shells.
  const choices: [string, string[]][] = [
    ...groups.map((group): [string, string[]] => [
      group,
      commands.filter((c) => c.path[0] === group && c.path.length > 1).map((c) => c.path[1] ?? ''),
    ]),
    ['completion', [...shells]],
  ];
  // Before the generic entries, which match the same path with anything after it.
  cases.unshift(...choices.map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`));
  const bash = `# cordon completion for ${shell}: eval "$(cordon completion ${shell})" in your shell's profile.
_cordon() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" words="" i
  # The command typed so far: the words before the cursor that are not options.
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) path="\${path:+$path }\${COMP_WORDS[i]}" ;; esac
  done
  case "$path" in
    "") words="${[...top, ...global].join(' ')}" ;;
${cases.join('\n')}
  esac
  # After a command, only options are offered: anything else (a file, a case id) is the shell's own.
  if [[ -n "$path" && "$path" != "${choices.map(([p]) => p).join('" && "$path" != "')}" && "$cur" != -* ]]; then
    COMPREPLY=()
    return
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _cordon cordon
`;
  return shell === 'bash' ? bash : `#compdef cordon\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
