/**
 * Resolve the configuration once, at start, from (lowest to highest precedence) the
 * defaults, the config file, the environment and the command line, into a frozen
 * object. Nothing else in the server reads process.env or argv.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chooseNativeBuild } from '../native/builds.ts';
import type { InterpreterKind } from '../runtime/protocol.ts';
import { InterpoolError } from './errors.ts';
import {
  APP_EXTENSIONS, displayPrefix, interpreterKindOf, normalisePrefix, parseMountSpec, splitCallable, type MountSpec,
} from './mount-table.ts';
import { OptionError, options, type Address, type LogFormat, type LogLevel, type OptionSpec } from './options.ts';

/** What an app may set for itself (config-file `apps` entries), else inherits from the server. */
export interface PerAppSettings {
  workers: number;
  /** Seconds before a request gets 504 and its interpreter is interrupted; 0: never. */
  timeout: number;
  timeoutGrace: number;
  /** Seconds an interpreter may take to import its app before it is interrupted, then replaced; 0: no bound. */
  bootTimeout: number;
  /** Interpreters kept when idle (at most `workers`). */
  minWorkers: number;
  idleTimeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  /** MiB per interpreter; 0: no limit. */
  memoryLimit: number;
  maxQueue: number;
  queueTimeout: number;
}

export interface AppConfig extends PerAppSettings {
  /** Embedded mode (--workers 0): one interpreter, shared by all concurrent requests. */
  inline: boolean;
  /** The mount prefix as shown in logs: "/" or "/api". */
  name: string;
  prefix: string;
  file: string;
  callable: string;
  kind: InterpreterKind;
  /** Interpreter-specific settings (Python version and paths), passed to the worker untouched. */
  settings: Readonly<Record<string, unknown>>;
}

export interface ServerConfig extends PerAppSettings {
  bind: Address;
  bodyLimit: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  gracefulTimeout: number;
  reload: boolean;
  processes: number;
  maxStuckThreads: number;
  python: string;
  pythonPath: readonly string[];
  limitRequestLine: number;
  limitRequestFields: number;
  limitRequestFieldSize: number;
  headersTimeout: number;
  bodyTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  forwardedAllowIps: readonly string[];
  adminPath: string;
  adminToken: string | undefined;
  adminBind: Address | undefined;
  /** "memory" or a redis:// / rediss:// URL. */
  sharedStore: string;
  sharedStoreMaxValue: number;
  sharedStoreMaxBytes: number;
  apps: readonly AppConfig[];
}

export interface ConfigSources {
  /** The arguments after the `serve` command. */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

type Raw = Record<string, unknown>;

const specs: readonly OptionSpec[] = options;
const PER_APP_KEYS = new Set(['mount', 'app', ...specs.filter((o) => o.perApp).map((o) => o.name)]);

/** Parse `serve` arguments into mounts and raw option strings; unknown options are errors. */
export function parseServeArgs(argv: readonly string[]): { mounts: string[]; values: Raw; help: boolean } {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(specs.map((o) => [o.flag.slice(2), o.boolean
          ? { type: 'boolean' as const }
          : { type: 'string' as const, multiple: o.multiple === true }])),
      },
    });
    const byName: Raw = {};
    for (const o of specs) {
      const value = (values as Record<string, unknown>)[o.flag.slice(2)];
      if (value !== undefined) byName[o.name] = value;
    }
    return { mounts: positionals, values: byName, help: values.help === true };
  } catch (error) {
    throw new OptionError(cliParseMessage(error));
  }
}

