// What the dashboard shows of a boot failure: the exception, and the app's own frames
// of the traceback, from the tracebacks and stacks the engines really write.
import { describe, expect, it } from 'vitest';
import { exceptionOf, ownFramesOf, type ExceptionSummary, type Frame } from '../../server/admin/boot-failure.ts';

const APP = '/srv/site/app.py';
const RUNTIME = '/srv/site/runtime';

// As Pyodide writes it for test/fixtures/apps/fails-to-import.py (moved to /srv/site).
const PYTHON_IMPORT = `Traceback (most recent call last):
  File "/interpool/interpool_wsgi.py", line 59, in load_app
    spec.loader.exec_module(module)
    ~~~~~~~~~~~~~~~~~~~~~~~^^^^^^^^
  File "<frozen importlib._bootstrap_external>", line 759, in exec_module
  File "<frozen importlib._bootstrap>", line 491, in _call_with_frames_removed
  File "/srv/site/app.py", line 8, in <module>
    configure()
    ~~~~~~~~~^^
  File "/srv/site/settings/load.py", line 5, in configure
    return {}["missing-setting"]
           ~~^^^^^^^^^^^^^^^^^^^
  File "/srv/site/.venv/lib/python3.14/site-packages/yaml/__init__.py", line 81, in load
    raise KeyError(name)
KeyError: 'missing-setting'
`;

const PYTHON_CHAINED = `Traceback (most recent call last):
  File "/srv/site/app.py", line 4, in f
    raise ValueError("bad\\nvalue")
ValueError: bad
value

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/srv/site/app.py", line 8, in <module>
    raise RuntimeError("wrapped") from e
RuntimeError: wrapped
`;

const PYTHON_SYNTAX = `Traceback (most recent call last):
  File "/interpool/interpool_wsgi.py", line 59, in load_app
    spec.loader.exec_module(module)
  File "/srv/site/app.py", line 1
    def (:
        ^
SyntaxError: invalid syntax
`;

const PYTHON_MISSING_MODULE = `Traceback (most recent call last):
  File "/srv/site/app.py", line 2, in <module>
    import cgi
ModuleNotFoundError: No module named 'cgi'
`;

// As the JavaScript worker reports test/fixtures/apps/throws-at-import.ts (moved to /srv/site).
const V8_IMPORT = `Error: database settings missing
    at file:///srv/site/app.ts:2:7
    at loadSettings (file:///srv/site/lib/settings.ts:10:3)
    at ModuleJob.run (node:internal/modules/esm/module_job:561:25)
    at async node:internal/modules/esm/loader:647:26
    at async importApp (file:///srv/site/runtime/interpreters/javascript.ts:28:12)
    at async bootJavaScript (file:///srv/site/node_modules/interpool/runtime/interpreters/javascript.ts:14:18)`;

const V8_SYNTAX = `SyntaxError: Unexpected end of input
    at compileSourceTextModule (node:internal/modules/esm/utils:319:16)
    at ModuleLoader.moduleStrategy (node:internal/modules/esm/translators:89:18)`;

const V8_LOCATED = `file:///srv/site/app.ts:3
  const x = ;
            ^

SyntaxError: Unexpected token ';'
    at compileSourceTextModule (node:internal/modules/esm/utils:319:16)`;

const frame = (file: string, line: number, fn: string | null, code: string | null = null): Frame => ({ file, line, function: fn, code });

describe('ownFramesOf: the frames of the app\'s own code', () => {
  it.each<[string, string, string, Frame[]]>([
    ['Python import failure: not the loader, importlib or site-packages', PYTHON_IMPORT, APP, [
      frame('/srv/site/app.py', 8, '<module>', 'configure()'),
      frame('/srv/site/settings/load.py', 5, 'configure', 'return {}["missing-setting"]'),
    ]],
    ['Python chained exceptions: frames of both tracebacks', PYTHON_CHAINED, APP, [
      frame('/srv/site/app.py', 4, 'f', 'raise ValueError("bad\\nvalue")'),
      frame('/srv/site/app.py', 8, '<module>', 'raise RuntimeError("wrapped") from e'),
    ]],
    ['Python syntax error: the line, no function', PYTHON_SYNTAX, APP, [frame('/srv/site/app.py', 1, null, 'def (:')]],
    ['Python missing module', PYTHON_MISSING_MODULE, APP, [frame('/srv/site/app.py', 2, '<module>', 'import cgi')]],
    ['V8: the app and its helpers, not Node, interpool\'s runtime or node_modules', V8_IMPORT, '/srv/site/app.ts', [
      frame('/srv/site/app.ts', 2, null),
      frame('/srv/site/lib/settings.ts', 10, 'loadSettings'),
    ]],
    ['V8 syntax error: no frame of the app', V8_SYNTAX, '/srv/site/app.ts', []],
    ['an app elsewhere: none of these frames', PYTHON_IMPORT, '/other/app.py', []],
    ['a traceback that is no traceback', 'something went wrong', APP, []],
  ])('%s', (_name, traceback, appFile, expected) => {
    expect(ownFramesOf(traceback, appFile, [RUNTIME])).toEqual(expected);
  });
});

describe('exceptionOf: the exception\'s type and message', () => {
  it.each<[string, string, ExceptionSummary | null]>([
    ['Python KeyError', PYTHON_IMPORT, { type: 'KeyError', message: "'missing-setting'" }],
    ['Python chained: the last one, multi-line message kept', PYTHON_CHAINED, { type: 'RuntimeError', message: 'wrapped' }],
    ['Python syntax error', PYTHON_SYNTAX, { type: 'SyntaxError', message: 'invalid syntax' }],
    ['Python missing module', PYTHON_MISSING_MODULE, { type: 'ModuleNotFoundError', message: "No module named 'cgi'" }],
    ['Python exception without a message', 'Traceback (most recent call last):\n  File "/srv/site/app.py", line 1, in <module>\n    raise SystemExit\nSystemExit\n', { type: 'SystemExit', message: '' }],
    ['Python dotted type', 'Traceback (most recent call last):\n  File "/srv/site/app.py", line 1, in <module>\n    x()\nsettings.errors.ConfigError: no DATABASE_URL\n', { type: 'settings.errors.ConfigError', message: 'no DATABASE_URL' }],
    ['V8 Error', V8_IMPORT, { type: 'Error', message: 'database settings missing' }],
    ['V8 syntax error', V8_SYNTAX, { type: 'SyntaxError', message: 'Unexpected end of input' }],
    ['V8 syntax error after its location', V8_LOCATED, { type: 'SyntaxError', message: "Unexpected token ';'" }],
    ['plain text', 'something went wrong', null],
    ['empty', '', null],
  ])('%s', (_name, traceback, expected) => {
    expect(exceptionOf(traceback)).toEqual(expected);
  });

  it('keeps a multi-line Python message whole', () => {
    const inner = PYTHON_CHAINED.slice(0, PYTHON_CHAINED.indexOf('\n\nThe above'));
    expect(exceptionOf(inner)).toEqual({ type: 'ValueError', message: 'bad\nvalue' });
  });
});
