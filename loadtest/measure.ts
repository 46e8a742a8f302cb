/**
 * One load run: autocannon against one server for a fixed time (or a fixed number of
 * requests), counting a response as good only when its status is 2xx and its body is
 * the one the scenario expects. Requests/s counts good responses only: a fast error is
 * not a result.
 */
import { Agent, request } from 'node:http';
import autocannon from 'autocannon';
import type { CpuShare } from './proc.ts';
import type { Scenario } from './scenarios.ts';

export interface LoadShape {
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration: number;
  /** A fixed number of requests instead of a fixed time. */
  amount?: number;
}

export interface RunResult {
  /** Good responses (2xx and the right body) per second of the run. */
  requestsPerSec: number;
  /** Seconds from the first request to the last response. */
  wallSec: number;
  responses: number;
  good: number;
  /** Connection errors and timeouts (no response at all). */
  errors: number;
  timeouts: number;
  /** Responses whose status was not 2xx. */
  non2xx: number;
  /** 2xx responses whose body was not the expected one. */
  wrongBody: number;
  /** Latency of 2xx responses, milliseconds. */
  p50: number;
  p99: number;
  /** The slowest 2xx response, milliseconds. */
  maxLatencyMs?: number;
  statusCodes: Record<string, number>;
  /**
   * The longest time without any response, from the start of the run (a stalled
   * server, a GC pause, a worker being replaced).
   */
  longestPauseMs: number;
  /** How the machine's CPUs were shared during the run (filled in by the caller). */
  cpu?: CpuShare;
}

/** Per-request timeout: a server that stalls shows up as timeouts, not as a hung run. */
const REQUEST_TIMEOUT_SEC = 30;

/** Called once a second during a timed run: good responses so far and seconds elapsed. */
export type LoadProgress = (good: number, elapsedSec: number) => void;

export async function runLoad(url: string, scenario: Scenario, shape: LoadShape, onProgress?: LoadProgress): Promise<RunResult> {
  if (shape.amount) return runFixedCount(url, scenario, shape.connections, shape.amount);
  let good = 0;
  let wrongBody = 0;
  const started = performance.now();
  let lastResponseAt = started;
  let longestPauseMs = 0;
  const ticker = onProgress && setInterval(() => onProgress(good, (performance.now() - started) / 1000), 1000);
  // autocannon's promise is a thenable without finally(): clear the ticker by hand.
  const result = await Promise.resolve(autocannon({
    url,
    connections: shape.connections,
    duration: shape.duration,
    timeout: REQUEST_TIMEOUT_SEC,
    requests: [{
      method: scenario.method,
      path: scenario.path,
      ...(scenario.headers ? { headers: scenario.headers } : {}),
      ...(scenario.body !== undefined ? { body: scenario.body } : {}),
      onResponse: (status, body) => {
        const now = performance.now();
        longestPauseMs = Math.max(longestPauseMs, now - lastResponseAt);
        lastResponseAt = now;
        if (status < 200 || status >= 300) return;
        if (scenario.verifyBody(body)) good += 1;
        else wrongBody += 1;
      },
    }],
  })).finally(() => clearInterval(ticker));
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  const responses = Object.values(statusCodes).reduce((sum, count) => sum + count, 0);
  const wallSec = result.duration;
  // A server that stopped answering before the end of the run.
  longestPauseMs = Math.max(longestPauseMs, started + wallSec * 1000 - lastResponseAt);
  return {
    requestsPerSec: wallSec > 0 ? good / wallSec : 0,
    wallSec,
    responses,
    good,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    wrongBody,
    p50: result.latency.p50,
    p99: result.latency.p99,
    maxLatencyMs: result.latency.max,
    statusCodes,
    longestPauseMs,
  };
}

/**
 * A fixed number of requests over `connections` keep-alive connections, with exact wall
 * time from the first request to the last response (autocannon only notices that it is
 * done on its once-a-second tick, too coarse for the CPU benchmark).
 */
export async function runFixedCount(url: string, scenario: Scenario, connections: number, amount: number): Promise<RunResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let issued = 0;
  let good = 0;
  let wrongBody = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  const started = performance.now();
  let lastResponseAt = started;
  let longestPauseMs = 0;
  const target = new URL(scenario.path, url);

  const send = () => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(target, { method: scenario.method, headers: scenario.headers, agent, timeout: REQUEST_TIMEOUT_SEC * 1000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'TIMEOUT' })));
    req.on('error', reject);
    req.end(scenario.body);
  });

  const connection = async () => {
    while (issued < amount) {
      issued += 1;
      const sentAt = performance.now();
      try {
        const { status, body } = await send();
        const now = performance.now();
        longestPauseMs = Math.max(longestPauseMs, now - lastResponseAt);
        lastResponseAt = now;
        statusCodes[status] = (statusCodes[status] ?? 0) + 1;
        if (status < 200 || status >= 300) non2xx += 1;
        else if (!scenario.verifyBody(body)) wrongBody += 1;
        else {
          good += 1;
          latencies.push(now - sentAt);
        }
      } catch (error) {
        errors += 1;
        if ((error as { code?: string }).code === 'TIMEOUT') timeouts += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, connection));
  agent.destroy();
  const wallSec = (lastResponseAt - started) / 1000;
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]!) : 0);
  return {
    requestsPerSec: wallSec > 0 ? good / wallSec : 0,
    wallSec,
    responses: Object.values(statusCodes).reduce((sum, count) => sum + count, 0),
    good, errors, timeouts, non2xx, wrongBody,
    p50: percentile(0.5),
    p99: percentile(0.99),
    maxLatencyMs: Math.round(latencies.at(-1) ?? 0),
    statusCodes,
    longestPauseMs,
  };
}

/** How many requests in a run were not good, all causes together. */
export function badCount(run: RunResult): number {
  return run.errors + run.non2xx + run.wrongBody;
}