/** node:util parseArgs messages are long and mention "strict"; keep the part that names the option. */
function cliParseMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}; see interpool serve --help`;
  const missing = /Option '([^']+?)(?: <value>)?' argument missing/.exec(message);
  if (missing) return `option ${missing[1]!.replace(/^-\w, /, '')} needs a value`;
  return message.split('\n')[0]!;
}

export function resolveConfig({ argv, env, cwd }: ConfigSources): ServerConfig {
  const cli = parseServeArgs(argv);
  // An empty INTERPOOL_CONFIG means "none", as an empty value does for every other variable.
  const configPath = (cli.values.config ?? (env.INTERPOOL_CONFIG || undefined)) as string | undefined;
  const file = configPath === undefined ? undefined : readConfigFile(resolve(cwd, configPath));
  const fileDir = configPath === undefined ? cwd : dirname(resolve(cwd, configPath));

  const server: Raw = {};
  for (const o of specs) {
    if (o.notInConfigFile) continue;
    let value: unknown = o.default();
    if (file && o.name in file) value = o.parse(file[o.name], `config file ${configPath}: "${o.name}"`);
    const fromEnv = o.env === undefined ? undefined : env[o.env];
    if (fromEnv !== undefined && fromEnv !== '') value = o.parse(fromEnv, o.env!);
    if (o.name in cli.values) value = o.parse(cli.values[o.name], o.flag);
    server[o.name] = value;
  }

  const mounts = cli.mounts.length > 0
    ? cli.mounts.map((text) => ({ spec: parseMountSpec(text), base: cwd, overrides: {} as Raw }))
    : appsFromConfigFile(file, configPath, fileDir);
  if (mounts.length === 0) {
    throw new OptionError('no app to serve: give one or more MOUNTs (FILE[:CALLABLE] or /PREFIX=FILE[:CALLABLE]) or a config file with "apps"');
  }
  const apps = mounts.map(({ spec, base, overrides }) => toAppConfig(spec, base, overrides, server));
  assertUniquePrefixes(apps);
  assertOneCPython(apps);
  return deepFreeze({ ...(server as Omit<ServerConfig, 'apps'>), apps });
}

function readConfigFile(path: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message;
    throw new InterpoolError('INTERPOOL_ERR_CONFIG_FILE', [`config file ${path} ${reason}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InterpoolError('INTERPOOL_ERR_CONFIG_FILE', [`config file ${path} is not valid JSON: ${(error as Error).message}`]);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InterpoolError('INTERPOOL_ERR_CONFIG_FILE', [`config file ${path} must hold a JSON object`]);
  }
  const known = new Set(['apps', ...specs.filter((o) => !o.notInConfigFile).map((o) => o.name)]);
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new InterpoolError('INTERPOOL_ERR_CONFIG_FILE', [`config file ${path}: unknown key "${key}"; known keys: ${[...known].join(', ')}`]);
    }
  }
  return parsed as Raw;
}

