/** `interpool serve --help`, generated from the option table. */
import { options, type OptionSpec } from './options.ts';

const specs: readonly OptionSpec[] = options;

export function renderServeHelp(): string {
  const rows = specs.map((o) => {
    const left = o.valueName ? `  ${o.flag} ${o.valueName}` : `  ${o.flag}`;
    const env = o.env ? ` [env ${o.env}]` : '';
    // At least two spaces between the flag and its text, however long the flag is.
    return `${left.padEnd(30)}${left.length >= 29 ? '  ' : ''}${o.doc} Default: ${o.defaultDoc}.${env}`;
  });
  return `Usage: interpool serve [MOUNT...] [options]

MOUNT is FILE[:CALLABLE] (served at /) or /PREFIX=FILE[:CALLABLE].
The callable defaults to "application". Each app runs in its own pool of interpreters.
Files: .py (Python), .js .mjs .cjs .ts .mts (JavaScript/TypeScript).

Options:
${rows.join('\n')}
  -h, --help                  show this help

Precedence: command line > environment > config file > default.
`;
}
