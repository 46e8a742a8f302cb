/**
 * The servers a scenario can be measured on, each as a recipe to launch it on a given
 * port: interpool (TypeScript or Python app, N workers), a plain Fastify process (the
 * ceiling for a Node HTTP server on this machine), and the Python peers. A target that
 * cannot run here carries the reason (`absent`), so a report can say so instead of
 * dropping the row.
 */
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import type { LaunchSpec } from './server-process.ts';

export const ROOT = resolve(import.meta.dirname, '..');

export type TargetRole = 'baseline' | 'interpool' | 'peer';

export interface Target {
  /** Stable key in the JSON results. */
  id: string;
  label: string;
  role: TargetRole;
  /** Why this target cannot run in this build or on this machine. */
  absent?: string;
  /** The app file it serves, relative to the repository (for the report). */
  appFile?: string;
  /** Seconds to wait for the first correct response (Pyodide boots take a while). */
  readyTimeoutSec: number;
  launch(port: number): LaunchSpec;
}

export interface InterpoolOptions {
  /** The interpool being measured (see build.ts). */
  root: string;
  /** App file, relative to `root`. */
  appFile: string;
  workers: number;
  /** --processes P (not in this build yet: the caller checks features first). */
  processes?: number;
  python?: string;
  logLevel?: string;
  /** Extra words for the label. */
  note?: string;
}

/** pino's level numbers: 40 is warn. */
const PINO_WARN = 40;

/** An interpool log line at warn or above, or anything that is not a pino line (a crash). */
function isNotableInterpoolLine(line: string): boolean {
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level !== 'number' || level >= PINO_WARN;
  } catch {
    return true;
  }
}

export function interpoolTarget(options: InterpoolOptions): Target {
  const { root, appFile, workers, processes, python, logLevel = 'warn', note } = options;
  const kind = appFile.endsWith('.py') ? `Python${python ? ` ${python}` : ''}` : 'TS';
  const id = ['interpool', basename(appFile).replace(/\W/g, '-'), `w${workers}`, processes ? `p${processes}` : '', python ? `py${python}` : '', logLevel !== 'warn' ? `log-${logLevel}` : '']
    .filter(Boolean).join('-');
  const label = [`interpool ${kind}`, processes ? `--processes ${processes}` : '', `--workers ${workers}`, note ?? ''].filter(Boolean).join(', ');
  return {
    id, label, role: 'interpool', appFile,
    absent: existsSync(join(root, appFile)) ? undefined : `${appFile} does not exist in this build`,
    readyTimeoutSec: appFile.endsWith('.py') ? 180 : 30,
    launch: (port) => ({
      command: process.execPath,
      cwd: root,
      isNotable: isNotableInterpoolLine,
      args: [
        'bin/interpool.js', 'serve', `/=${appFile}`,
        '--workers', String(workers),
        ...(processes ? ['--processes', String(processes)] : []),
        ...(python ? ['--python', python] : []),
        '--bind', `127.0.0.1:${port}`,
        '--log-level', logLevel,
      ],
    }),
  };
}

/** loadtest/plain-fastify.ts: one Fastify route answering hello's bytes, nothing else. */
export function plainFastifyTarget(): Target {
  return {
    id: 'plain-fastify', label: 'plain Fastify (same bytes, no pool)', role: 'baseline', appFile: 'loadtest/plain-fastify.ts',
    readyTimeoutSec: 30,
    launch: (port) => ({ command: process.execPath, cwd: ROOT, args: ['loadtest/plain-fastify.ts', String(port)] }),
  };
}

/** The first executable called `name` on PATH, or in /usr/sbin and /sbin (apache2). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const SETUP_HINT = 'run `npm run loadtest:setup-peers`';

/** A Python app file for the peers: its absolute path, and how the report names it. */
export interface PeerApp {
  path: string;
  file: string;
}

/** gunicorn, threaded workers: 2 processes × 4 threads. */
export function gunicornTarget({ path, file }: PeerApp): Target {
  const gunicorn = findExecutable('gunicorn');
  return {
    id: 'gunicorn', label: 'gunicorn -k gthread -w 2 --threads 4', role: 'peer', appFile: file,
    absent: gunicorn ? undefined : `gunicorn is not installed (${SETUP_HINT})`,
    readyTimeoutSec: 30,
    launch: (port) => ({
      command: gunicorn!, cwd: ROOT,
      args: ['-k', 'gthread', '-w', '2', '--threads', '4', '--bind', `127.0.0.1:${port}`,
        '--chdir', dirname(path), '--log-level', 'warning', `${basename(path, '.py')}:application`],
    }),
  };
}

