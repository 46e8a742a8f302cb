/**
 * One load run: autocannon against one server for a fixed time (or a fixed number of
 * requests), counting a response as good only when its status is 2xx and its body is
 * the one the scenario expects. Requests/s counts good responses only: a fast error is
 * not a result.
 */
import autocannon from 'autocannon';
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
  statusCodes: Record<string, number>;
}

/** Per-request timeout: a server that stalls shows up as timeouts, not as a hung run. */
const REQUEST_TIMEOUT_SEC = 30;

export async function runLoad(url: string, scenario: Scenario, shape: LoadShape): Promise<RunResult> {
  let good = 0;
  let wrongBody = 0;
  let firstSentAt = 0;
  let lastResponseAt = 0;
  const started = performance.now();
  const result = await autocannon({
    url,
    connections: shape.connections,
    ...(shape.amount ? { amount: shape.amount } : { duration: shape.duration }),
    timeout: REQUEST_TIMEOUT_SEC,
    requests: [{
      method: scenario.method,
      path: scenario.path,
      ...(scenario.headers ? { headers: scenario.headers } : {}),
      ...(scenario.body !== undefined ? { body: scenario.body } : {}),
      onResponse: (status, body) => {
        lastResponseAt = performance.now();
        if (status < 200 || status >= 300) return;
        if (scenario.verifyBody(body)) good += 1;
        else wrongBody += 1;
      },
    }],
  });
  firstSentAt = started;
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  const responses = Object.values(statusCodes).reduce((sum, count) => sum + count, 0);
  // A fixed-count run ends at its last response (autocannon itself only notices on its
  // once-a-second tick); a timed run lasts its measured duration.
  const wallSec = shape.amount ? (lastResponseAt - firstSentAt) / 1000 : result.duration;
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
    statusCodes,
  };
}

/** How many requests in a run were not good, all causes together. */
export function badCount(run: RunResult): number {
  return run.errors + run.non2xx + run.wrongBody;
}
