/**
 * What to do about a boot failure whose cause is known: a module that this Python no
 * longer has, or a dependency the interpreter cannot find. The boot-failure log line and
 * `interpool check` add this hint to the app's own error, so that a bare "No module
 * named 'cgi'" comes with the way out. Pure: the failure's message in, one line out.
 */

/** Standard-library modules removed from CPython, and the version that removed them. */
const REMOVED_MODULES: Readonly<Record<string, string>> = {
  // PEP 594 ("dead batteries"), removed in 3.13.
  aifc: '3.13', audioop: '3.13', cgi: '3.13', cgitb: '3.13', chunk: '3.13', crypt: '3.13',
  imghdr: '3.13', mailcap: '3.13', msilib: '3.13', nis: '3.13', nntplib: '3.13', ossaudiodev: '3.13',
  pipes: '3.13', sndhdr: '3.13', spwd: '3.13', sunau: '3.13', telnetlib: '3.13', uu: '3.13', xdrlib: '3.13',
  lib2to3: '3.13',
  // Removed in 3.12.
  distutils: '3.12', imp: '3.12', asynchat: '3.12', asyncore: '3.12', smtpd: '3.12',
};

/** Attributes removed from a module that stayed (the AttributeError names them). */
const REMOVED_ATTRIBUTES: Readonly<Record<string, string>> = {
  'ast.Str': '3.14', 'ast.Num': '3.14', 'ast.Bytes': '3.14', 'ast.NameConstant': '3.14', 'ast.Ellipsis': '3.14',
  'pkgutil.ImpImporter': '3.12', 'pkgutil.ImpLoader': '3.12',
  'configparser.SafeConfigParser': '3.12', 'unittest.findTestCases': '3.13',
};

export interface BootContext {
  /** "3.14" or "3.12" (Pyodide), "native" (an embedded CPython), or a JS kind. */
  python: string | undefined;
  /** --python native: the python3.X executables the native engine is built for, by version. */
  nativeBuilds?: readonly { version: string; executable: string }[];
}

/** The refusals of C extensions that load in one interpreter per process: a Rust one built with PyO3, a Cython one. */
const PYO3_REFUSAL = /PyO3 modules (?:compiled for CPython [\d.]+ or older )?(?:may only be initialized once per interpreter process|do not yet support subinterpreters)/;
const CYTHON_REFUSAL = /Interpreter change detected - this module can only be loaded into one interpreter per process/;

/** True when only a new process can boot the app again: its extension takes one interpreter per process. */
export function needsNewProcess(message: string): boolean {
  return PYO3_REFUSAL.test(message) || CYTHON_REFUSAL.test(message);
}

/** A one-line hint for a boot failure message, or undefined when the cause is not a known one. */
export function hintForBootFailure(message: string, context: BootContext): string | undefined {
  // CPython's refusal of a C extension in a subinterpreter with its own GIL.
  const refused = /module ([\w.]+) does not support loading in subinterpreters/.exec(message)?.[1];
  if (refused !== undefined) {
    return `the C extension \`${refused}\` does not support subinterpreters with their own GIL: `
      + 'run this app with --python-isolation shared-gil (its interpreters then share one GIL, as mod_wsgi\'s do)';
  }
  // --boot-timeout interrupted the import (natively interpool.RequestTimeout; Pyodide's KeyboardInterrupt).
  if (/failed to import: (?:interpool\.)?(?:RequestTimeout|KeyboardInterrupt)\b/.test(message) || /did not finish importing within --boot-timeout/.test(message)) {
    return 'the app\'s import did not finish within --boot-timeout and was interrupted (the traceback shows where it waited): '
      + 'connect to databases and services on the first request rather than at import, or give it longer with --boot-timeout';
  }
  // A Cython-compiled extension (Falcon, PyYAML's _yaml, msgpack) remembers the first
  // interpreter that imported it and refuses every other one of the process.
  if (CYTHON_REFUSAL.test(message)) {
    return 'a Cython-compiled extension (Falcon\'s, PyYAML\'s _yaml, msgpack\'s) loads in the first interpreter of a process that imports it, '
      + 'and in no other even after that one ends: run this app with --processes N --workers 1, '
      + 'so that each process serves it from its one interpreter (a process whose interpreter is recycled or replaced is itself replaced)';
  }
  // A Rust extension built with PyO3 initializes once per process. On 3.11 the first
  // interpreter that imports it has it, and no other (a second worker, any replacement);
  // 3.13 runs a single-phase module's init in the main interpreter as well, so no
  // subinterpreter has it.
  if (PYO3_REFUSAL.test(message)) {
    const legacy = (context.nativeBuilds ?? []).find((build) => minorOf(build.version) < 12);
    const cpython = legacy ? `--cpython ${legacy.executable}` : 'a CPython 3.11 (`apt-get install python3-dev && npm run build:native`, then --cpython /usr/bin/python3.11)';
    return 'a Rust (PyO3) extension, such as cryptography\'s, pydantic-core or orjson, loads in one interpreter per process '
      + '(on CPython 3.11 the first to import it, and no other even after that one ends; on 3.13 none): '
      + `run this app on ${cpython} with --processes N --workers 1, so that each process serves it from its one interpreter (a process whose interpreter is recycled or replaced is itself replaced)`;
  }
  const missing = /No module named '([\w.]+)'/.exec(message)?.[1];
  if (missing !== undefined) {
    const top = missing.split('.')[0]!;
    const removedIn = REMOVED_MODULES[top];
    if (removedIn !== undefined) return removedHint(`\`${top}\``, removedIn, context);
    return `the module \`${top}\` is not importable here: if it is installed on this machine, `
      + 'give its directory with --python-path (e.g. a virtualenv\'s site-packages or /usr/lib/python3/dist-packages)';
  }
  const attribute = /module '([\w.]+)' has no attribute '(\w+)'/.exec(message);
  if (attribute) {
    const removedIn = REMOVED_ATTRIBUTES[`${attribute[1]}.${attribute[2]}`];
    if (removedIn !== undefined) return removedHint(`\`${attribute[1]}.${attribute[2]}\``, removedIn, context);
  }
  return undefined;
}

function removedHint(what: string, removedIn: string, context: BootContext): string {
  const older = olderPyodide(removedIn);
  if (context.python === 'native') {
    // The native engine's way out is another CPython: name the ones it is built for.
    const builds = (context.nativeBuilds ?? []).filter((build) => minorOf(build.version) < minorOf(removedIn));
    const choices = builds.length > 0
      ? builds.map((build) => `with --cpython ${build.executable}`)
      : [`on a CPython older than ${removedIn} (\`INTERPOOL_CPYTHON=/usr/bin/python3.X npm run build:native\`, then --cpython /usr/bin/python3.X)`];
    if (older) choices.push(`with --python ${older} (Pyodide)`);
    return `${what} was removed in Python ${removedIn}: run this app ${choices.join(', or ')}`;
  }
  const choices = [
    ...(older && context.python !== older ? [`with --python ${older}`] : []),
    `with --python native on a CPython older than ${removedIn}`,
  ];
  return `${what} was removed in Python ${removedIn}: run this app ${choices.join(', or ')}`;
}

function minorOf(version: string): number {
  return Number(version.split('.')[1]);
}

/** The newest Pyodide engine whose Python still has what `removedIn` removed. */
function olderPyodide(removedIn: string): string | undefined {
  return removedIn === '3.12' ? undefined : '3.12';
}
