/**
 * What the dashboard knows about requests, per app, from the diagnostics channels
 * (nothing is threaded through the request path): totals by status class, 503/504
 * refusals, a per-second ring of counts and latency histograms over the last minutes
 * (rates, percentiles, chart series), and the requests now running — their path
 * (never the query string, headers or body) and when they arrived.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { channels, type RequestFinished, type RequestStarted } from '../diagnostics.ts';
import { IdTable } from '../id-table.ts';
import { bucketOf, newHistogram, quantilesOf } from './latency-histogram.ts';

/** How far back the charts and windows reach, in seconds. */
export const HISTORY_SECONDS = 300;
/** Requests per second is averaged over this many whole seconds. */
export const RATE_WINDOW_SECONDS = 10;
/** Latency percentiles are read over this many seconds. */
export const LATENCY_WINDOW_SECONDS = 60;
/** The error rate (share of 5xx responses) is read over this many seconds. */
export const ERROR_WINDOW_SECONDS = 60;

const QUANTILES = [0.5, 0.95, 0.99] as const;

export interface RequestTotals {
  total: number;
  byStatusClass: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  /** Responses with these statuses: queue full, app unavailable, timeouts, shutting down. */
  rejected: { '503': number; '504': number };
  /** Requests whose client went away before any status was sent (no status class). */
  aborted: number;
}

export interface RunningRequest {
  requestId: number;
  method: string;
  path: string;
  startedAt: number;
}

export interface Series {
  /** Epoch second of the first point; one point per second after it. */
  start: number;
  requests: number[];
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
}

class AppRecord {
  readonly totals: RequestTotals = {
    total: 0,
    byStatusClass: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    rejected: { '503': 0, '504': 0 },
    aborted: 0,
  };
  /** By request id (an IdTable, not a Map: see IdTable). */
  readonly running = new IdTable<RunningRequest>();
  /** Ring indexed by epoch second % HISTORY_SECONDS; `second` says which second a slot holds. */
  readonly #second = new Float64Array(HISTORY_SECONDS).fill(-1);
  readonly #count = new Uint32Array(HISTORY_SECONDS);
  /** Of #count, the 5xx responses (for the error rate). */
  readonly #serverErrors = new Uint32Array(HISTORY_SECONDS);
  readonly #latency: (Uint32Array | undefined)[] = new Array(HISTORY_SECONDS);