/**
 * The same gunicorn on the CPython the native engine embeds (the newest built, as
 * `--python native` picks it), its pure-Python package read from where the system
 * installed it. gunicorn on the system's CPython measures the server and the interpreter
 * together; this row measures the server alone against native interpool, on one
 * interpreter (project-built 3.13 runs fib ~5% slower than Debian's 3.11).
 */
export function gunicornOnCPythonTarget({ path, file }: PeerApp, cpython: { version: string; executable: string } | undefined): Target {
  const packages = GUNICORN_PACKAGES.find((dir) => existsSync(join(dir, 'gunicorn', '__init__.py')));
  const base = gunicornTarget({ path, file });
  return {
    ...base,
    id: 'gunicorn-native-cpython', label: `gunicorn -k gthread -w 2 --threads 4, on CPython ${cpython?.version ?? '?'} (the native engine's)`,
    absent: !cpython ? 'no native engine is built here (npm run build:cpython && npm run build:native)'
      : !packages ? `gunicorn is not installed (${SETUP_HINT})` : undefined,
    launch: (port) => {
      const spec = base.launch(port);
      return { ...spec, command: cpython!.executable, args: ['-m', 'gunicorn', ...spec.args], env: { PYTHONPATH: packages! } };
    },
  };
}

/** Where Debian (and pip for the system's python3) put gunicorn's package. */
const GUNICORN_PACKAGES = ['/usr/lib/python3/dist-packages', '/usr/local/lib/python3/dist-packages'];

/** uWSGI with its HTTP router: 2 processes × 4 threads. */
export function uwsgiTarget({ path, file }: PeerApp): Target {
  const uwsgi = findExecutable('uwsgi');
  const plugin = existsSync('/usr/lib/uwsgi/plugins/python3_plugin.so');
  return {
    id: 'uwsgi', label: 'uWSGI --http, 2 processes × 4 threads', role: 'peer', appFile: file,
    absent: !uwsgi ? `uwsgi is not installed (${SETUP_HINT})` : !plugin ? `uWSGI's python3 plugin is not installed (${SETUP_HINT})` : undefined,
    readyTimeoutSec: 30,
    launch: (port) => ({
      command: uwsgi!, cwd: ROOT,
      args: ['--plugins', 'http,python3', '--http', `127.0.0.1:${port}`, '--http-keepalive', '--http-auto-chunked',
        '--master', '--die-on-term', '--processes', '2', '--threads', '4',
        '--wsgi-file', path, '--callable', 'application', '--need-app', '--disable-logging'],
    }),
  };
}

/** Apache httpd (event MPM) with mod_wsgi in daemon mode: processes=2 threads=4. */
export function apacheTarget({ path, file }: PeerApp): Target {
  const apache = findExecutable('apache2') ?? findExecutable('httpd');
  const modules = '/usr/lib/apache2/modules';
  const hasWsgi = existsSync(join(modules, 'mod_wsgi.so'));
  return {
    id: 'apache-mod-wsgi', label: 'Apache mod_wsgi daemon, processes=2 threads=4', role: 'peer', appFile: file,
    absent: !apache ? `apache2 is not installed (${SETUP_HINT})` : !hasWsgi ? `mod_wsgi is not installed (${SETUP_HINT})` : undefined,
    readyTimeoutSec: 30,
    launch: (port) => {
      // Apache's daemon processes run as www-data when started as root: the directory
      // holding the config and mod_wsgi's sockets must be readable by them.
      const dir = mkdtempSync(join(tmpdir(), 'interpool-apache-'));
      chmodSync(dir, 0o755);
      const conf = join(dir, 'httpd.conf');
      writeFileSync(conf, apacheConfig(port, dir, path, modules));
      return {
        command: apache!, cwd: dir, args: ['-f', conf, '-DFOREGROUND'], logFiles: [join(dir, 'error.log')],
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  };
}

function apacheConfig(port: number, dir: string, appPath: string, modules: string): string {
  const asRoot = process.getuid?.() === 0;
  return `# Written by loadtest/targets.ts for one load-test run.
ServerRoot "${dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile "${dir}/httpd.pid"
ErrorLog "${dir}/error.log"
LogLevel warn
LoadModule mpm_event_module ${modules}/mod_mpm_event.so
LoadModule authz_core_module ${modules}/mod_authz_core.so
LoadModule wsgi_module ${modules}/mod_wsgi.so
${asRoot ? 'User www-data\nGroup www-data' : ''}
StartServers 2
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
WSGISocketPrefix "${dir}/wsgi"
WSGIDaemonProcess loadtest processes=2 threads=4 python-path=${dirname(appPath)}
WSGIProcessGroup loadtest
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / "${appPath}"
<Directory />
  AllowOverride None
</Directory>
<Directory "${dirname(appPath)}">
  AllowOverride None
  Require all granted
</Directory>
`;
}
