/**
 * `interpool check FILE[:CALLABLE] [options]`: a pre-deploy check. Boots the app in the
 * engine the server would use, exactly as the server boots it (a real pool of one
 * interpreter, a real listener on a loopback port), calls it once with `GET /` — under
 * `wsgiref.validate` for Python apps; JS apps' answers go through the server's own
 * status and header rules — and prints what an operator wants to know before a deploy:
 * engine and version, boot stages with times, whether the app can be snapshotted,
 * memory after boot, and the response. Exit 0 when it boots and answers, 1 otherwise.
 */
import { Writable } from 'node:stream';
import { relative } from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { listNativeBuilds } from '../native/builds.ts';
import type { BootReport } from '../runtime/protocol.ts';
import { hintForBootFailure } from './boot-hints.ts';
import { resolveConfig, type ConfigSources, type ServerConfig } from './config.ts';
import { channels, type InterpreterBooted } from './diagnostics.ts';
import { createLogger } from './logger.ts';
import { OptionError } from './options.ts';
import { openServer, type RunningServer } from './serve.ts';

export interface CheckOutcome {
  ok: boolean;
  /** The lines printed, for tests and for the caller's stdout. */
  lines: string[];
}

type LogLine = Record<string, unknown>;

/** Run the check; `print` receives each line as it is known (a boot can take seconds). */
export async function checkApp(sources: ConfigSources, print: (line: string) => void = () => {}): Promise<CheckOutcome> {
  const lines: string[] = [];
  const say = (line: string) => { lines.push(line); print(line); };
  const config = checkConfig(sources);
  const app = config.apps[0]!;
  const python = app.kind === 'python' ? String(app.settings.python ?? '') : undefined;
  const shown = relative(sources.cwd, app.file);
  say(`checking ${shown === '' || shown.startsWith('..') ? app.file : shown}:${app.callable} (${app.kind}${python ? `, --python ${python}` : ''})`);

  const logs: LogLine[] = [];
  const reports: BootReport[] = [];
  const onBooted = (message: unknown) => { reports.push((message as InterpreterBooted).report); };
  subscribe(channels.interpreterBooted.name, onBooted);
  let server: RunningServer | undefined;
  try {
    // An app whose callable is missing stops a server's start; its boot report says why.
    server = await openServer(config, createLogger('info', 'json', collect(logs))).catch((error: unknown) => {
      if (reports[0]?.error) return undefined;
      throw error;
    });
    const report = reports[0];
    if (report === undefined) throw new Error('the interpreter did not report its boot');
    describeBoot(report, say);
    if (report.error) {
      say(`error       ${report.error.message}`);
      if (report.error.detail) for (const line of report.error.detail.trimEnd().split('\n')) say(`            ${line}`);
      const hint = hintForBootFailure(report.error.message, { python, ...(python === 'native' ? { nativeBuilds: listNativeBuilds() } : {}) });
      if (hint) say(`fix         ${hint}`);
      say('FAILED: the app does not boot');
      return { ok: false, lines };
    }
    if (server === undefined) throw new Error('the server did not start');
    const memory = server.groups[0]!.stats().interpreters.find((worker) => worker.workerId === report.workerId)?.memoryBytes;
    // What the figure measures: the engine says (the native engine: its own allocator and C-heap blocks).
    const measure = report.memory ?? (app.kind === 'python' && python !== 'native' ? 'the interpreter\'s WebAssembly memory' : 'the worker\'s V8 heap');
    if (memory) say(`memory      ${(memory / 1024 ** 2).toFixed(1)} MiB after boot (${measure})`);
    const answered = await requestRoot(server.url, app.prefix, app.kind, logs);
    for (const line of answered.lines) say(line);
    say(answered.ok ? 'ok: the app boots and answers' : 'FAILED: the app boots but does not answer GET / correctly');
    return { ok: answered.ok, lines };
  } finally {
    unsubscribe(channels.interpreterBooted.name, onBooted);
    await server?.close();
  }
}

/** One interpreter, a loopback port, no retry storms, and wsgiref.validate for Python. */
function checkConfig(sources: ConfigSources): ServerConfig {
  const config = resolveConfig({ ...sources, argv: [...sources.argv, '--workers', '1', '--bind', '127.0.0.1:0'] });
  if (config.apps.length !== 1) throw new OptionError(`check takes one app (FILE[:CALLABLE]), got ${config.apps.length}`);
  const app = config.apps[0]!;
  return { ...config, apps: [{ ...app, settings: { ...app.settings, validate: true } }] };
}

function describeBoot(report: BootReport, say: (line: string) => void): void {
  say(`engine      ${report.kind}${report.version ? `, ${report.version}` : ''}`);
  const total = report.stages.reduce((sum, stage) => sum + stage.ms, 0);
  say(`boot        ${Math.round(total)} ms${report.error ? ' until it failed' : ''}`);
  for (const stage of report.stages) say(`              ${stage.name.padEnd(28)} ${Math.round(stage.ms).toString().padStart(6)} ms`);
  if (report.kind !== 'python') return;
  const names = new Set(report.stages.map((stage) => stage.name));
  const notSnapshotted = (report.notes ?? []).find((note) => /snapshot/.test(note));
  if (notSnapshotted) say(`snapshot    no: ${notSnapshotted}`);
  else if (names.has('make snapshot')) say('snapshot    yes: the other interpreters of this app start from it');
  else if (names.has('restore snapshot')) say('snapshot    yes: restored from it');
  else if (!report.error) say('snapshot    no');
}

async function requestRoot(url: string, prefix: string, kind: string, logs: LogLine[]): Promise<{ ok: boolean; lines: string[] }> {
  const path = prefix === '' ? '/' : `${prefix}/`;
  const response = await fetch(new URL(path, url), { redirect: 'manual' });
  const body = Buffer.from(await response.arrayBuffer());
  const lines = [`GET /       ${response.status} ${response.statusText} (${body.length} bytes, ${response.headers.get('content-type') ?? 'no Content-Type'})${kind === 'python' ? ', under wsgiref.validate' : ''}`];
  const failure = logs.find((line) => line.level === 50 && line.code !== undefined);
  if (failure) {
    lines.push(`error       ${String(failure.code)}: ${String(failure.msg)}`);
    if (typeof failure.detail === 'string') for (const line of failure.detail.trimEnd().split('\n')) lines.push(`            ${line}`);
  }
  return { ok: response.status < 500 && failure === undefined, lines };
}

function collect(logs: LogLine[]): Writable {
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop()!;
      for (const part of parts) if (part.trim() !== '') logs.push(JSON.parse(part) as LogLine);
      done();
    },
  });
}
