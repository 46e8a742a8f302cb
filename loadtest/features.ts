/**
 * What this build of the server can do, read from its own option table (the same table
 * the CLI parses), so that rows needing a feature light up as soon as it lands and are
 * marked "not available in this build" until then — never faked.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ServerFeatures {
  /** `--workers 0`: embedded mode, one interpreter shared by every concurrent request. */
  inline: boolean;
  /** `--processes P`: P server processes with a pool each. */
  processes: boolean;
  /** `--python`: the Python interpreter kind is configurable. */
  pythonOption: boolean;
  /** The Python interpreter module exists in runtime/. */
  pythonRuntime: boolean;
  /** SIGHUP reloads apps without downtime (it came with the --reload option). */
  reload: boolean;
  /** Why `--python native` cannot run in this build, or undefined when it can (an addon is built). */
  nativeAbsent: string | undefined;
}

interface OptionLike {
  name: string;
  parse(raw: unknown, where: string): unknown;
}

function acceptsZeroWorkers(options: readonly OptionLike[]): boolean {
  const workers = options.find((option) => option.name === 'workers');
  if (!workers) return false;
  try {
    return workers.parse('0', '--workers') === 0;
  } catch {
    return false;
  }
}

/** Read the features of the interpool under `root` (its server/options.ts). */
export async function detectFeatures(root: string): Promise<ServerFeatures> {
  const { options } = (await import(pathToFileURL(join(root, 'server/options.ts')).href)) as { options: readonly OptionLike[] };
  const names = new Set<string>(options.map((option) => option.name));
  return {
    inline: acceptsZeroWorkers(options),
    processes: names.has('processes'),
    pythonOption: names.has('python'),
    pythonRuntime: existsSync(join(root, 'runtime/interpreters/python.ts')),
    reload: names.has('reload'),
    nativeAbsent: nativeAbsentReason(root),
  };
}

/** The native engine needs its module and an addon built for some CPython (build/native/cpython-X.Y). */
function nativeAbsentReason(root: string): string | undefined {
  if (!existsSync(join(root, 'runtime/interpreters/native.ts'))) return 'the native engine (runtime/interpreters/native.ts) is not in this build';
  const builds = join(root, 'build/native');
  const built = existsSync(builds) && readdirSync(builds).some((dir) => existsSync(join(builds, dir, 'interpool_native.node')));
  return built ? undefined : 'no native addon is built here (npm run build:cpython && npm run build:native)';
}
