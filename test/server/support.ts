/**
 * Helpers for the server behaviour tests: start a real server in-process on port 0,
 * capture its structured log, and speak raw HTTP/1.1 over node:net where fetch would
 * merge, forbid or hide what a test needs to see.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { Writable } from 'node:stream';
import { resolveConfig } from '../../server/config.ts';
import { createLogger } from '../../server/logger.ts';
import { openServer, type RunningServer } from '../../server/serve.ts';

export interface TestServer {
  server: RunningServer;
  url: string;
  host: string;
  port: number;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Start a server with these `serve` arguments (port 0 is added), logging to memory. */
export async function startTestServer(argv: readonly string[]): Promise<TestServer> {
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = resolveConfig({ argv: [...argv, '--bind', '127.0.0.1:0'], env: {}, cwd: process.cwd() });
  const server = await openServer(config, createLogger('info', 'json', sink));
  const { hostname, port } = new URL(server.url);
  return { server, url: server.url, host: hostname, port: Number(port), logs, close: () => server.close() };
}

export interface StartedChild {
  child: ChildProcess;
  url: string;
  /** Everything the child wrote so far, stdout and stderr. */
  output: () => string;
}

/**
 * Start a real `interpool serve` child process on port 0 and resolve with its URL once
 * it logs `listening` (a regexp whose group 1 is the URL). Its options come from its
 * arguments only: INTERPOOL_* variables of the test process are not passed on; `env`
 * adds variables.
 */
export function startChild(args: string[], listening = /listening on (http:\/\/[\d.]+:\d+)/, bind = '127.0.0.1:0', env: Record<string, string> = {}): Promise<StartedChild> {
  const child = spawn(process.execPath, ['bin/interpool.js', 'serve', ...args, '--bind', bind, '--log-level', 'info'], {
    cwd: process.cwd(),
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('INTERPOOL_'))), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (data: Buffer) => { output += data.toString(); });
  child.stderr!.on('data', (data: Buffer) => { output += data.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
    const onData = () => {
      const match = listening.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ child, url: match[1]!, output: () => output });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${output}`)); });
  });
}

export interface CliRun { code: number | null; stdout: string; stderr: string }

/**
 * Run the real `interpool` command to its end: its exit code and what it printed. Its
 * environment is the test process's without INTERPOOL_* variables, plus `env`.
 */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('INTERPOOL_')));
  const child = spawn(process.execPath, ['bin/interpool.js', ...args], { cwd: process.cwd(), env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => { stdout += data; });
  child.stderr.on('data', (data: Buffer) => { stderr += data; });
  // 'close', not 'exit': 'exit' can come before the last of its output has been read.
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A free TCP port on 127.0.0.1, for a service a test starts (redis, nginx, ...). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Poll until `check` holds (or fail after `ms`): for log lines and files written
 * asynchronously. A poll, not a sleep that orders events: the interval only sets how
 * often the condition is read (longer where reading it costs the server), and `ms` only
 * turns a hang into a failure.
 */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000, what = 'condition', intervalMs = 20): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface RawResponse {
  /** The status line as sent, e.g. "HTTP/1.1 201 Made It". */
  statusLine: string;
  status: number;
  /** Header lines in wire order, names as sent. */
  headers: [string, string][];
  /** The body, de-chunked when Transfer-Encoding: chunked. */
  body: Buffer;
  chunked: boolean;
  /** True when the connection ended before a complete response was read. */
  truncated: boolean;
  raw: Buffer;
}

/**
 * Send `request` (a complete HTTP/1.x request, CRLF line ends) on a fresh connection and
 * read until the server closes it. Add "Connection: close" to the request yourself.
 */
export function rawRequest(port: number, request: string | Buffer, host = '127.0.0.1'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const parts: Buffer[] = [];
    socket.on('data', (data: Buffer) => parts.push(data));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after (part of) a response is an aborted response, not a test failure.
      if (error.code === 'ECONNRESET') return;
      reject(error);
    });
    socket.on('close', () => resolve(parseRawResponse(Buffer.concat(parts))));
    socket.write(request);
  });
}

export function parseRawResponse(raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    return { statusLine: raw.toString('latin1'), status: 0, headers: [], body: Buffer.alloc(0), chunked: false, truncated: true, raw };
  }
  const [statusLine, ...lines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const rest = raw.subarray(headEnd + 4);
  const chunked = headers.some(([name, value]) => name.toLowerCase() === 'transfer-encoding' && /chunked/i.test(value));
  const length = headers.find(([name]) => name.toLowerCase() === 'content-length');
  let body: Buffer = rest;
  let truncated = false;
  if (chunked) {
    ({ body, complete: truncated } = dechunk(rest));
    truncated = !truncated;
  } else if (length) {
    truncated = rest.length < Number(length[1]);
  }
  return { statusLine: statusLine!, status: Number(statusLine!.split(' ')[1]), headers, body, chunked, truncated, raw };
}

function dechunk(data: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    if (lineEnd + 2 + size > data.length) {
      parts.push(data.subarray(lineEnd + 2));
      return { body: Buffer.concat(parts), complete: false };
    }
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** The value of the first header with this name (case-insensitive). */
export function headerOf(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

/** A GET with Connection: close, and any extra header lines. */
export function getRequest(path: string, extraHeaders: string[] = [], method = 'GET'): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: localhost', ...extraHeaders, 'Connection: close', '', ''].join('\r\n');
}
