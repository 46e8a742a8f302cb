/**
 * The native engine's addon builds on disk (build/native/cpython-X.Y/, written by
 * scripts/build-native.ts) and the choice of one for an app. Read by server/ (to refuse
 * `--python native` without a build, and to say which CPython an app runs on) and by
 * runtime/interpreters/native.ts (to load it): plain data, no addon is loaded here.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = join(PROJECT, 'build', 'native');
const ADDON_FILE = 'interpool_native.node';

/** build/native/cpython-X.Y/cpython.json, plus where its addon is. */
export interface NativeBuild {
  /** "3.13" */
  version: string;
  /** The python3.X executable the embedded CPython is configured from. */
  executable: string;
  /** Where build:native found it: "project", "system", "PATH" or "INTERPOOL_CPYTHON". */
  source: string;
  /** The addon to load. */
  addon: string;
}

/** How to get a build, for the one-line refusal. */
export const HOW_TO_BUILD = 'build the native engine with `npm run build:cpython && npm run build:native` '
  + '(CPython 3.13 from Debian\'s source package), or `apt-get install python3-dev && npm run build:native` (the system\'s CPython)';

/** Every addon built, newest CPython first. */
export function listNativeBuilds(dir: string = BUILD_DIR): NativeBuild[] {
  if (!existsSync(dir)) return [];
  const builds: NativeBuild[] = [];
  for (const name of readdirSync(dir)) {
    const described = join(dir, name, 'cpython.json');
    const addon = join(dir, name, ADDON_FILE);
    if (!existsSync(described) || !existsSync(addon)) continue;
    try {
      const { version, executable, source } = JSON.parse(readFileSync(described, 'utf8')) as Record<string, unknown>;
      if (typeof version === 'string' && typeof executable === 'string') {
        builds.push({ version, executable, source: typeof source === 'string' ? source : 'unknown', addon });
      }
    } catch {
      // A half-written description is not a build.
    }
  }
  const minor = (build: NativeBuild) => Number(build.version.split('.')[1]);
  return builds.sort((a, b) => minor(b) - minor(a));
}

/**
 * The build for `cpython` (a python3.X executable, compared after resolving links), or
 * the newest one when it is undefined. A string says why there is none.
 */
export function chooseNativeBuild(cpython: string | undefined, builds: readonly NativeBuild[] = listNativeBuilds()): NativeBuild | string {
  if (builds.length === 0) return `--python native: the native engine is not built; ${HOW_TO_BUILD}`;
  if (cpython === undefined || cpython === '') return builds[0]!;
  const wanted = canonical(cpython);
  const build = builds.find((candidate) => canonical(candidate.executable) === wanted);
  if (build) return build;
  const built = builds.map((b) => b.executable).join(', ');
  // A build can only be asked for a CPython that is there.
  if (!existsSync(cpython)) return `--cpython ${cpython}: no such file (the native engine is built for ${built})`;
  if (!/python3\.\d+$/.test(basename(wanted))) return `--cpython ${cpython}: not a CPython executable (python3.X) (the native engine is built for ${built})`;
  return `--cpython ${cpython}: the native engine is built for ${built} only; `
    + `build it for this one with \`INTERPOOL_CPYTHON=${cpython} npm run build:native\``;
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Whether this CPython's subinterpreters get their own GIL (PEP 684, 3.12 and later). */
export function hasOwnGil(version: string): boolean {
  return Number(version.split('.')[1]) >= 12;
}

/** The patch (scripts/cpython-patches/) that frees an ended own-GIL subinterpreter's interned strings. */
const FREES_ENDED_INTERPRETERS_PATCH = 'subinterpreter-interned-strings.patch';

/**
 * Whether the CPython `version` at `executable` gives back all of an ended own-GIL
 * subinterpreter's memory: 3.14 and later do (gh-113190), and so does a 3.13 built by
 * scripts/build-cpython.sh, whose prefix records the patches it applied. Any other 3.12 or
 * 3.13 leaves the strings every subinterpreter interned, and with them ~1.7 MiB per
 * recycle (docs/python.md).
 */
export function freesEndedInterpreters(executable: string, version: string): boolean {
  if (Number(version.split('.')[1]) >= 14) return true;
  try {
    const prefix = dirname(dirname(canonical(executable)));
    return readFileSync(join(prefix, 'interpool-patches'), 'utf8').includes(FREES_ENDED_INTERPRETERS_PATCH);
  } catch {
    return false;
  }
}
