/**
 * Settings a server process takes only when it starts. glibc's allocator reads its
 * MALLOC_* variables once, at the start of a process, and with its defaults it raises
 * its mmap threshold each time a large mmapped block is freed (a boot frees several):
 * blocks up to that size then come from the allocator's arenas and stay resident after
 * they are freed. So `serve` starts itself again once, in place (process.execve: the
 * same process id, arguments, standard streams and Node options), with fixed thresholds
 * in its environment. The process started again sees INTERPOOL_PROCESS_TUNED and goes on.
 */
import { parseServeArgs, resolveConfig, type ServerConfig } from './config.ts';
import { flag, OptionError } from './options.ts';

/** Fixed at 128 KiB (glibc's starting value), so that a freed block over it is unmapped at once. */
export const ALLOCATOR_SETTINGS: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** Set in the environment of the process started again: never more than once. */
export const TUNED_MARKER = 'INTERPOOL_PROCESS_TUNED';

export interface TuningSources {
  /** The command's arguments (after `serve`). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** glibc's version when Node runs on glibc, else undefined (musl, other systems). */
  glibc: string | undefined;
  /** Whether process.execve exists (Node 23.11 and later, not on Windows). */
  canExecve: boolean;
  /** The directory the command runs in (its paths are resolved against it). */
  cwd?: string;
}

export interface Restart {
  /** The variables the process is started again with, beside its own environment. */
  added: Record<string, string>;
  env: Record<string, string>;
}

/**
 * The restart `serve` needs, or undefined: not on Linux with glibc, turned off
 * (--allocator-tuning off), already done, or every variable already set by the user
 * (their values always win, as does a GLIBC_TUNABLES that tunes malloc).
 */
export function planRestart(sources: TuningSources): Restart | undefined {
  const { env } = sources;
  if (sources.platform !== 'linux' || sources.glibc === undefined || !sources.canExecve) return undefined;
  if (env[TUNED_MARKER] !== undefined || !tuningWanted(sources.argv, env)) return undefined;
  if (servesNativePython(sources)) return undefined;
  if (/glibc\.malloc\./.test(env.GLIBC_TUNABLES ?? '')) return undefined;
  const added = Object.fromEntries(Object.entries(ALLOCATOR_SETTINGS).filter(([name]) => env[name] === undefined));
  if (Object.keys(added).length === 0) return undefined;
  const own = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return { added, env: { ...own, ...added, [TUNED_MARKER]: Object.keys(added).join(',') } };
}

/** --allocator-tuning, else INTERPOOL_ALLOCATOR_TUNING; on unless one says off. */
function tuningWanted(argv: readonly string[], env: TuningSources['env']): boolean {
  try {
    const { values, help } = parseServeArgs(argv);
    const cli = values.allocatorTuning;
    if (help) return false;
    if (cli !== undefined) return flag(cli, '--allocator-tuning');
    const fromEnv = env.INTERPOOL_ALLOCATOR_TUNING;
    return fromEnv === undefined || fromEnv === '' ? true : flag(fromEnv, 'INTERPOOL_ALLOCATOR_TUNING');
  } catch (error) {
    // A bad command line is reported by the start itself, in its one line: not restarted for it.
    if (error instanceof OptionError) return false;
    throw error;
  }
}

/**
 * Whether the server runs a Python app on the native engine. Its Python objects come
 * from glibc's allocator (Pyodide's from its WebAssembly memory), and fixed thresholds
 * make every block over 128 KiB an mmap, page faults and a munmap: growing a bytes object
 * (`body += chunk` over a 5 MB upload) took 4.5 s against 0.08 s with glibc's own,
 * growing thresholds, on every request. So a process that serves native apps keeps
 * glibc's own, as gunicorn's workers do, and gives up the Pyodide memory the fixed ones
 * save (docs/python.md, "glibc's allocator thresholds").
 */
function servesNativePython(sources: TuningSources): boolean {
  try {
    return hasNativeApp(resolveConfig({ argv: sources.argv, env: sources.env, cwd: sources.cwd ?? process.cwd() }));
  } catch {
    // A configuration that does not resolve is reported by the start itself, in its one line.
    return false;
  }
}

export function hasNativeApp(config: ServerConfig): boolean {
  return config.apps.some((app) => app.kind === 'python' && app.settings.python === 'native');
}

/** For `serve`: start this process again, in place, when planRestart says so (then never returns). */
export function restartTuned(argv: readonly string[]): void {
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }).execve;
  const restart = planRestart({
    argv, env: process.env, platform: process.platform, glibc: glibcVersion(), canExecve: typeof execve === 'function',
  });
  if (!restart || !execve) return;
  try {
    execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], restart.env);
  } catch (error) {
    // The process goes on as it is: only its memory figures differ.
    process.stderr.write(`interpool: cannot start again with glibc's allocator settings (${(error as Error).message}); going on without them\n`);
  }
}

function glibcVersion(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  // (@types/node does not declare excludeNetwork yet.)
  const report = process.report as typeof process.report & { excludeNetwork: boolean };
  const excluded = report.excludeNetwork;
  report.excludeNetwork = true; // the report's network part resolves host names: not wanted here
  try {
    return (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  } finally {
    report.excludeNetwork = excluded;
  }
}

/**
 * The allocator settings in force, for the start's log line: what interpool set (the
 * marker names them), what the environment set, or nothing.
 */
export function describeAllocator(env: Readonly<Record<string, string | undefined>>): { settings: Record<string, string>; setBy: 'interpool' | 'environment' } | undefined {
  const settings = Object.fromEntries(Object.keys(ALLOCATOR_SETTINGS).flatMap((name) => (env[name] === undefined ? [] : [[name, env[name]!]])));
  if (Object.keys(settings).length === 0) return undefined;
  return { settings, setBy: env[TUNED_MARKER] ? 'interpool' : 'environment' };
}
