/**
 * Builds the native engine's Node-API addon (native/) once per suitable CPython found,
 * into build/native/cpython-X.Y/, with a cpython.json that says which CPython it embeds
 * (runtime/interpreters/native.ts reads it). A CPython is suitable when it has its
 * shared library and headers (`python3.X-config --includes --ldflags --embed`).
 *
 * Where CPythons are looked for, first found per X.Y wins: INTERPOOL_CPYTHON alone when
 * set (a python3.X executable); else the project-built ones (.cpython/, `npm run
 * build:cpython`), the system's (/usr/bin), then python3.X-config on PATH.
 *
 * Never fails: with nothing to build it prints one line naming what is missing, so it
 * can run from postinstall. Up-to-date builds are skipped, so a second run is quick.
 *
 * Usage: node scripts/build-native.ts [--force]      (npm run build:native)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NATIVE = join(PROJECT, 'native');
const OUTPUT = join(PROJECT, 'build', 'native');
const ADDON_FILE = 'interpool_native.node';
/** The oldest CPython the engine embeds (Debian 12's). */
const OLDEST_MINOR = 11;

/** What build/native/cpython-X.Y/cpython.json holds. */
export interface BuiltCPython {
  /** "3.13" */
  version: string;
  /** The python3.X executable the main interpreter is configured from. */
  executable: string;
  /** Where it was found: "project", "system" or "PATH" / "INTERPOOL_CPYTHON". */
  source: string;
  includeDir: string;
  libraryDir: string;
  library: string;
}

function log(line: string): void {
  console.log(`build:native: ${line}`);
}

/** The config scripts to try, in order of preference, each with where it was found. */
function candidates(): { config: string; source: string }[] {
  const chosen = process.env.INTERPOOL_CPYTHON;
  if (chosen) return [{ config: `${chosen}-config`, source: 'INTERPOOL_CPYTHON' }];
  const found: { config: string; source: string }[] = [];
  const projectDir = join(PROJECT, '.cpython');
  for (const prefix of existsSync(projectDir) ? readdirSync(projectDir).sort().reverse() : []) {
    const bin = join(projectDir, prefix, 'bin');
    for (const name of existsSync(bin) ? readdirSync(bin) : []) {
      if (/^python3\.\d+-config$/.test(name)) found.push({ config: join(bin, name), source: 'project' });
    }
  }
  const names = ['python3-config', ...Array.from({ length: 10 }, (_, i) => `python3.${OLDEST_MINOR + 9 - i}-config`)];
  for (const name of names) {
    if (existsSync(join('/usr/bin', name))) found.push({ config: join('/usr/bin', name), source: 'system' });
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter((entry) => entry !== '' && entry !== '/usr/bin')) {
    for (const name of names) if (existsSync(join(dir, name))) found.push({ config: join(dir, name), source: 'PATH' });
  }
  return found;
}

