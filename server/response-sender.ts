/**
 * Writes one app response to the client socket: validated status line, the app's headers
 * in the app's order (repeats kept), then the body — whole, or chunk by chunk as the
 * worker streams it. Failures follow DESIGN.md's table: an error status before the
 * headers went out, an aborted connection after.
 */
import type { ServerResponse } from 'node:http';
import type { FlatHeaders, StreamMessage, TaskResult, WholeBody } from '../runtime/protocol.ts';
import type { StreamReceiver } from './pool/application-group.ts';
import { InterpoolError, fromWorkerError } from './errors.ts';
import { findHeaderFault, parseStatusLine } from './response-rules.ts';

/** An error as the access log reports it (catalog errors and Fastify's own). */
export interface ReportedError {
  code: string;
  statusCode: number;
  message: string;
  detail?: string;
  /** Seconds for a 503's Retry-After, when the server knows better than RETRY_AFTER_SECONDS. */
  retryAfter?: number | undefined;
}

export interface SendOutcome {
  status: number;
  bytes: number;
  workerId: number | undefined;
  /** The error behind a failed response, for the log. */
  error?: ReportedError;
  aborted: boolean;
  /** Something the server corrected in the app's response (a body cut at its Content-Length). */
  warning?: string;
}

/** What a 503 tells the client to wait before trying again. */
export const RETRY_AFTER_SECONDS = 5;

/** What the sender asks of the request it answers (its RequestTicket). */
export interface RequestControl {
  /** The response needs the worker to stop (bad headers mid-stream). */
  cancel(): void;
  /** Flow control towards the worker producing a streamed body. */
  setPaused(paused: boolean): void;
}

export class ResponseSender implements StreamReceiver {
  readonly #res: ServerResponse;
  readonly #mount: string;
  /** Set by attach() once the request is admitted. */
  #control: RequestControl | undefined;
  /** True once the server is shutting down: the response then closes its connection. */
  readonly #isClosing: () => boolean;
  #paused = false;
  /** Told the outcome once the response is over, in a microtask of its own (see #finish). */
  readonly #onDone: (outcome: SendOutcome) => void;
  #status = 0;
  #bytes = 0;
  #declaredLength: number | undefined;
  /** HEAD, 204 or 304: no body goes out, so an app's Content-Length describes none. */
  #bodyless = false;
  #workerId: number | undefined;
  #error: InterpoolError | undefined;
  #warning: string | undefined;
  #done = false;

