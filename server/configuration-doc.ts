/**
 * docs/configuration.md, generated from the option table (`npm run docs`). A test
 * compares the committed file with this output, so the two cannot drift.
 */
import { options, type OptionSpec } from './options.ts';

const specs: readonly OptionSpec[] = options;

export function renderConfigurationDoc(): string {
  const rows = specs.map((o) => {
    const configKey = o.notInConfigFile ? '—' : `\`${o.name}\`${o.perApp ? ' (also per app)' : ''}`;
    const env = o.env ? `\`${o.env}\`` : '—';
    return `| \`${o.valueName ? `${o.flag} ${o.valueName}` : o.flag}\` | ${env} | ${configKey} | ${o.defaultDoc} | ${o.doc.replaceAll('|', '\\|')} |`;
  });
  return `# Configuration

<!-- Generated from server/options.ts by \`npm run docs\`; a test fails when this file drifts. -->

interpool reads its settings, lowest precedence first, from the defaults, the config file
(\`--config FILE\`), the environment, and the command line. They are validated once at start;
a bad value stops the server with one line naming the option, and exit code 2.

\`\`\`
interpool serve [MOUNT...] [options]
\`\`\`

A MOUNT is \`FILE[:CALLABLE]\` (served at \`/\`) or \`/PREFIX=FILE[:CALLABLE]\`. The callable
defaults to \`application\`. The file's extension picks the interpreter: \`.py\` runs in
Python (Pyodide); \`.js .mjs .cjs .ts .mts\` run in the worker's V8 isolate. Each app gets its
own pool of interpreters. Mounts given on the command line replace the config file's \`apps\`.

## Options

| flag | environment | config file key | default | meaning |
|---|---|---|---|---|
${rows.join('\n')}

Sizes take an optional binary unit: \`16k\`, \`10m\`, \`1g\` (KiB, MiB, GiB).
Options marked *per app* can be set for one app in its \`apps\` entry, overriding the
server-wide value. \`--python-path\` is repeatable on the command line, a list in the config
file, and \`:\`-separated in the environment.

## Config file

JSON, the options above by their key, plus \`apps\`: a list of
\`{ "mount": "/prefix", "app": "FILE[:CALLABLE]", ...per-app options }\`. Relative paths
are resolved against the config file's directory. Unknown keys are errors.

\`\`\`json
{
  "workers": 2,
  "bind": "127.0.0.1:8000",
  "apps": [
    { "mount": "/", "app": "hello.ts" },
    { "mount": "/api", "app": "api.mjs:app", "workers": 4, "timeout": 60 }
  ]
}
\`\`\`
`;
}
