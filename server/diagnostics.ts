/**
 * The server's diagnostics_channel names, declared in one place (as undici does).
 * Metrics, the dashboard and tests subscribe to these instead of being threaded
 * through the request path; publishing costs nothing when nobody listens.
 */
import { channel } from 'node:diagnostics_channel';
import type { BootReport } from '../runtime/protocol.ts';
import type { WorkerExit } from './pool/application-group.ts';

/**
 * A request was admitted to an app (it runs now or waits in the queue). `path` is the
 * raw path without the query string. Its requestFinished, with the same app and
 * requestId, follows once its response is over.
 */
export interface RequestStarted {
  app: string;
  requestId: number;
  method: string;
  path: string;
}

/** One request is finished (or refused): what the access log writes, as data. */
export interface RequestFinished {
  app: string;
  /** The id its requestStarted had; undefined for a request refused before it was admitted. */
  requestId: number | undefined;
  method: string;
  status: number;
  bytes: number;
  ms: number;
  workerId: number | undefined;
  aborted: boolean;
  code: string | undefined;
}

export interface InterpreterBooted {
  app: string;
  generation: number;
  report: BootReport;
}

export interface InterpreterExited extends WorkerExit {
  app: string;
}

export interface AppReloaded {
  app: string;
  ok: boolean;
  error?: string;
}

/** An app's count of threads stuck in C code changed (one got stuck, or one exited after all). */
export interface ThreadsStuck {
  app: string;
  stuck: number;
}

/** An app that no interpreter of this process can serve any more; only a new process can (process-replacement.ts). */
export interface ProcessWanted {
  app: string;
  reason: string;
}

/** A connection was closed as soon as it was accepted: the server holds --max-connections. */
export interface ConnectionRefused {
  remoteAddress: string | undefined;
  maxConnections: number;
}

export const channels = {
  requestStarted: channel('interpool:request:started'),
  requestFinished: channel('interpool:request:finished'),
  interpreterBooted: channel('interpool:interpreter:booted'),
  interpreterExited: channel('interpool:interpreter:exited'),
  appReloaded: channel('interpool:app:reloaded'),
  threadsStuck: channel('interpool:threads:stuck'),
  processWanted: channel('interpool:process:wanted'),
  connectionRefused: channel('interpool:connection:refused'),
} as const;
