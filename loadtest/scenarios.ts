/**
 * The scenarios: one request shape each, and how a response is judged. The same logic
 * exists as a TypeScript app (apps/<app>.ts) and a Python app (apps/<app>.py, which the
 * peers serve too), and both answer with the same bytes, so every server in a scenario is checked the same way.
 */

export type ScenarioName = 'hello' | 'cpu' | 'echo' | 'big' | 'stream';

export interface Scenario {
  name: ScenarioName;
  /** One line for the report. */
  title: string;
  /** Base name of the app file: apps/<app>.ts, apps/<app>.py. */
  app: string;
  method: 'GET' | 'POST';
  /** Path and query, relative to the app's mount at "/". */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Is this a correct response body? (the status is checked separately: 2xx only) */
  verifyBody(body: string): boolean;
}

export const HELLO_BODY = 'Hello, World!\n';

/** Fibonacci argument of the cpu scenario, and its answer. */
export const CPU_N = 25;

/** 16 KiB of ASCII (autocannon compares bodies as strings, so keep them ASCII). */
export const ECHO_BODY = makeLines(16 * 1024);

/** What apps/big.ts and big.py send: 1 MiB of 64-byte lines. */
export const BIG_BODY = makeLines(1024 * 1024);

export const STREAM_CHUNKS = 8;
const STREAM_LINE = /^chunk (\d+) of (\d+) at \S+$/;

/** `size` bytes of 64-byte lines: 63 characters from A-Z a-z 0-9 '-', then '\n'. */
export function makeLines(size: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-';
  const line = alphabet + '\n';
  return line.repeat(Math.ceil(size / line.length)).slice(0, size);
}

/** The cpu scenario for another Fibonacci argument (the CPU benchmark picks its own). */
export function cpuScenario(n: number): Scenario {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  const expected = `fib(${n}) = ${a}\n`;
  return {
    name: 'cpu', title: `cpu: GET, naive recursive fib(${n}) per request`, app: 'cpu',
    method: 'GET', path: `/?n=${n}`, verifyBody: (body) => body === expected,
  };
}

function isStreamBody(body: string): boolean {
  const lines = body.split('\n');
  if (lines.pop() !== '' || lines.length !== STREAM_CHUNKS) return false;
  return lines.every((line, index) => {
    const match = STREAM_LINE.exec(line);
    return match !== null && Number(match[1]) === index + 1 && Number(match[2]) === STREAM_CHUNKS;
  });
}

export const scenarios: Record<ScenarioName, Scenario> = {
  hello: {
    name: 'hello', title: 'hello: GET, 14-byte plain-text response', app: 'hello',
    method: 'GET', path: '/', verifyBody: (body) => body === HELLO_BODY,
  },
  cpu: cpuScenario(CPU_N),
  echo: {
    name: 'echo', title: 'echo: POST 16 KiB, echoed back', app: 'echo',
    method: 'POST', path: '/', headers: { 'content-type': 'application/octet-stream' }, body: ECHO_BODY,
    verifyBody: (body) => body === ECHO_BODY,
  },
  big: {
    name: 'big', title: 'big: GET, 1 MiB response', app: 'big',
    method: 'GET', path: '/', verifyBody: (body) => body === BIG_BODY,
  },
  stream: {
    name: 'stream', title: `stream: GET, chunked generator of ${STREAM_CHUNKS} lines, no pause`, app: 'stream',
    method: 'GET', path: `/?chunks=${STREAM_CHUNKS}&delay=0`, verifyBody: isStreamBody,
  },
};
