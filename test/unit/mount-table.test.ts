import { describe, expect, it } from 'vitest';
import { MountTable, parseMountSpec } from '../../server/mount-table.ts';

describe('parseMountSpec', () => {
  it.each([
    ['apps/hello.ts', { prefix: '', file: 'apps/hello.ts', callable: 'application' }],
    ['apps/api.mjs:app', { prefix: '', file: 'apps/api.mjs', callable: 'app' }],
    ['/=apps/site.ts', { prefix: '', file: 'apps/site.ts', callable: 'application' }],
    ['/api=apps/api.mjs:app', { prefix: '/api', file: 'apps/api.mjs', callable: 'app' }],
    ['/api/=apps/api.py', { prefix: '/api', file: 'apps/api.py', callable: 'application' }],
    ['/a//b/=x.ts', { prefix: '/a/b', file: 'x.ts', callable: 'application' }],
  ])('%s', (text, expected) => {
    expect(parseMountSpec(text)).toEqual(expected);
  });

  it.each([
    ['/api=', 'names no app file'],
    ['/a?b=x.ts', 'plain path'],
  ])('refuses %s', (text, message) => {
    expect(() => parseMountSpec(text)).toThrow(message);
  });
});

describe('MountTable', () => {
  const table = new MountTable([
    { prefix: '', target: 'root' },
    { prefix: '/api', target: 'api' },
    { prefix: '/api/v2', target: 'v2' },
  ]);

  it.each([
    ['/api', 'api', '/api', ''],
    ['/api/', 'api', '/api', '/'],
    ['/api/x', 'api', '/api', '/x'],
    ['/apix', 'root', '', '/apix'],
    ['/api/v2/users', 'v2', '/api/v2', '/users'],
    ['/api/v20', 'api', '/api', '/v20'],
    ['/', 'root', '', '/'],
    ['/other/thing', 'root', '', '/other/thing'],
  ])('%s → %s (SCRIPT_NAME %j, PATH_INFO %j)', (path, target, scriptName, pathInfo) => {
    expect(table.match(path)).toEqual({ target, scriptName, pathInfo });
  });

  it('without a root mount, an unmatched path has no app', () => {
    expect(new MountTable([{ prefix: '/api', target: 'api' }]).match('/apix')).toBeUndefined();
  });

  it('refuses two apps at one prefix', () => {
    expect(() => new MountTable([{ prefix: '/a', target: 1 }, { prefix: '/a', target: 2 }])).toThrow('two apps are mounted at "/a"');
  });
});