function runConfig(config: string, ...args: string[]): string | undefined {
  const result = spawnSync(config, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** The CPython behind a config script, or why it is not suitable. */
function probe(config: string, source: string): BuiltCPython | string {
  const includes = runConfig(config, '--includes');
  const ldflags = runConfig(config, '--ldflags', '--embed');
  const prefix = runConfig(config, '--prefix');
  if (includes === undefined || ldflags === undefined || prefix === undefined) return `${config} does not run`;
  const library = /(?:^|\s)-l(python3\.\d+)\b/.exec(ldflags)?.[1];
  if (!library) return `${config} names no libpython`;
  const version = library.slice('python'.length);
  if (Number(version.split('.')[1]) < OLDEST_MINOR) return `${config} is CPython ${version} (the engine needs 3.${OLDEST_MINOR} or later)`;
  const includeDir = includes.split(/\s+/).map((flag) => flag.replace(/^-I/, '')).find((dir) => existsSync(join(dir, 'Python.h')));
  if (!includeDir) return `${config}: Python.h is missing (apt-get install python3-dev)`;
  const libraryDirs = [...ldflags.matchAll(/(?:^|\s)-L(\S+)/g)].map((match) => match[1]!);
  const libraryDir = libraryDirs.find((dir) => existsSync(join(dir, `lib${library}.so`)));
  if (!libraryDir) return `${config}: lib${library}.so is missing (CPython built without --enable-shared?)`;
  const executable = join(prefix, 'bin', library);
  if (!existsSync(executable)) return `${config}: ${executable} is missing`;
  return { version, executable, source, includeDir, libraryDir, library };
}

function nodeGyp(): { command: string; args: string[] } {
  const require = createRequire(import.meta.url);
  try {
    return { command: process.execPath, args: [require.resolve('node-gyp/bin/node-gyp.js')] };
  } catch {
    // Not installed as a dependency: npm's own copy, which npm names to lifecycle scripts.
    return { command: process.env.npm_config_node_gyp ?? 'node-gyp', args: [] };
  }
}

/**
 * Node's headers, found on this machine so that node-gyp downloads nothing: the `node`
 * package's copy (when its version ships one), this Node's own prefix, or the system's
 * Node (/usr/include/node). Node-API is ABI-stable, so any Node 18+ headers build an
 * addon that Node 24 loads. Undefined: node-gyp fetches them.
 */
function nodeDir(): string | undefined {
  const candidates = [
    join(PROJECT, 'node_modules', 'node', 'node_modules', `node-${process.platform}-${process.arch}`),
    dirname(dirname(process.execPath)),
    '/usr/local',
    '/usr',
  ];
  return candidates.find((dir) => existsSync(join(dir, 'include', 'node', 'node_api.h')) && existsSync(join(dir, 'include', 'node', 'common.gypi')));
}

function newestSource(): number {
  const files = [join(NATIVE, 'binding.gyp'), ...readdirSync(join(NATIVE, 'src')).map((name) => join(NATIVE, 'src', name))];
  return Math.max(...files.map((file) => statSync(file).mtimeMs));
}

function upToDate(target: string, cpython: BuiltCPython): boolean {
  const described = join(target, 'cpython.json');
  if (!existsSync(join(target, ADDON_FILE)) || !existsSync(described)) return false;
  const before = JSON.parse(readFileSync(described, 'utf8')) as BuiltCPython;
  return before.executable === cpython.executable && statSync(join(target, ADDON_FILE)).mtimeMs >= newestSource();
}

function build(cpython: BuiltCPython, force: boolean): boolean {
  const target = join(OUTPUT, `cpython-${cpython.version}`);
  if (!force && upToDate(target, cpython)) {
    log(`CPython ${cpython.version} (${cpython.executable}): up to date`);
    return true;
  }
  const gyp = nodeGyp();
  const headers = nodeDir();
  const started = performance.now();
  const result = spawnSync(gyp.command, [
    ...gyp.args, 'rebuild', '--directory', NATIVE, ...(headers ? ['--nodedir', headers] : []), '--',
    `-Dpython_include_dir=${cpython.includeDir}`, `-Dpython_library_dir=${cpython.libraryDir}`,
    `-Dpython_library=${cpython.library}`, `-Daddon_api_include_dir=${dirname(createRequire(import.meta.url).resolve('node-addon-api/package.json'))}`,
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
    const first = output.split('\n').find((line) => /error/i.test(line)) ?? output.trim().split('\n').at(-1);
    log(`CPython ${cpython.version} (${cpython.executable}): the addon failed to build: ${first}`);
    return false;
  }
  mkdirSync(target, { recursive: true });
  // A new file renamed over the old one: a process that has the old one loaded keeps it.
  copyFileSync(join(NATIVE, 'build', 'Release', ADDON_FILE), join(target, `${ADDON_FILE}.tmp`));
  renameSync(join(target, `${ADDON_FILE}.tmp`), join(target, ADDON_FILE));
  writeFileSync(join(target, 'cpython.json'), `${JSON.stringify(cpython, null, 2)}\n`);
  rmSync(join(NATIVE, 'build'), { recursive: true, force: true });
  log(`CPython ${cpython.version} (${cpython.source}, ${cpython.executable}): built ${join('build', 'native', `cpython-${cpython.version}`, ADDON_FILE)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return true;
}

function main(): void {
  const force = process.argv.includes('--force');
  const found = new Map<string, BuiltCPython>();
  const rejected: string[] = [];
  for (const { config, source } of candidates()) {
    const cpython = probe(config, source);
    if (typeof cpython === 'string') rejected.push(cpython);
    else if (!found.has(cpython.version)) found.set(cpython.version, cpython);
  }
  if (found.size === 0) {
    const why = rejected.length > 0 ? rejected.join('; ') : 'no python3.X-config found';
    log(`skipped: no CPython with its shared library and headers (${why}); run \`npm run build:cpython\` or \`apt-get install python3-dev\``);
    return;
  }
  for (const cpython of found.values()) build(cpython, force);
}

try {
  main();
} catch (error) {
  // Never fail an install over the optional engine.
  log(`skipped: ${(error as Error).message.split('\n')[0]}`);
}
