/**
 * The WSGI calling convention (PEP 3333) for JavaScript and TypeScript apps:
 * `application(environ, startResponse)` returning an Iterable, an AsyncIterable or a
 * Promise of one, of chunks (Uint8Array, or strings written as UTF-8).
 *
 * startResponse checks its arguments when it is called and throws inside the app
 * (start-response-checks.ts: a TypeError for a wrong type, a RangeError for a broken
 * rule); an app that catches the error can call it again and still answer. The main
 * thread checks the same rules once more, as the last line of defence.
 */
import type { ErrorData, RequestEnvelope, TaskResult } from './protocol.ts';
import { CANCELLED, type ResponseWriter } from './response-writer.ts';
import { checkExcInfo, checkHeaders, checkStatus } from './start-response-checks.ts';
import { sharedStore, type SharedStore } from './shared-store-api.ts';
import { ErrorStream, InputStream } from './wsgi-streams.ts';
import { unpackCgi } from './wire-cgi.ts';

export type Chunk = Uint8Array | string;
export type Write = (chunk: Chunk) => void;
export type StartResponse = (status: string, headers: [string, string][], excInfo?: unknown) => Write;
export type Environ = Record<string, unknown> & {
  'wsgi.input': InputStream;
  'wsgi.errors': ErrorStream;
  /** The app's shared store (docs/shared-store.md). */
  'interpool.shared': SharedStore;
};
export type AppResult = Iterable<Chunk> | AsyncIterable<Chunk>;
export type Application = (environ: Environ, startResponse: StartResponse) => AppResult | Promise<AppResult>;

/** Something the app handed back that the WSGI contract does not allow. */
class BadResponseError extends Error {}

const encoder = new TextEncoder();

/**
 * How this worker runs its app, for wsgi.multithread and wsgi.multiprocess.
 * `overlap`: embedded mode (--workers 0), where requests overlap in this one isolate
 * (each awaits, the next runs meanwhile), as threads share an interpreter.
 * `multiprocess`: another isolate may run the app at the same time (--workers above 1,
 * --processes above 1), with module state of its own, as a process has.
 */
export interface WorkerMode {
  overlap: boolean;
  multiprocess: boolean;
}

export function buildEnviron(envelope: RequestEnvelope, writer: ResponseWriter, mode: WorkerMode): Environ {
  // The unpacked variables become the environ itself (no copy of them per request).
  return Object.assign(unpackCgi(envelope.cgi) as Environ, {
    'wsgi.version': [1, 0],
    'wsgi.url_scheme': envelope.urlScheme,
    'wsgi.input': new InputStream(envelope.body),
    'wsgi.errors': new ErrorStream((line) => writer.log(line)),
    'wsgi.multithread': mode.overlap,
    'wsgi.multiprocess': mode.multiprocess,
    'wsgi.run_once': false,
    // The body was read whole by the main thread: read() without a size ends at its end.
    'wsgi.input_terminated': true,
    // The app's store, shared by all its interpreters (docs/shared-store.md).
    'interpool.shared': sharedStore,
  });
}

/** Run one request through a JS application; never throws, always calls close(). */
export async function runApplication(
  app: Application,
  envelope: RequestEnvelope,
  writer: ResponseWriter,
  mode: WorkerMode,
): Promise<TaskResult> {
  const environ = buildEnviron(envelope, writer, mode);
  const startResponse = createStartResponse(writer);
  let result: unknown;
  try {
    result = await app(environ, startResponse);
    if (Array.isArray(result)) {
      const body = result.map((chunk) => toBodyChunk(chunk, writer));
      requireStartResponse(writer);
      return writer.finishWhole(body);
    }
    if (await streamBody(toIterable(result), writer) === 'cancelled') return writer.finishStream();
    requireStartResponse(writer);
    return writer.finishStream();
  } catch (error) {
    return writer.fail(toErrorData(error));
  } finally {
    environ['wsgi.errors'].flush();
    await closeResult(result, writer);
  }
}