function appsFromConfigFile(file: Raw | undefined, configPath: string | undefined, base: string) {
  if (!file || file.apps === undefined) return [];
  const where = `config file ${configPath}`;
  if (!Array.isArray(file.apps)) throw new OptionError(`${where}: "apps" must be a list of {"mount", "app", ...} objects`);
  return file.apps.map((entry: unknown, index: number) => {
    const at = `${where}: apps[${index}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new OptionError(`${at} must be an object with "app" and optional "mount"`);
    const raw = entry as Raw;
    for (const key of Object.keys(raw)) {
      if (!PER_APP_KEYS.has(key)) throw new OptionError(`${at}: unknown key "${key}"; per-app keys: ${[...PER_APP_KEYS].join(', ')}`);
    }
    if (typeof raw.app !== 'string' || raw.app === '') throw new OptionError(`${at}.app must be FILE[:CALLABLE], got ${JSON.stringify(raw.app)}`);
    if (raw.mount !== undefined && typeof raw.mount !== 'string') throw new OptionError(`${at}.mount must be a path prefix like "/api"`);
    const [appFile, callable] = splitCallable(raw.app);
    const prefix = normalisePrefix((raw.mount as string | undefined) ?? '/');
    const overrides: Raw = {};
    for (const o of specs.filter((s) => s.perApp)) {
      if (o.name in raw) overrides[o.name] = o.parse(raw[o.name], `${at}.${o.name}`);
    }
    return { spec: { prefix, file: appFile, callable }, base, overrides };
  });
}

function toAppConfig(spec: MountSpec, base: string, overrides: Raw, server: Raw): AppConfig {
  const file = resolve(base, spec.file);
  const kind = interpreterKindOf(file);
  if (kind === undefined) {
    throw new InterpoolError('INTERPOOL_ERR_APP_FILE', [`app file ${spec.file} has an unknown extension; expected one of ${APP_EXTENSIONS.join(' ')}`]);
  }
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    throw new InterpoolError('INTERPOOL_ERR_APP_FILE', [`app file ${spec.file} does not exist (looked at ${file})`]);
  }
  if (!isFile) throw new InterpoolError('INTERPOOL_ERR_APP_FILE', [`app file ${spec.file} is not a file`]);
  const setting = (name: string) => overrides[name] ?? server[name];
  // Embedded mode (--workers 0) is one interpreter that takes every concurrent request.
  const inline = setting('workers') === 0;
  const workers = inline ? 1 : setting('workers') as number;
  const minWorkers = inline ? 1 : (setting('minWorkers') as number) || workers;
  if (minWorkers > workers) throw new OptionError(`--min-workers (${minWorkers}) must not be more than --workers (${workers}) for app ${displayPrefix(spec.prefix)}`);
  return {
    name: displayPrefix(spec.prefix),
    prefix: spec.prefix,
    file,
    callable: spec.callable,
    kind,
    workers,
    inline,
    timeout: setting('timeout') as number,
    timeoutGrace: setting('timeoutGrace') as number,
    bootTimeout: setting('bootTimeout') as number,
    minWorkers,
    idleTimeout: setting('idleTimeout') as number,
    maxRequests: setting('maxRequests') as number,
    maxRequestsJitter: setting('maxRequestsJitter') as number,
    memoryLimit: setting('memoryLimit') as number,
    maxQueue: (setting('maxQueue') as number) || 32 * workers,
    queueTimeout: setting('queueTimeout') as number,
    settings: {
      python: setting('python'),
      pythonPath: existingDirectories(setting('pythonPath') as string[], base),
      // Pyodide's runtime snapshot between starts (runtime/interpreters/python-snapshot.ts); '' for none.
      cacheDir: setting('cacheDir') === '' ? '' : resolve(base, setting('cacheDir') as string),
      ...(kind === 'python' && setting('python') === 'native' ? nativeSettings(setting('cpython') as string | undefined, setting('pythonIsolation') as string, base) : {}),
    },
  };
}

/**
 * The server's environment as it starts (when its config is resolved, before any app
 * runs), packed as names and values each followed by a NUL (neither can hold one).
 * Native subinterpreters share the process's environment: os.environ writes go to it
 * (putenv), and a new interpreter's os.environ is read from it. So one app's
 * os.environ.setdefault('DJANGO_SETTINGS_MODULE', ...) became the value every other
 * app's next interpreter found already set (after a recycle: two Django sites in one
 * server, one running with the other's settings). Each interpreter starts from this
 * instead (runtime/interpreters/native.ts), as each worker process of gunicorn starts
 * from its master's. A reload keeps the app's resolved config, and so this.
 */
function startingEnviron(): string {
  return Object.entries(process.env).map(([name, value]) => `${name}\0${value ?? ''}\0`).join('');
}

/** --python native: the addon build for --cpython (or the newest), refused when there is none. */
function nativeSettings(cpython: string | undefined, isolation: string, base: string): Record<string, string> {
  const build = chooseNativeBuild(cpython === undefined ? undefined : resolve(base, cpython));
  if (typeof build === 'string') throw new OptionError(build);
  return { cpython: build.executable, cpythonVersion: build.version, cpythonSource: build.source, nativeAddon: build.addon, isolation, environ: startingEnviron() };
}

/** --python-path entries, resolved against the config file's directory (or cwd), must exist. */
function existingDirectories(dirs: readonly string[], base: string): string[] {
  return dirs.map((dir) => {
    const path = resolve(base, dir);
    let isDirectory = false;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new OptionError(`--python-path: directory ${dir} does not exist (looked at ${path})`);
    }
    if (!isDirectory) throw new OptionError(`--python-path: ${dir} is not a directory`);
    return path;
  });
}

/**
 * A process embeds one CPython: each libpython must be global for its extension modules
 * to load, and two would clash. Apps on different CPythons need two servers.
 */
function assertOneCPython(apps: readonly AppConfig[]): void {
  // A JS app embeds no CPython, whatever --python says (it applies to Python apps).
  const native = apps.filter((app) => app.settings.python === 'native' && app.settings.cpython !== undefined);
  const other = native.find((app) => app.settings.cpython !== native[0]!.settings.cpython);
  if (other) {
    throw new OptionError(`apps ${native[0]!.name} and ${other.name} use different CPythons (${String(native[0]!.settings.cpython)}, ${String(other.settings.cpython)}); `
      + 'one server process embeds one CPython: serve them from two servers');
  }
}

function assertUniquePrefixes(apps: readonly AppConfig[]): void {
  const seen = new Set<string>();
  for (const app of apps) {
    if (seen.has(app.prefix)) throw new OptionError(`two apps are mounted at "${app.name}"`);
    seen.add(app.prefix);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
