/**
 * The Python engines the Python suites run against: Pyodide (the default) and the native
 * engine on one CPython. A process embeds one CPython, so each test process tests one:
 * INTERPOOL_TEST_CPYTHON names it (vitest.config.ts runs the native suites once more,
 * in processes of their own, with 3.11), else 3.13 (the project-built one). CI builds
 * both; elsewhere an engine that is not built is skipped with a line saying how to build it.
 */
import { listNativeBuilds } from '../../native/builds.ts';

export interface PythonEngine {
  /** "pyodide", "native CPython 3.13" */
  name: string;
  /** serve arguments that select it */
  args: string[];
  /** why it is skipped, when it is */
  skip?: string;
  /** The native engine on a CPython whose subinterpreters share the main GIL and allocator (3.11). */
  sharedGil?: boolean;
}

const TESTED_CPYTHON = process.env.INTERPOOL_TEST_CPYTHON;

/** Whether this test process tests Pyodide too (not in the processes given to one CPython). */
export const PYODIDE_TESTED = TESTED_CPYTHON === undefined;

/** Whether this is the main run, which tests everything (JavaScript apps too), not a process given to one CPython. */
export const MAIN_RUN = PYODIDE_TESTED;

export function nativeEngines(): PythonEngine[] {
  const version = TESTED_CPYTHON ?? '3.13';
  const build = listNativeBuilds().find((candidate) => candidate.version === version);
  const name = `native CPython ${version}`;
  if (!build) {
    const how = version === '3.13' ? 'npm run build:cpython && npm run build:native' : `apt-get install python${version}-dev && npm run build:native`;
    return [{ name, args: [], skip: `the native engine is not built for CPython ${version} (${how})` }];
  }
  return [{ name, args: ['--python', 'native', '--cpython', build.executable], sharedGil: Number(version.split('.')[1]) < 12 }];
}

export function pythonEngines(): PythonEngine[] {
  return [...(PYODIDE_TESTED ? [{ name: 'pyodide', args: [] }] : []), ...nativeEngines()];
}

/** A describe title that carries the skip reason, so that the report says why. */
export function engineTitle(engine: PythonEngine): string {
  return engine.skip ? `${engine.name} (skipped: ${engine.skip})` : engine.name;
}

/** An interpreter kind a suite written for every app runs against, with its fixtures' extension. */
export interface AppKind extends PythonEngine {
  language: 'javascript' | 'python';
  /** "counter" -> test/fixtures/apps/counter.ts or counter.py */
  fixture(name: string): string;
}

/**
 * JavaScript (V8 isolates) and each Python engine. JavaScript, like Pyodide, is tested
 * in the main run only: the processes given to one CPython test the native engine alone.
 */
export function appKinds(): AppKind[] {
  const fixture = (extension: string) => (name: string) => `test/fixtures/apps/${name}.${extension}`;
  return [
    ...(MAIN_RUN ? [{ name: 'javascript', args: [], language: 'javascript' as const, fixture: fixture('ts') }] : []),
    ...pythonEngines().map((engine) => ({ ...engine, language: 'python' as const, fixture: fixture('py') })),
  ];
}
