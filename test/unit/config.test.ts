import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/config.ts';
import { address, byteSize, positiveInteger, seconds } from '../../server/options.ts';

const cwd = process.cwd();
const resolveWith = (argv: string[], env: Record<string, string> = {}) => resolveConfig({ argv, env, cwd });

describe('option validators', () => {
  it.each([
    [positiveInteger, '4', 4], [positiveInteger, 3, 3],
    [seconds, '1.5', 1.5], [seconds, '0', 0],
    [byteSize, '1024', 1024], [byteSize, '16k', 16384], [byteSize, '10MiB', 10 * 1024 ** 2], [byteSize, '1g', 1024 ** 3], [byteSize, 5, 5],
    [address, '127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }], [address, ':9000', { host: '127.0.0.1', port: 9000 }],
    [address, '9000', { host: '127.0.0.1', port: 9000 }], [address, '[::1]:0', { host: '::1', port: 0 }],
    [address, '0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
  ] as const)('%o parses %j', (parse, raw, expected) => {
    expect((parse as (raw: unknown, where: string) => unknown)(raw, '--x')).toEqual(expected);
  });

  it.each([
    [positiveInteger, 'two', '--x must be a positive integer, got "two"'],
    [positiveInteger, '0', '--x must be a positive integer, got "0"'],
    [positiveInteger, '1.5', '--x must be a positive integer, got "1.5"'],
    [seconds, '-1', '--x must be a number of seconds (0 or more), got "-1"'],
    [byteSize, '10 parsecs', '--x must be a number of bytes, optionally with a unit (k, m, g), got "10 parsecs"'],
    [address, 'localhost', '--x must be HOST:PORT (port 0-65535), got "localhost"'],
    [address, 'h:70000', '--x must be HOST:PORT (port 0-65535), got "h:70000"'],
  ] as const)('%o refuses %j', (parse, raw, message) => {
    expect(() => (parse as (raw: unknown, where: string) => unknown)(raw, '--x')).toThrow(message);
  });
});

describe('resolveConfig', () => {
  it('serves one file at the root with defaults', () => {
    const config = resolveWith(['apps/hello.ts']);
    expect(config.bind).toEqual({ host: '127.0.0.1', port: 8000 });
    expect(config.apps).toHaveLength(1);
    expect(config.apps[0]).toMatchObject({ name: '/', prefix: '', callable: 'application', kind: 'javascript' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.apps[0])).toBe(true);
  });

  it('mounts several apps by prefix with callables', () => {
    const config = resolveWith(['/=apps/hello.ts', '/api=apps/echo.ts:application', '--workers', '4', '--bind', '127.0.0.1:9000']);
    expect(config.apps.map((app) => [app.prefix, app.workers])).toEqual([['', 4], ['/api', 4]]);
    expect(config.bind.port).toBe(9000);
  });

  it('command line beats environment beats config file beats default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'interpool-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ workers: 3, logLevel: 'warn', bodyLimit: '1k', apps: [{ app: join(cwd, 'apps/hello.ts') }] }));
    const fromFile = resolveWith(['--config', file]);
    expect([fromFile.workers, fromFile.logLevel, fromFile.bodyLimit]).toEqual([3, 'warn', 1024]);
    const fromEnv = resolveWith(['--config', file], { INTERPOOL_WORKERS: '5' });
    expect(fromEnv.workers).toBe(5);
    const fromCli = resolveWith(['--config', file, '--workers', '6'], { INTERPOOL_WORKERS: '5' });
    expect(fromCli.workers).toBe(6);
    const viaEnvPath = resolveWith([], { INTERPOOL_CONFIG: file });
    expect(viaEnvPath.workers).toBe(3);
  });

  it('an empty INTERPOOL_CONFIG means no config file, like any empty variable', () => {
    expect(resolveWith(['apps/hello.ts'], { INTERPOOL_CONFIG: '', INTERPOOL_WORKERS: '' }).apps).toHaveLength(1);
  });

  it('applies per-app settings from the config file, paths relative to it', () => {
    const config = resolveWith(['--config', 'apps/interpool.json']);
    expect(config.apps.length).toBeGreaterThan(1);
    expect(config.apps[0]!.file).toBe(join(cwd, 'apps/hello.ts'));
    const dir = mkdtempSync(join(tmpdir(), 'interpool-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ workers: 2, apps: [{ mount: '/a', app: `${cwd}/apps/hello.ts`, workers: 1, timeout: 3 }, { mount: '/b', app: `${cwd}/apps/echo.ts` }] }));
    const perApp = resolveWith(['--config', file]);
    expect(perApp.apps.map((app) => [app.name, app.workers, app.timeout])).toEqual([['/a', 1, 3], ['/b', 2, 30]]);
  });

  it.each([
    ['bad number', ['apps/hello.ts', '--workers', 'two'], {}, '--workers must be an integer, 0 or more, got "two"'],
    ['bad number from the environment', ['apps/hello.ts'], { INTERPOOL_WORKERS: 'lots' }, 'INTERPOOL_WORKERS must be an integer, 0 or more, got "lots"'],
    ['unknown option', ['apps/hello.ts', '--wrokers', '2'], {}, 'unknown option --wrokers; see interpool serve --help'],
    ['option without value', ['apps/hello.ts', '--workers'], {}, 'option --workers needs a value'],
    ['bad log level', ['apps/hello.ts', '--log-level', 'loud'], {}, '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    ['missing app file', ['apps/nope.ts'], {}, 'app file apps/nope.ts does not exist'],
    ['unknown extension', ['package.json'], {}, 'app file package.json has an unknown extension'],
    ['no app at all', [], {}, 'no app to serve'],
    ['two apps at one prefix', ['/a=apps/hello.ts', '/a/=apps/echo.ts'], {}, 'two apps are mounted at "/a"'],
    ['missing config file', ['--config', 'nope.json'], {}, 'config file'],
    ['missing python path', ['apps/hello.ts', '--python-path', '/no/such/dir'], {}, '--python-path: directory /no/such/dir does not exist'],
    ['bad python version', ['apps/hello.ts', '--python', '2.7'], {}, '--python must be one of 3.14, 3.12, native, got "2.7"'],
  ])('%s: one line naming the problem', (_name, argv, env, message) => {
    expect(() => resolveWith(argv as string[], env as Record<string, string>)).toThrow(message);
  });

  it.each([
    ['not JSON', '{workers: 2}', 'is not valid JSON'],
    ['not an object', '[1]', 'must hold a JSON object'],
    ['unknown key', '{"wrokers": 2}', 'unknown key "wrokers"'],
    ['bad value', '{"workers": "two"}', '"workers" must be an integer, 0 or more, got "two"'],
    ['apps not a list', '{"apps": {}}', '"apps" must be a list'],
    ['app without file', '{"apps": [{"mount": "/"}]}', 'apps[0].app must be FILE[:CALLABLE]'],
    ['unknown per-app key', '{"apps": [{"app": "x.ts", "colour": "red"}]}', 'apps[0]: unknown key "colour"'],
    ['bad per-app value', '{"apps": [{"app": "x.ts", "workers": -1}]}', 'apps[0].workers must be an integer, 0 or more, got -1'],
  ])('config file %s', (_name, text, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'interpool-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, text);
    expect(() => resolveWith(['--config', file])).toThrow(message);
  });
});
