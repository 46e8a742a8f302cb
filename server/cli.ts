/**
 * The command line: `interpool serve [MOUNT...] [options]`, `--help`, `--version`.
 * Every failure to start is one line on stderr that names the problem, and exit code 2.
 */
import { readFileSync } from 'node:fs';
import { InterpoolError } from './errors.ts';
import { OptionError } from './options.ts';
import { renderServeHelp } from './help.ts';
import { startServer } from './serve.ts';
import { checkApp } from './check.ts';
import { reduceMemoryWhenIdle } from './idle-memory.ts';

export const EXIT_USAGE = 2;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const TOP_HELP = `Usage: interpool <command> [options]

Commands:
  serve [MOUNT...] [options]   serve WSGI apps (see interpool serve --help)
  check FILE[:CALLABLE] [options]
                               boot one app as serve would, call GET / once (Python:
                               under wsgiref.validate) and report; exit 0 when it
                               boots and answers, 1 when not (options as for serve)

Options:
  -h, --help       show this help
  -v, --version    print the version
`;

export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`interpool ${packageVersion()} (Node ${process.versions.node})\n`);
    return;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(TOP_HELP);
    return;
  }
  if (command !== 'serve' && command !== 'check') {
    fail(`unknown command "${command}"; see interpool --help`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(renderServeHelp());
    return;
  }
  try {
    if (command === 'check') {
      const outcome = await checkApp({ argv: rest, env: process.env, cwd: process.cwd() }, (line) => process.stdout.write(`${line}\n`));
      process.exit(outcome.ok ? 0 : 1);
    }
    reduceMemoryWhenIdle();
    await startServer({ argv: rest, env: process.env, cwd: process.cwd() });
  } catch (error) {
    if (error instanceof OptionError || (error instanceof InterpoolError && error.statusCode === 0)) fail(error.message);
    throw error;
  }
}

function fail(message: string): never {
  process.stderr.write(`interpool: ${message}\n`);
  process.exit(EXIT_USAGE);
}
