/**
 * The Python engines the Python suites run against: Pyodide (the default) and the
 * native engine on each CPython it is built for here. CI builds both CPythons (Debian
 * 12's 3.11 and the project-built 3.13); elsewhere an engine that is not built is
 * skipped with a line that says so and how to build it.
 */
import { listNativeBuilds } from '../../native/builds.ts';

export interface PythonEngine {
  /** "pyodide", "native CPython 3.13" */
  name: string;
  /** serve arguments that select it */
  args: string[];
  /** why it is skipped, when it is */
  skip?: string;
}

/** The CPythons the native engine is tested on: the project-built one and Debian 12's. */
const NATIVE_VERSIONS = ['3.13', '3.11'];

export function nativeEngines(): PythonEngine[] {
  const builds = listNativeBuilds();
  return NATIVE_VERSIONS.map((version) => {
    const build = builds.find((candidate) => candidate.version === version);
    const name = `native CPython ${version}`;
    if (!build) {
      return { name, args: [], skip: `the native engine is not built for CPython ${version} (npm run build:cpython && npm run build:native; apt-get install python3-dev for 3.11)` };
    }
    return { name, args: ['--python', 'native', '--cpython', build.executable] };
  });
}

export function pythonEngines(): PythonEngine[] {
  return [{ name: 'pyodide', args: [] }, ...nativeEngines()];
}

/** A describe title that carries the skip reason, so that the report says why. */
export function engineTitle(engine: PythonEngine): string {
  return engine.skip ? `${engine.name} (skipped: ${engine.skip})` : engine.name;
}