  /**
   * `onDone` is called once the response is complete, failed, or the client went away: a
   * callback rather than a promise, which with the async handler awaiting it and Fastify's
   * then on that handler's promise cost every request two promises and three reactions.
   */
  constructor(res: ServerResponse, mount: string, isClosing: () => boolean, onDone: (outcome: SendOutcome) => void) {
    this.#res = res;
    this.#mount = mount;
    this.#isClosing = isClosing;
    this.#onDone = onDone;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The request this sender answers, once admitted: what the sender stops or holds back. */
  attach(control: RequestControl): void {
    this.#control = control;
  }

  /** The task settled: a whole response, an error before headers, or "see the stream". */
  onTaskResult(result: TaskResult): void {
    this.#workerId = result.workerId;
    if (this.#done) return;
    this.#guard(() => {
      if (result.kind === 'response') this.#sendWhole(result.status, result.headers, result.body);
      else if (result.kind === 'error') this.fail(fromWorkerError(result.error.code, result.error.message, this.#mount, result.error.detail));
    });
  }

  onStream(message: StreamMessage, workerId: number): void {
    this.#workerId = workerId;
    if (this.#done) return;
    this.#guard(() => this.#handleStream(message));
  }

  /**
   * Whatever a worker sends, answering must not throw: a throw here would escape into a
   * promise callback or a port listener, leave the client hanging, and could take the
   * server process down with an unhandled rejection.
   */
  #guard(send: () => void): void {
    try {
      send();
    } catch (error) {
      const detail = error instanceof Error ? error.stack : String(error);
      this.fail(new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', ['the worker sent a response the server could not use'], detail));
    }
  }

  #handleStream(message: StreamMessage): void {
    switch (message.type) {
      case 'start':
        this.#startStream(message.status, message.headers);
        break;
      case 'chunk':
        this.#writeChunk(message.data);
        break;
      case 'end':
        this.#endStream();
        break;
      case 'error':
        this.fail(fromWorkerError(message.error.code, message.error.message, this.#mount, message.error.detail));
        break;
      case 'log':
        break;
    }
  }

  /** Answer with an error status, or abort the connection when headers already went out. */
  fail(error: InterpoolError, extraHeaders: Record<string, string> = {}): void {
    if (this.#done) return;
    this.#error = error;
    if (this.#res.headersSent) {
      this.#abort();
      return;
    }
    this.#status = error.statusCode;
    const body = `${publicMessage(error)}\n`;
    this.#closeAfterIfClosing();
    this.#res.writeHead(error.statusCode, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(error.statusCode === 503 ? { 'retry-after': String(error.retryAfter ?? RETRY_AFTER_SECONDS) } : {}),
      ...extraHeaders,
    });
    this.#res.end(body);
    this.#finish(false);
  }

  /** The client went away before the response was complete. */
  clientGone(): void {
    if (this.#done) return;
    this.#finish(true);
  }

  #sendWhole(status: string, headers: FlatHeaders, body: WholeBody): void {
    const head = this.#checkHead(status, headers);
    if (!head) return;
    let length = 0;
    if (typeof body === 'string') length = body.length;
    else for (let i = 0; i < body.length; i++) length += body[i]!.byteLength;
    if (this.#declaredLength !== undefined && length > this.#declaredLength && !this.#bodyless) {
      const whole = typeof body === 'string' ? Buffer.from(body, 'latin1') : Buffer.concat(body);
      body = [this.#cutAtDeclaredLength(whole, 0)];
      length = this.#declaredLength;
    }
    if (this.#declaredLength !== undefined && this.#declaredLength !== length && !this.#bodyless) {
      this.fail(new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', [`Content-Length says ${this.#declaredLength} but the body has ${length} bytes`]));
      return;
    }
    // A body given whole gets its length computed here, as mod_wsgi does for a list —
    // unless there is no body to measure: 204/304, or a HEAD the app answered empty.
    const nothingToMeasure = head.code === 204 || head.code === 304 || (this.#bodyless && length === 0);
    // head.flat is this response's own list: the length goes on its end, no copy.
    if (this.#declaredLength === undefined && !nothingToMeasure) head.flat.push('Content-Length', String(length));
    this.#closeAfterIfClosing();
    this.#res.writeHead(head.code, head.reason, head.flat);
    // One chunk (the common case) goes out with the head in a single write; a string
    // (latin-1, one character per byte) is copied into the head's own buffer.
    if (typeof body === 'string') {
      this.#res.end(body, 'latin1');
    } else if (body.length === 1) {
      this.#res.end(body[0]);
    } else {
      for (const chunk of body) this.#res.write(chunk);
      this.#res.end();
    }
    this.#bytes = length;
    this.#finish(false);
  }

  #startStream(status: string, headers: FlatHeaders): void {
    const head = this.#checkHead(status, headers);
    if (!head) {
      this.#control?.cancel();
      return;
    }
    this.#closeAfterIfClosing();
    this.#res.writeHead(head.code, head.reason, head.flat);
  }

  /**
   * Once shutdown has begun, a response says Connection: close and its connection is
   * closed after it: a client told keep-alive would reuse a socket the server is about to
   * close, and get a reset instead of an answer. Called just before the head is written.
   */
  #closeAfterIfClosing(): void {
    if (this.#isClosing()) this.#res.shouldKeepAlive = false;
  }

  #writeChunk(data: Uint8Array): void {
    if (!this.#res.headersSent) return;
    const chunk = this.#cutAtDeclaredLength(data, this.#bytes);
    this.#bytes += chunk.byteLength;
    if (chunk.byteLength === 0 || this.#res.write(chunk) || this.#paused) return;
    // The socket's buffer is full: hold the app back until the client has read it.
    this.#paused = true;
    this.#control?.setPaused(true);
    this.#res.once('drain', () => {
      this.#paused = false;
      this.#control?.setPaused(false);
    });
  }

  /**
   * The declared Content-Length is a promise to the client: bytes past it are not sent
   * (they would be read as the start of the next response on a kept-alive connection)
   * and the cut is logged as a warning. `sent` bytes went out before `data`.
   */
  #cutAtDeclaredLength(data: Uint8Array, sent: number): Uint8Array {
    const declared = this.#declaredLength;
    if (declared === undefined || this.#bodyless || sent + data.byteLength <= declared) return data;
    this.#warning ??= `the app sent more than its Content-Length of ${declared} bytes; the body was cut at ${declared}`;
    return data.subarray(0, Math.max(0, declared - sent));
  }

  #endStream(): void {
    if (!this.#res.headersSent) return;
    if (this.#declaredLength !== undefined && this.#bytes < this.#declaredLength && !this.#bodyless) {
      this.#error = new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', [`Content-Length says ${this.#declaredLength} but the body has ${this.#bytes} bytes`]);
      this.#abort();
      return;
    }
    this.#res.end();
    this.#finish(false);
  }

  /** Validate the app's status and headers; on a fault answer 500 and return undefined. */
  #checkHead(status: string, headers: FlatHeaders): { code: number; reason: string; flat: string[] } | undefined {
    // Any interpreter kind may get the types wrong; the rules below assume strings.
    if (typeof status !== 'string' || !areFlatHeaders(headers)) {
      this.fail(new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', ['the status must be a string and the headers a list of names and values, all strings']));
      return undefined;
    }
    const parsed = parseStatusLine(status);
    const fault = 'fault' in parsed ? parsed.fault : findHeaderFault(headers);
    if (fault !== undefined || 'fault' in parsed) {
      this.fail(new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', [fault!]));
      return undefined;
    }
    // A 204 has no content, so no framing either (RFC 9110 §8.6, RFC 9112 §6.1): an app's
    // Content-Length or Transfer-Encoding is dropped, as Apache drops them.
    if (parsed.code === 204) dropFraming(headers);
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') this.#declaredLength = parseContentLength(headers[i + 1]!);
    }
    if (this.#declaredLength === -1) {
      this.fail(new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', ['Content-Length is not a non-negative integer']));
      return undefined;
    }
    this.#status = parsed.code;
    this.#bodyless = this.#res.req?.method === 'HEAD' || parsed.code === 204 || parsed.code === 304;
    // The list came in a message: it is this response's own, to hand to writeHead.
    return { code: parsed.code, reason: parsed.reason, flat: headers };
  }

  #abort(): void {
    this.#res.destroy();
    this.#finish(true);
  }

  #finish(aborted: boolean): void {
    this.#done = true;
    const outcome: SendOutcome = { status: this.#status, bytes: this.#bytes, workerId: this.#workerId, error: this.#error, aborted };
    if (this.#warning) outcome.warning = this.#warning;
    // Not from here: this runs inside the pool's handling of a result, which releasing
    // the request's run would re-enter.
    queueMicrotask(() => this.#onDone(outcome));
  }
}

/** Takes Content-Length and Transfer-Encoding out of a flat header list, in place. */
function dropFraming(headers: FlatHeaders): void {
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    headers[kept++] = headers[i]!;
    headers[kept++] = headers[i + 1]!;
  }
  headers.length = kept;
}

/** Any interpreter kind may get the types wrong: names and values, in pairs, all strings, or not. */
function areFlatHeaders(headers: unknown): headers is FlatHeaders {
  if (!Array.isArray(headers) || headers.length % 2 !== 0) return false;
  for (let i = 0; i < headers.length; i++) if (typeof headers[i] !== 'string') return false;
  return true;
}

function parseContentLength(value: string): number {
  return /^\d+$/.test(value.trim()) ? Number(value.trim()) : -1;
}

/** What a client may read: the catalog message for 4xx/503, no app details for 500/502. */
function publicMessage(error: InterpoolError): string {
  if (error.statusCode === 500) return `Internal Server Error (${error.code})`;
  if (error.statusCode === 502) return `Bad Gateway (${error.code})`;
  return `${error.message} (${error.code})`;
}