function createStartResponse(writer: ResponseWriter): StartResponse {
  const write: Write = (chunk) => writer.sendChunk(toBodyChunk(chunk, writer));
  // Every argument is checked before anything is recorded: an app that catches the
  // error can call startResponse again and still answer.
  return (status, headers, excInfo) => {
    checkExcInfo(excInfo);
    if (excInfo != null) {
      // PEP 3333: once headers are on the wire the error can only abort the response.
      if (writer.headersSent) throw excInfo;
    } else if (writer.headersSet) {
      throw new Error(`startResponse was called a second time without excInfo (the status is already ${JSON.stringify(writer.status)}); `
        + 'pass the caught error as excInfo to replace the status and headers before the body starts');
    }
    writer.setHeaders(checkStatus(status), checkHeaders(headers));
    return write;
  };
}

/**
 * Send each chunk as the iterable produces it. A request cancelled by the main thread
 * (client gone, --timeout) stops the iteration even while the app is waiting for its
 * next chunk, so that close() runs now rather than whenever that chunk would come, and
 * the interpreter is free for the next request. The abandoned next() is left pending.
 */
async function streamBody(iterable: AsyncIterable<unknown> | Iterable<unknown>, writer: ResponseWriter): Promise<'done' | 'cancelled'> {
  const isAsync = typeof (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
  const iterator: AsyncIterator<unknown> | Iterator<unknown> = isAsync
    ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
    : (iterable as Iterable<unknown>)[Symbol.iterator]();
  const cancellation = writer.watchCancellation();
  let finished = false;
  try {
    for (;;) {
      const step = await Promise.race([iterator.next(), cancellation.cancelled]);
      if (step === CANCELLED) return 'cancelled';
      if (step.done) {
        finished = true;
        return 'done';
      }
      writer.sendChunk(toBodyChunk(isAsync ? step.value : await step.value, writer));
      // Backpressure: a client that does not read holds the app back.
      if (writer.paused) await writer.waitUntilWritable();
      if (writer.cancelled) return 'cancelled';
    }
  } catch (error) {
    finished = true;
    throw error;
  } finally {
    cancellation.stop();
    // As for-await does: let a generator run its finally blocks when we stop early. If
    // its next() is still pending, return() waits for it, so do not wait for return().
    if (!finished && cancellation.fired) void returnQuietly(iterator);
    else if (!finished) await returnQuietly(iterator);
  }
}

async function returnQuietly(iterator: AsyncIterator<unknown> | Iterator<unknown>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The generator's own cleanup failed; close() below still runs.
  }
}

/** PEP 3333: start_response must have been called by the time the body is complete. */
function requireStartResponse(writer: ResponseWriter): void {
  if (!writer.headersSet) throw new BadResponseError('the app returned without calling start_response');
}

function toBodyChunk(chunk: unknown, writer: ResponseWriter): Uint8Array {
  if (!writer.headersSet) throw new BadResponseError('the app produced body data before calling start_response');
  if (typeof chunk === 'string') return encoder.encode(chunk);
  if (chunk instanceof Uint8Array) return chunk;
  throw new BadResponseError(`body chunks must be Uint8Array or string, got ${describe(chunk)}`);
}

function toIterable(result: unknown): AsyncIterable<unknown> | Iterable<unknown> {
  if (typeof result === 'string' || result instanceof Uint8Array) {
    throw new BadResponseError('the app returned a single string or Uint8Array; return an iterable of chunks, e.g. [body]');
  }
  if (result != null && (typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' ||
      typeof (result as Iterable<unknown>)[Symbol.iterator] === 'function')) {
    return result as AsyncIterable<unknown> | Iterable<unknown>;
  }
  throw new BadResponseError(`the app must return an iterable of chunks, got ${describe(result)}`);
}

/** PEP 3333: the iterable's close() is called whatever happened; its own failure is logged. */
async function closeResult(result: unknown, writer: ResponseWriter): Promise<void> {
  const close = (result as { close?: unknown } | null | undefined)?.close;
  if (typeof close !== 'function') return;
  try {
    await close.call(result);
  } catch (error) {
    writer.log(`close() raised: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  }
}

function toErrorData(error: unknown): ErrorData {
  if (error instanceof BadResponseError) return { code: 'APP_BAD_RESPONSE', message: error.message, detail: error.stack };
  if (error instanceof Error) return { code: 'APP_RAISED', message: `${error.name}: ${error.message}`, detail: error.stack };
  return { code: 'APP_RAISED', message: `the app threw a non-Error value: ${describe(error)}` };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'Object'})` : `${typeof value} ${String(value)}`;
}
