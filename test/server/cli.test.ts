/**
 * The command line as a user meets it: a real `interpool` process, its exit code and
 * what it prints. Bad input: one line naming the problem, exit code 2, no stack trace.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCli } from './support.ts';

describe('interpool CLI', () => {
  it('--version prints the version', async () => {
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^interpool \d+\.\d+\.\d+ \(Node 2\d\./);
  });

  it('serve --help lists the options', async () => {
    const run = await runCli(['serve', '--help']);
    expect(run.code).toBe(0);
    for (const flag of ['--workers', '--bind', '--config', '--body-limit', '--log-level', '--graceful-timeout']) expect(run.stdout).toContain(flag);
  });

  it.each([
    ['bad option value', ['serve', 'apps/hello.ts', '--workers', 'two'], {}, 'interpool: --workers must be an integer, 0 or more, got "two"'],
    ['bad value from the environment', ['serve', 'apps/hello.ts'], { INTERPOOL_BIND: 'nowhere' }, 'interpool: INTERPOOL_BIND must be HOST:PORT (port 0-65535), got "nowhere"'],
    ['unknown option', ['serve', 'apps/hello.ts', '--colour', 'red'], {}, 'interpool: unknown option --colour; see interpool serve --help'],
    ['unknown command', ['serv', 'apps/hello.ts'], {}, 'interpool: unknown command "serv"; see interpool --help'],
    ['missing app file', ['serve', 'apps/missing.ts'], {}, 'interpool: app file apps/missing.ts does not exist'],
    ['callable not there', ['serve', 'test/fixtures/apps/no-callable.ts', '--workers', '1'], {}, 'no callable "application" exported; functions it exports: app, helper'],
    ['callable named but not there', ['serve', 'apps/hello.ts:app', '--workers', '1'], {}, 'no callable "app" exported; functions it exports: application'],
  ])('%s: one line, exit 2', async (_name, args, env, message) => {
    const run = await runCli(args as string[], env as Record<string, string>);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('port in use: one line, exit 2', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const run = await runCli(['serve', 'apps/hello.ts', '--workers', '1', '--bind', `127.0.0.1:${port}`]);
      expect(run.code).toBe(2);
      expect(run.stderr.trim()).toBe(`interpool: cannot listen on 127.0.0.1:${port}: address already in use`);
    } finally {
      blocker.close();
    }
  });
});
