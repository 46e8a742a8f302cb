/**
 * The one declarative table of options. The CLI parser, `--help`, the config-file
 * validation, the environment variables and docs/configuration.md are all derived from
 * it; a test fails when the generated doc drifts from the committed one.
 */
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { parseProxyList } from './forwarded.ts';

/** A value came in wrong; the message names the option as the user spelled it. */
export class OptionError extends Error {}

export type Parser<T> = (raw: unknown, where: string) => T;

export interface OptionSpec<T = unknown> {
  /** Key in the config file and in the resolved config. */
  name: string;
  /** Command-line flag, with its dashes. */
  flag: string;
  /** Environment variable; absent for options that only make sense on the command line. */
  env?: string;
  /** Placeholder in --help. */
  valueName: string;
  doc: string;
  default: () => T;
  /** How the default reads in --help and the docs. */
  defaultDoc: string;
  parse: Parser<T>;
  /** May be set per app in the config file, overriding the server-wide value. */
  perApp: boolean;
  /** Only on the command line or in the environment (e.g. the config file's own path). */
  notInConfigFile?: boolean;
  /** May be given more than once on the command line; a list in the config file; ':'-separated in the environment. */
  multiple?: boolean;
  /** A switch without a value on the command line (`--reload`); true/false elsewhere. */
  boolean?: boolean;
}

function describe(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
}

export function positiveInteger(raw: unknown, where: string): number {
  const value = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new OptionError(`${where} must be a positive integer, got ${describe(raw)}`);
  }
  return value;
}

/** A switch: present on the command line, or true/false/1/0/yes/no elsewhere. */
export function flag(raw: unknown, where: string): boolean {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw.trim())) return true;
  if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw.trim())) return false;
  throw new OptionError(`${where} must be true or false, got ${describe(raw)}`);
}

export function nonNegativeInteger(raw: unknown, where: string): number {
  const value = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new OptionError(`${where} must be an integer, 0 or more, got ${describe(raw)}`);
  }
  return value;
}

export function seconds(raw: unknown, where: string): number {
  const value = typeof raw === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new OptionError(`${where} must be a number of seconds (0 or more), got ${describe(raw)}`);
  }
  return value;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A byte count: an integer, optionally with a binary unit (`16k`, `10MiB`, `1g`). */
export function byteSize(raw: unknown, where: string): number {
  if (typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0) return raw;
  const match = typeof raw === 'string' ? /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(raw) : null;
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new OptionError(`${where} must be a number of bytes, optionally with a unit (k, m, g), got ${describe(raw)}`);
  }
  return Number(match[1]) * unit;
}

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw, where) => {
    if (typeof raw !== 'string' || !values.includes(raw as T)) {
      throw new OptionError(`${where} must be one of ${values.join(', ')}, got ${describe(raw)}`);
    }
    return raw as T;
  };
}

export interface Address {
  host: string;
  port: number;
}

/** HOST:PORT, [IPv6]:PORT, or a bare PORT (on 127.0.0.1). */
export function address(raw: unknown, where: string): Address {
  const text = typeof raw === 'number' ? String(raw) : raw;
  const match = typeof text === 'string' ? /^(?:\[([^\]]+)\]|([^:\s]*)):(\d+)$|^(\d+)$/.exec(text.trim()) : null;
  const port = match ? Number(match[3] ?? match[4]) : NaN;
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new OptionError(`${where} must be HOST:PORT (port 0-65535), got ${describe(raw)}`);
  }
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

export function filePath(raw: unknown, where: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new OptionError(`${where} must be a file path, got ${describe(raw)}`);
  return raw;
}

/** A directory path, or '' for none. */
export function directoryOrNothing(raw: unknown, where: string): string {
  if (typeof raw !== 'string') throw new OptionError(`${where} must be a directory path (or empty for none), got ${describe(raw)}`);
  return raw.trim();
}

/** The XDG cache directory's interpool folder (~/.cache/interpool when XDG_CACHE_HOME is unset). */
export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME?.startsWith('/') ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'interpool');
}