  count(second: number, ms: number, serverError: boolean): void {
    const slot = second % HISTORY_SECONDS;
    if (this.#second[slot] !== second) {
      this.#second[slot] = second;
      this.#count[slot] = 0;
      this.#serverErrors[slot] = 0;
      this.#latency[slot]?.fill(0);
    }
    this.#count[slot]!++;
    if (serverError) this.#serverErrors[slot]!++;
    (this.#latency[slot] ??= newHistogram())[bucketOf(ms)]!++;
  }

  /** Requests finished in whole seconds [from, to). */
  requestsBetween(from: number, to: number): number {
    return this.#sumBetween(this.#count, from, to);
  }

  /** Of those, the 5xx responses. */
  serverErrorsBetween(from: number, to: number): number {
    return this.#sumBetween(this.#serverErrors, from, to);
  }

  #sumBetween(counts: Uint32Array, from: number, to: number): number {
    let sum = 0;
    for (let second = from; second < to; second++) {
      const slot = second % HISTORY_SECONDS;
      if (this.#second[slot] === second) sum += counts[slot]!;
    }
    return sum;
  }

  quantilesBetween(from: number, to: number): (number | null)[] {
    const merged = newHistogram();
    for (let second = from; second < to; second++) {
      const slot = second % HISTORY_SECONDS;
      const histogram = this.#latency[slot];
      if (this.#second[slot] !== second || !histogram) continue;
      for (let index = 0; index < merged.length; index++) merged[index]! += histogram[index]!;
    }
    return quantilesOf(merged, QUANTILES);
  }

  series(from: number, to: number): Series {
    const series: Series = { start: from, requests: [], p50: [], p95: [], p99: [] };
    for (let second = from; second < to; second++) {
      const slot = second % HISTORY_SECONDS;
      const current = this.#second[slot] === second;
      series.requests.push(current ? this.#count[slot]! : 0);
      const [p50, p95, p99] = current && this.#latency[slot] ? quantilesOf(this.#latency[slot], QUANTILES) : [null, null, null];
      series.p50.push(p50!);
      series.p95.push(p95!);
      series.p99.push(p99!);
    }
    return series;
  }
}

export interface AppRequestView {
  totals: RequestTotals;
  perSecond: number;
  /** Responses and 5xx responses over the last ERROR_WINDOW_SECONDS; the share is null without responses. */
  errors: { windowSeconds: number; responses: number; serverErrors: number; rate: number | null };
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; windowSeconds: number };
  running: IdTable<RunningRequest>;
}

export class RequestRecorder {
  readonly #apps = new Map<string, AppRecord>();
  readonly #now: () => number;
  readonly #since: number;
  readonly #onStarted = (message: unknown) => this.#started(message as RequestStarted);
  readonly #onFinished = (message: unknown) => this.#finished(message as RequestFinished);

  /** Records only these apps (the channels are process-wide). */
  constructor(apps: readonly string[], now: () => number = Date.now) {
    for (const app of apps) this.#apps.set(app, new AppRecord());
    this.#now = now;
    this.#since = Math.floor(now() / 1000);
    subscribe(channels.requestStarted.name, this.#onStarted);
    subscribe(channels.requestFinished.name, this.#onFinished);
  }

  close(): void {
    unsubscribe(channels.requestStarted.name, this.#onStarted);
    unsubscribe(channels.requestFinished.name, this.#onFinished);
  }

  /** Count one finished request (also what the channel subscriber does). */
  record(app: string, status: number, ms: number): void {
    const record = this.#apps.get(app);
    if (!record) return;
    const { totals } = record;
    totals.total++;
    if (status < 100) {
      totals.aborted++;
      return;
    }
    const statusClass = `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx` as keyof RequestTotals['byStatusClass'];
    totals.byStatusClass[statusClass]++;
    if (status === 503 || status === 504) totals.rejected[status]++;
    record.count(Math.floor(this.#now() / 1000), ms, status >= 500);
  }

  view(app: string): AppRequestView | undefined {
    const record = this.#apps.get(app);
    if (!record) return undefined;
    const current = Math.floor(this.#now() / 1000);
    const [p50, p95, p99] = record.quantilesBetween(current - LATENCY_WINDOW_SECONDS + 1, current + 1);
    const responses = record.requestsBetween(current - ERROR_WINDOW_SECONDS + 1, current + 1);
    const serverErrors = record.serverErrorsBetween(current - ERROR_WINDOW_SECONDS + 1, current + 1);
    return {
      totals: structuredClone(record.totals),
      // Whole seconds only: the current one is still filling.
      perSecond: Math.round((record.requestsBetween(current - RATE_WINDOW_SECONDS, current) / RATE_WINDOW_SECONDS) * 10) / 10,
      latencyMs: { p50: p50!, p95: p95!, p99: p99!, windowSeconds: LATENCY_WINDOW_SECONDS },
      errors: { windowSeconds: ERROR_WINDOW_SECONDS, responses, serverErrors, rate: responses === 0 ? null : Math.round((serverErrors / responses) * 10000) / 10000 },
      running: record.running,
    };
  }

  /** One point per second over the last `seconds` whole seconds (none from before the recorder started). */
  series(app: string, seconds = HISTORY_SECONDS - 1): Series | undefined {
    const current = Math.floor(this.#now() / 1000);
    return this.#apps.get(app)?.series(Math.max(current - seconds, this.#since), current);
  }

  #started({ app, requestId, method, path }: RequestStarted): void {
    this.#apps.get(app)?.running.set(requestId, { requestId, method, path, startedAt: this.#now() });
  }

  #finished({ app, requestId, status, ms }: RequestFinished): void {
    if (requestId !== undefined) this.#apps.get(app)?.running.delete(requestId);
    this.record(app, status, ms);
  }
}
