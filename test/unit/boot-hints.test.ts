import { describe, expect, it } from 'vitest';
import { hintForBootFailure } from '../../server/boot-hints.ts';

describe('hintForBootFailure', () => {
  it.each([
    ["app.py: failed to import: ModuleNotFoundError: No module named 'cgi'", '3.14',
      '`cgi` was removed in Python 3.13: run this app with --python 3.12, or with --python native on a CPython older than 3.13'],
    ["ModuleNotFoundError: No module named 'cgi'", '3.12',
      '`cgi` was removed in Python 3.13: run this app with --python native on a CPython older than 3.13'],
    ["ModuleNotFoundError: No module named 'distutils.util'", '3.14',
      '`distutils` was removed in Python 3.12: run this app with --python native on a CPython older than 3.12'],
    ["AttributeError: module 'ast' has no attribute 'Str'", '3.14',
      '`ast.Str` was removed in Python 3.14: run this app with --python 3.12, or with --python native on a CPython older than 3.14'],
    ["ModuleNotFoundError: No module named 'flask'", '3.14',
      "the module `flask` is not importable here: if it is installed on this machine, give its directory with --python-path (e.g. a virtualenv's site-packages or /usr/lib/python3/dist-packages)"],
    ['app.py: failed to import: ImportError: module _curses does not support loading in subinterpreters', 'native',
      'the C extension `_curses` does not support subinterpreters with their own GIL: run this app with --python-isolation shared-gil (its interpreters then share one GIL, as mod_wsgi\'s do)'],
  ])('%s (--python %s)', (message, python, hint) => {
    expect(hintForBootFailure(message, { python })).toBe(hint);
  });

  it('a Cython-compiled extension that refuses a second interpreter', () => {
    expect(hintForBootFailure('app.py: failed to import: ImportError: Interpreter change detected - this module can only be loaded into one interpreter per process.', { python: 'native' }))
      .toBe('a Cython-compiled extension (Falcon\'s, PyYAML\'s _yaml, msgpack\'s) loads in the first interpreter of a process that imports it, and in no other even after that one ends: '
        + 'run this app with --processes N --workers 1, so that each process serves it from its one interpreter (a process whose interpreter is recycled or replaced is itself replaced)');
  });

  // A Rust (PyO3) extension: one interpreter per process, on 3.11 only; the 3.11 build is named when there is one.
  it.each([
    ['app.py: failed to import: ImportError: PyO3 modules may only be initialized once per interpreter process', [{ version: '3.11', executable: '/usr/bin/python3.11' }], '--cpython /usr/bin/python3.11'],
    ['ImportError: PyO3 modules do not yet support subinterpreters, see https://github.com/PyO3/pyo3/issues/576', [{ version: '3.13', executable: '/opt/py/bin/python3.13' }],
      'a CPython 3.11 (`apt-get install python3-dev && npm run build:native`, then --cpython /usr/bin/python3.11)'],
  ])('%s (built for %j)', (message, nativeBuilds, cpython) => {
    expect(hintForBootFailure(message, { python: 'native', nativeBuilds })).toBe(
      'a Rust (PyO3) extension, such as cryptography\'s, pydantic-core or orjson, loads in one interpreter per process (on CPython 3.11 the first to import it, and no other even after that one ends; on 3.13 none): '
      + `run this app on ${cpython} with --processes N --workers 1, so that each process serves it from its one interpreter (a process whose interpreter is recycled or replaced is itself replaced)`);
  });

  // --python native: the way out is another CPython, named when the engine is built for one.
  const BUILT = [{ version: '3.13', executable: '/opt/py/bin/python3.13' }, { version: '3.11', executable: '/usr/bin/python3.11' }];
  it.each([
    ["ModuleNotFoundError: No module named 'cgi'", BUILT,
      '`cgi` was removed in Python 3.13: run this app with --cpython /usr/bin/python3.11, or with --python 3.12 (Pyodide)'],
    ["ModuleNotFoundError: No module named 'cgi'", BUILT.slice(0, 1),
      '`cgi` was removed in Python 3.13: run this app on a CPython older than 3.13 (`INTERPOOL_CPYTHON=/usr/bin/python3.X npm run build:native`, then --cpython /usr/bin/python3.X), or with --python 3.12 (Pyodide)'],
    ["ModuleNotFoundError: No module named 'distutils'", BUILT,
      '`distutils` was removed in Python 3.12: run this app with --cpython /usr/bin/python3.11'],
    ["AttributeError: module 'ast' has no attribute 'Str'", BUILT,
      '`ast.Str` was removed in Python 3.14: run this app with --cpython /opt/py/bin/python3.13, or with --cpython /usr/bin/python3.11, or with --python 3.12 (Pyodide)'],
  ])('%s (--python native, built for %j)', (message, nativeBuilds, hint) => {
    expect(hintForBootFailure(message, { python: 'native', nativeBuilds })).toBe(hint);
  });

  it.each([
    "KeyError: 'missing-setting'",
    "AttributeError: module 'os' has no attribute 'frobnicate'",
    'SyntaxError: invalid syntax',
  ])('no hint for a cause it does not know: %s', (message) => {
    expect(hintForBootFailure(message, { python: '3.14' })).toBeUndefined();
  });
});
