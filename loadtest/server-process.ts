/**
 * A server under test, run as its own child process the way a user would run it: spawn
 * it on a port picked here, wait until it answers a correct response, watch its memory
 * (the whole process tree: gunicorn, uWSGI and Apache fork workers) and its log, stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readTreeRss } from './proc.ts';

export interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  /** Sees every output line (the boot measurement reads interpool's boot reports). */
  onLine?: (line: string) => void;
  /** Which output lines are worth reporting (default: all of them). */
  isNotable?: (line: string) => boolean;
  /** Log files the server writes instead of stdout/stderr (Apache's ErrorLog). */
  logFiles?: string[];
  /** Run after the process exits (temporary config files, ...). */
  cleanup?: () => void;
}

/** A free TCP port on 127.0.0.1, found by binding port 0 and letting it go. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const KEEP_LINES = 40;

/** The request that tells a server is ready: the scenario's own, judged the same way. */
export interface ReadinessProbe {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  verify(body: string): boolean;
}

export class ServerProcess {
  readonly label: string;
  readonly port: number;
  readonly #spec: LaunchSpec;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  /** The last lines of output (for a failure report). */
  readonly #tail: string[] = [];
  /** Lines written since the last resetLog(): during a measurement, every one is notable. */
  #notable: string[] = [];
  #notableCount = 0;
  readonly #startedAt = performance.now();
  #rssPeak = 0;
  #sampler: NodeJS.Timeout | undefined;

  constructor(label: string, port: number, spec: LaunchSpec) {
    this.label = label;
    this.port = port;
    this.#spec = spec;
    this.#child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? -1 : null);
        resolve(this.#exitCode);
      });
      this.#child.once('error', (error) => {
        this.#collect(`spawn failed: ${error.message}`);
        this.#exitCode = -1;
        resolve(-1);
      });
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.trim() !== '') this.#collect(line);
      });
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get exited(): boolean {
    return this.#exitCode !== undefined;
  }

  #collect(line: string): void {
    this.#spec.onLine?.(line);
    this.#tail.push(line);
    if (this.#tail.length > KEEP_LINES) this.#tail.shift();
    if (this.#spec.isNotable && !this.#spec.isNotable(line)) return;
    this.#notableCount += 1;
    if (this.#notable.length < 5) this.#notable.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
  }

  /**
   * Wait until the scenario's request gets a 2xx whose body passes its check; returns
   * the milliseconds from spawn to that first correct response.
   */
  async waitUntilReady(probe: ReadinessProbe, timeoutMs: number): Promise<number> {
    const { path, verify } = probe;
    const deadline = performance.now() + timeoutMs;
    let last = 'no answer yet';
    while (performance.now() < deadline) {
      if (this.exited) throw new Error(`exited with code ${this.#exitCode} before it was ready\n${this.logTail()}`);
      try {
        const response = await fetch(`${this.url}${path}`, {
          method: probe.method, headers: probe.headers, body: probe.body, signal: AbortSignal.timeout(5000),
        });
        const body = await response.text();
        if (response.ok && verify(body)) return performance.now() - this.#startedAt;
        last = `answered ${response.status}: ${JSON.stringify(body.slice(0, 200))}`;
        if (response.status < 500) break;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(100);
    }
    throw new Error(`not ready after ${Math.round(timeoutMs / 1000)} s (${last})\n${this.logTail()}`);
  }

  /** Forget the output so far: what is written from now on is reported. */
  resetLog(): void {
    this.#drainLogFiles();
    this.#notable = [];
    this.#notableCount = 0;
  }

  /** Output lines since resetLog(): a count and the first few. */
  notableLog(): { count: number; sample: string[] } {
    this.#drainLogFiles();
    return { count: this.#notableCount, sample: [...this.#notable] };
  }

  logTail(): string {
    this.#drainLogFiles();
    return this.#tail.map((line) => `    | ${line}`).join('\n');
  }

  /** Bytes of each log file already collected. */
  readonly #logOffsets = new Map<string, number>();

  #drainLogFiles(): void {
    for (const file of this.#spec.logFiles ?? []) {
      let content: Buffer;
      try {
        content = readFileSync(file);
      } catch {
        continue;
      }
      const offset = this.#logOffsets.get(file) ?? 0;
      const fresh = content.subarray(offset).toString('utf8');
      const complete = fresh.lastIndexOf('\n') + 1;
      this.#logOffsets.set(file, offset + Buffer.byteLength(fresh.slice(0, complete)));
      for (const line of fresh.slice(0, complete).split('\n')) if (line.trim() !== '') this.#collect(line);
    }
  }

  rss(): number {
    return this.#child.pid ? readTreeRss(this.#child.pid) : 0;
  }

  /** Sample the tree's RSS every 500 ms until stopSampling(). */
  startSampling(): void {
    this.#rssPeak = this.rss();
    this.#sampler = setInterval(() => { this.#rssPeak = Math.max(this.#rssPeak, this.rss()); }, 500);
  }

  /** The peak RSS seen since startSampling(). */
  stopSampling(): number {
    clearInterval(this.#sampler);
    this.#rssPeak = Math.max(this.#rssPeak, this.rss());
    return this.#rssPeak;
  }

  /** Send a signal (SIGHUP: reload). */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.#child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    clearInterval(this.#sampler);
    if (!this.exited) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    this.#spec.cleanup?.();
  }
}
