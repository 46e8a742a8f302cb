/**
 * Backing services for the Python network tests, started by the tests on loopback on
 * free ports and stopped afterwards: Debian's redis-server and mariadb-server, and a
 * small node:http service. Each helper resolves once the service answers.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './support.ts';

export { freePort };

export const DIST_PACKAGES = '/usr/lib/python3/dist-packages';

export interface Service {
  port: number;
  stop(): Promise<void>;
}

/** The Debian packages among these [package, path] pairs whose path is absent. */
export function missingPackages(pairs: [pkg: string, path: string][]): string[] {
  return pairs.filter(([, path]) => !existsSync(path)).map(([pkg]) => pkg);
}


/** redis-server on 127.0.0.1, nothing written to disk; on `port` (to start one again where it was), or a free one. */
export async function startRedis(port?: number): Promise<Service> {
  port ??= await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForService(child, port, 'redis-server');
  return { port, stop: () => stopChild(child) };
}

/**
 * mariadbd with a fresh data directory in a scratch directory (removed at stop), root
 * without a password on 127.0.0.1, and an empty database `interpool_test`.
 */
export async function startMariadb(): Promise<Service> {
  const port = await freePort();
  const scratch = scratchDir('interpool-mariadb-');
  const data = join(scratch.dir, 'data');
  // mariadbd refuses to run as root unless told to.
  const asUser = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asUser], { stdio: 'pipe' });
  const child = spawn('mariadbd', [
    '--no-defaults', `--datadir=${data}`, `--socket=${join(scratch.dir, 'mariadb.sock')}`, `--pid-file=${join(scratch.dir, 'mariadb.pid')}`,
    `--port=${port}`, '--bind-address=127.0.0.1', '--skip-log-bin', '--innodb-buffer-pool-size=16M', ...asUser,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForService(child, port, 'mariadbd');
    execFileSync('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'root', '-e', 'CREATE DATABASE interpool_test'], { stdio: 'pipe' });
  } catch (error) {
    await stopChild(child);
    scratch.remove();
    throw error;
  }
  return {
    port,
    stop: async () => {
      await stopChild(child);
      scratch.remove();
    },
  };
}

/** One redis-cli command against the test's Redis; its output. */
export function redisCli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });
}

/** A node:http service on 127.0.0.1. */
export async function startHttpService(listener: RequestListener): Promise<Service> {
  const server = createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A TCP server that accepts connections and never answers: a service that hangs. */
export async function startSilentService(): Promise<Service & { connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.resume(); // read and drop the request, so that the client's FIN is seen
    socket.on('close', () => { connections--; });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    connections: () => connections,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function waitForService(child: ChildProcess, port: number, name: string, ms = 30_000): Promise<void> {
  let output = '';
  child.stdout?.on('data', (data: Buffer) => { output += data.toString(); });
  child.stderr?.on('data', (data: Buffer) => { output += data.toString(); });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`))));
  try {
    await Promise.race([waitFor(() => canConnect(port), ms, `${name} to listen on ${port}`), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}:\n${output}`);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/** A scratch directory removed by the returned function. */
export function scratchDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