/** A list of directory paths (given as a list, or one string per occurrence); config.ts checks they exist. */
export function directoryList(raw: unknown, where: string): string[] {
  const items = typeof raw === 'string' ? raw.split(':').filter((item) => item !== '') : raw;
  if (!Array.isArray(items) || items.some((item) => typeof item !== 'string' || item === '')) {
    throw new OptionError(`${where} must be a directory path or a list of them, got ${JSON.stringify(raw)}`);
  }
  return items as string[];
}

export const PYTHON_VERSIONS = ['3.14', '3.12'] as const;
/** --python: a Pyodide version, or "native" (an embedded CPython, native/). */
export const PYTHON_ENGINES = [...PYTHON_VERSIONS, 'native'] as const;
export type PythonEngine = (typeof PYTHON_ENGINES)[number];
/** --python-isolation: how the native engine's subinterpreters share CPython. */
export const PYTHON_ISOLATIONS = ['own-gil', 'shared-gil'] as const;
export type PythonIsolation = (typeof PYTHON_ISOLATIONS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const options = [
  {
    name: 'workers', flag: '--workers', env: 'INTERPOOL_WORKERS', valueName: 'N',
    doc: "Interpreters per app: each app gets its own pool of N worker threads, one interpreter each. 0 is embedded mode (mod_wsgi's): one interpreter that every concurrent request of the app shares, as threads share one GIL.",
    default: () => availableParallelism(), defaultDoc: 'the number of CPUs', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'bind', flag: '--bind', env: 'INTERPOOL_BIND', valueName: 'HOST:PORT',
    doc: 'Address to listen on. Port 0 picks a free port.',
    default: () => ({ host: '127.0.0.1', port: 8000 }), defaultDoc: '127.0.0.1:8000', parse: address, perApp: false,
  },
  {
    name: 'config', flag: '--config', env: 'INTERPOOL_CONFIG', valueName: 'FILE',
    doc: 'JSON config file: the options below by name, plus an "apps" list with per-app settings.',
    default: () => undefined, defaultDoc: 'none', parse: filePath, perApp: false, notInConfigFile: true,
  },
  {
    name: 'bodyLimit', flag: '--body-limit', env: 'INTERPOOL_BODY_LIMIT', valueName: 'BYTES',
    doc: 'Largest request body accepted (chunked included); larger ones get 413 before any worker is involved.',
    default: () => 10 * 1024 * 1024, defaultDoc: '10m (10 MiB)', parse: byteSize, perApp: false,
  },
  {
    name: 'logLevel', flag: '--log-level', env: 'INTERPOOL_LOG_LEVEL', valueName: 'LEVEL',
    doc: `Least severe log level written: ${LOG_LEVELS.join(', ')}.`,
    default: (): LogLevel => 'info', defaultDoc: 'info', parse: oneOf(LOG_LEVELS), perApp: false,
  },
  {
    name: 'logFormat', flag: '--log-format', env: 'INTERPOOL_LOG_FORMAT', valueName: 'FORMAT',
    doc: 'How log lines look: "pretty" (time, level, message and the fields that matter, coloured), "json" (one JSON object per line, for log collectors), or "auto": pretty when stdout is a terminal, JSON otherwise.',
    default: (): LogFormat => 'auto', defaultDoc: 'auto', parse: oneOf(LOG_FORMATS), perApp: false,
  },
  {
    name: 'gracefulTimeout', flag: '--graceful-timeout', env: 'INTERPOOL_GRACEFUL_TIMEOUT', valueName: 'SECONDS',
    doc: 'On SIGTERM/SIGINT, how long in-flight requests may take to finish before the server closes anyway.',
    default: () => 30, defaultDoc: '30', parse: seconds, perApp: false,
  },
  {
    name: 'timeout', flag: '--timeout', env: 'INTERPOOL_TIMEOUT', valueName: 'SECONDS',
    doc: 'A request running longer gets 504: its interpreter is interrupted (Python) and, if it does not return within --timeout-grace, replaced. 0 disables.',
    default: () => 30, defaultDoc: '30', parse: seconds, perApp: true,
  },
  {
    name: 'timeoutGrace', flag: '--timeout-grace', env: 'INTERPOOL_TIMEOUT_GRACE', valueName: 'SECONDS',
    doc: 'After a timeout, how long an interrupted interpreter may take to return before its worker is terminated and replaced (native engine: Python still running then, which caught the timeout and went on, is first made to unwind).',
    default: () => 5, defaultDoc: '5', parse: seconds, perApp: true,
  },
  {
    name: 'bootTimeout', flag: '--boot-timeout', env: 'INTERPOOL_BOOT_TIMEOUT', valueName: 'SECONDS',
    doc: 'An interpreter that has not finished importing its app by then is interrupted (Python) and, if it does not return within --timeout-grace, replaced: a boot failure, retried with back-off, its app answering 503 meanwhile (an import waiting in a sleep or a loop; natively an import blocked in a C call, a socket or a lock without timeout, cannot be interrupted and its thread counts as stuck). 0 disables.',
    default: () => 120, defaultDoc: '120', parse: seconds, perApp: true,
  },
  {
    name: 'minWorkers', flag: '--min-workers', env: 'INTERPOOL_MIN_WORKERS', valueName: 'N',
    doc: 'Interpreters kept even when idle; with fewer than --workers, the pool grows under load and interpreters idle for --idle-timeout stop. 0 means the same as --workers.',
    default: () => 0, defaultDoc: 'same as --workers', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'idleTimeout', flag: '--idle-timeout', env: 'INTERPOOL_IDLE_TIMEOUT', valueName: 'SECONDS',
    doc: 'How long an interpreter above --min-workers may stay idle before it stops.',
    default: () => 60, defaultDoc: '60', parse: seconds, perApp: true,
  },
  {
    name: 'maxRequests', flag: '--max-requests', env: 'INTERPOOL_MAX_REQUESTS', valueName: 'N',
    doc: 'Recycle an interpreter after it has served N requests (it finishes its response, a fresh one replaces it). 0 disables.',
    default: () => 0, defaultDoc: '0 (never)', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'maxRequestsJitter', flag: '--max-requests-jitter', env: 'INTERPOOL_MAX_REQUESTS_JITTER', valueName: 'N',
    doc: 'Each interpreter adds a random 0..N to --max-requests, so that they do not all restart at once.',
    default: () => 0, defaultDoc: '0', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'memoryLimit', flag: '--memory-limit', env: 'INTERPOOL_MEMORY_LIMIT', valueName: 'MB',
    doc: "Per interpreter, checked after each request (Pyodide: its WebAssembly memory; native: its own allocator's arenas and its C-heap blocks over 512 bytes, or the blocks alone under a shared GIL; JS: its V8 heap): over it, the interpreter finishes its response and is replaced. JS heaps are also capped hard at twice this. 0 disables.",
    default: () => 0, defaultDoc: '0 (no limit)', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'maxQueue', flag: '--max-queue', env: 'INTERPOOL_MAX_QUEUE', valueName: 'N',
    doc: 'Requests that may wait for a busy app (queued, or handed ahead of time to a busy interpreter); one more gets 503 with Retry-After at once, without touching an interpreter. 0 means 32 per worker (room for a 32-connection load on one interpreter).',
    default: () => 0, defaultDoc: '32 × --workers', parse: nonNegativeInteger, perApp: true,
  },
  {
    name: 'queueTimeout', flag: '--queue-timeout', env: 'INTERPOOL_QUEUE_TIMEOUT', valueName: 'SECONDS',
    doc: 'A request that waited this long for an interpreter (queued, or handed ahead of time to a busy one) gets 504 and never runs. 0 disables (--timeout still applies).',
    default: () => 0, defaultDoc: '0 (off)', parse: seconds, perApp: true,
  },
  {
    name: 'reload', flag: '--reload', env: 'INTERPOOL_RELOAD', valueName: '',
    doc: 'Development: watch each app\'s directory (and --python-path directories) and reload the app when a file changes.',
    default: () => false, defaultDoc: 'off', parse: flag, perApp: false, boolean: true,
  },
  {
    name: 'processes', flag: '--processes', env: 'INTERPOOL_PROCESSES', valueName: 'P',
    doc: "Run P server processes (node:cluster), each with its own pools, sharing the listening socket: process-level isolation like mod_wsgi's processes=P. A process that dies is replaced; SIGHUP and SIGTERM reach all of them.",
    default: () => 1, defaultDoc: '1', parse: positiveInteger, perApp: false,
  },
  {
    name: 'maxStuckThreads', flag: '--max-stuck-threads', env: 'INTERPOOL_MAX_STUCK_THREADS', valueName: 'N',
    doc: 'With --processes: a process holding more than N worker threads stuck in C code (terminated at --timeout-grace, still blocked in a native extension; they cannot be ended) is replaced: a new process starts, then the old one finishes its requests and exits.',
    default: () => 1, defaultDoc: '1', parse: nonNegativeInteger, perApp: false,
  },
  {
    name: 'python', flag: '--python', env: 'INTERPOOL_PYTHON', valueName: 'VERSION',
    doc: `Python engine for .py apps: ${PYTHON_VERSIONS.join(' (Pyodide 314), ')} (Pyodide 0.27), or native: CPython subinterpreters, one per worker, with their own GIL on CPython 3.12 and later (see --cpython; build with \`npm run build:cpython && npm run build:native\`).`,
    default: (): PythonEngine => '3.14', defaultDoc: '3.14', parse: oneOf(PYTHON_ENGINES), perApp: true,
  },
  {
    name: 'cpython', flag: '--cpython', env: 'INTERPOOL_CPYTHON', valueName: 'PATH',
    doc: 'With --python native: the python3.X executable whose CPython is embedded (the native engine must be built for it: `INTERPOOL_CPYTHON=PATH npm run build:native`).',
    default: (): string | undefined => undefined, defaultDoc: 'the newest built: the project-built CPython, then the system\'s', parse: filePath, perApp: true,
  },
  {
    name: 'pythonIsolation', flag: '--python-isolation', env: 'INTERPOOL_PYTHON_ISOLATION', valueName: 'MODE',
    doc: 'With --python native on CPython 3.12 or later: own-gil (each subinterpreter has its own GIL and allocator and runs Python in parallel; a C extension that does not declare support for that fails to import) or shared-gil (the subinterpreters share the main GIL, as mod_wsgi\'s do: every C extension loads, CPU work is not parallel; use --processes). CPython 3.11 always shares.',
    default: (): PythonIsolation => 'own-gil', defaultDoc: 'own-gil', parse: oneOf(PYTHON_ISOLATIONS), perApp: true,
  },
  {
    name: 'cacheDir', flag: '--cache-dir', env: 'INTERPOOL_CACHE_DIR', valueName: 'DIR',
    doc: 'Where Pyodide keeps its runtime snapshot between starts (created if missing), so that the first interpreter of a server started again restores it instead of booting cold; keyed by the Pyodide build and interpool\'s adapter, rewritten when either changes. The native engine keeps the adapter\'s compiled code there too (keyed by the CPython and the adapter). An empty value keeps nothing on disk.',
    default: (): string => defaultCacheDir(), defaultDoc: '$XDG_CACHE_HOME/interpool, else ~/.cache/interpool', parse: directoryOrNothing, perApp: false,
  },
  {
    name: 'allocatorTuning', flag: '--allocator-tuning', env: 'INTERPOOL_ALLOCATOR_TUNING', valueName: 'MODE',
    doc: 'on or off. On Linux with glibc, `serve` starts itself again once, in place (the same process id), with glibc\'s allocator thresholds fixed at 128 KiB (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_; a variable already set keeps its value), which glibc reads only when a process starts: memory freed after a boot or a load goes back to the system instead of staying in the allocator (docs/python.md). Not done when an app runs on the native engine, whose Python objects come from that allocator: fixed thresholds made growing a large bytes object tens of times slower. off leaves the allocator to the environment.',
    default: () => true, defaultDoc: 'on', parse: flag, perApp: false, notInConfigFile: true,
  },
  {
    name: 'pythonPath', flag: '--python-path', env: 'INTERPOOL_PYTHON_PATH', valueName: 'DIR',
    doc: "A host directory made importable, read-only, for .py apps (e.g. a virtualenv's site-packages). Repeatable.",
    default: (): string[] => [], defaultDoc: 'none', parse: directoryList, perApp: true, multiple: true,
  },
  // HTTP hardening (request-guard.ts, http-limits.ts, forwarded.ts): gunicorn's limits and names.
  {
    name: 'limitRequestLine', flag: '--limit-request-line', env: 'INTERPOOL_LIMIT_REQUEST_LINE', valueName: 'BYTES',
    doc: 'Longest request line (method, target, version) accepted; a longer one gets 414.',
    default: () => 4094, defaultDoc: '4094', parse: positiveInteger, perApp: false,
  },
  {
    name: 'limitRequestFields', flag: '--limit-request-fields', env: 'INTERPOOL_LIMIT_REQUEST_FIELDS', valueName: 'N',
    doc: 'Most header fields in a request; more get 431.',
    default: () => 100, defaultDoc: '100', parse: positiveInteger, perApp: false,
  },
  {
    name: 'limitRequestFieldSize', flag: '--limit-request-field-size', env: 'INTERPOOL_LIMIT_REQUEST_FIELD_SIZE', valueName: 'BYTES',
    doc: 'Longest header line accepted, counted with its CRLF as gunicorn counts it ("Name: value\\r\\n": at 8190 the longest line is 8188 bytes before its CRLF); a longer one gets 431.',
    default: () => 8190, defaultDoc: '8190', parse: positiveInteger, perApp: false,
  },
  {
    name: 'headersTimeout', flag: '--headers-timeout', env: 'INTERPOOL_HEADERS_TIMEOUT', valueName: 'SECONDS',
    doc: 'Time a client has to send a request line and headers, from its first byte; a slower one gets 408 and is disconnected. 0 disables.',
    default: () => 20, defaultDoc: '20', parse: seconds, perApp: false,
  },
  {
    name: 'bodyTimeout', flag: '--body-timeout', env: 'INTERPOOL_BODY_TIMEOUT', valueName: 'SECONDS',
    doc: 'Time a client has to send a whole request, headers and body, from its first byte; a slower one gets 408 and is disconnected. Bodies are read on the main thread, so a slow one never holds a worker. 0 disables.',
    default: () => 120, defaultDoc: '120', parse: seconds, perApp: false,
  },
  {
    name: 'keepAliveTimeout', flag: '--keep-alive-timeout', env: 'INTERPOOL_KEEP_ALIVE_TIMEOUT', valueName: 'SECONDS',
    doc: 'How long an idle keep-alive connection is kept open for its next request. 0 turns keep-alive off (Connection: close on every response).',
    default: () => 5, defaultDoc: '5', parse: seconds, perApp: false,
  },
  {
    name: 'maxConnections', flag: '--max-connections', env: 'INTERPOOL_MAX_CONNECTIONS', valueName: 'N',
    doc: 'Open client connections at most; connections past it are closed as soon as they are accepted, each one counted (interpool_connections_refused_total) and logged (a warning line at most every 10 s). At the cap the server makes room: idle connections are closed, and until it has room again a request head must arrive, and a keep-alive connection may stay idle, only a quarter of --headers-timeout.',
    default: () => 1000, defaultDoc: '1000', parse: positiveInteger, perApp: false,
  },
  {
    name: 'forwardedAllowIps', flag: '--forwarded-allow-ips', env: 'INTERPOOL_FORWARDED_ALLOW_IPS', valueName: 'LIST',
    doc: 'Peers trusted to set X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Ssl and Forwarded (comma-separated addresses, CIDR ranges, or * for any): from them those headers set REMOTE_ADDR, wsgi.url_scheme and HTTP_HOST; from anyone else they change nothing. See docs/deployment-nginx.md.',
    default: (): string[] => ['127.0.0.1', '::1'], defaultDoc: '127.0.0.1,::1',
    parse: (raw: unknown, where: string): string[] => {
      const list = parseProxyList(raw);
      if (typeof list === 'string') throw new OptionError(`${where} ${list}`);
      return list;
    },
    perApp: false,
  },
  // The apps' shared store (docs/shared-store.md).
  {
    name: 'sharedStore', flag: '--shared-store', env: 'INTERPOOL_SHARED_STORE', valueName: 'URL',
    doc: 'Where each app\'s shared store (environ["interpool.shared"], interpool.shared) lives: "memory", in this server process, outside every interpreter (it survives recycling, crashes and reloads; with --processes each process has its own); or redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS), shared by every process and machine that names it, each app under its own prefix. See docs/shared-store.md.',
    default: () => 'memory', defaultDoc: 'memory', perApp: false,
    parse: (raw: unknown, where: string): string => {
      if (typeof raw === 'string' && (raw === 'memory' || (/^rediss?:\/\/[^\s]+$/.test(raw) && URL.canParse(raw) && new URL(raw).hostname !== ''))) return raw;
      // Without the value: a Redis URL may carry a password.
      throw new OptionError(`${where} must be memory or a redis:// or rediss:// URL (redis://[:PASSWORD@]HOST:PORT/DB)`);
    },
  },
  {
    name: 'sharedStoreMaxValue', flag: '--shared-store-max-value', env: 'INTERPOOL_SHARED_STORE_MAX_VALUE', valueName: 'BYTES',
    doc: 'Largest value an app may put in its shared store (bytes of its stored form, JSON); a larger one raises ValueError in Python, RangeError in JS, naming this option.',
    default: () => 1024 * 1024, defaultDoc: '1m', parse: byteSize, perApp: false,
  },
  {
    name: 'sharedStoreMaxBytes', flag: '--shared-store-max-bytes', env: 'INTERPOOL_SHARED_STORE_MAX_BYTES', valueName: 'BYTES',
    doc: 'Most bytes (keys and values) one app\'s in-process shared store may hold; a write past it raises ValueError in Python, RangeError in JS, naming this option (nothing is dropped). With a Redis store, Redis\'s own maxmemory applies instead.',
    default: () => 64 * 1024 * 1024, defaultDoc: '64m', parse: byteSize, perApp: false,
  },
  // The admin dashboard, /metrics and their actions (docs/admin.md).
  {
    name: 'adminPath', flag: '--admin-path', env: 'INTERPOOL_ADMIN_PATH', valueName: 'PATH',
    doc: 'Where the admin dashboard, its JSON API and <PATH>/metrics are served; /metrics too, unless an app is mounted over it. For the clients the admin admits it takes precedence over an app mounted there; others get the app (docs/admin.md).',
    default: () => '/_interpool', defaultDoc: '/_interpool', perApp: false,
    parse: (raw: unknown, where: string): string => {
      if (typeof raw !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(raw)) {
        throw new OptionError(`${where} must be a path like /_interpool (segments of letters, digits and . _ ~ -, no trailing slash), got ${describe(raw)}`);
      }
      return raw;
    },
  },
  {
    name: 'adminToken', flag: '--admin-token', env: 'INTERPOOL_ADMIN_TOKEN', valueName: 'TOKEN',
    doc: 'Require this token from every client of the dashboard and /metrics, loopback ones too (behind a reverse proxy on this machine every client is loopback): "Authorization: Bearer TOKEN", or the dashboard\'s sign-in, which keeps it in a cookie. Five wrong tokens a minute from one client get 429. At least 16 characters; prefer the environment variable (a flag shows in ps).',
    default: (): string | undefined => undefined, defaultDoc: 'none (loopback clients without forwarding headers only)', perApp: false,
    parse: (raw: unknown, where: string): string => {
      if (typeof raw !== 'string' || raw.length < 16 || !/^[\x21-\x7e]+$/.test(raw)) {
        throw new OptionError(`${where} must be at least 16 printable characters without spaces`);
      }
      return raw;
    },
  },
  {
    name: 'adminBind', flag: '--admin-bind', env: 'INTERPOOL_ADMIN_BIND', valueName: 'HOST:PORT',
    doc: 'Serve the dashboard and /metrics on their own listener at this address instead of the public one (where the admin path and /metrics then go to the apps). The same access rules apply.',
    default: (): Address | undefined => undefined, defaultDoc: 'none (on the public listener)', parse: address, perApp: false,
  },
] as const satisfies readonly OptionSpec[];

