/**
 * Answering requests that are refused before any worker is involved, whichever layer
 * catches them — Node's parser (clientError: malformed heads, limits, timeouts) or
 * request-guard.ts (an onRequest hook) — in one shape: the catalog status, one line of
 * text/plain naming the problem, `Connection: close`, and the connection closed after.
 *
 * Once a connection has had a request refused, nothing more read from it is served:
 * bytes after a refused head (a smuggled second request, pipelined or in the "body")
 * may already have been parsed as requests by the time the answer is written, so
 * requests arriving on a refused connection are dropped without a response.
 *
 * Requests read before the refused one are answered first, in order: a refusal never
 * overtakes the response of a request that ran (its side effects happened, its client
 * must hear about them).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Logger } from 'pino';
import { InterpoolError } from './errors.ts';
import type { HttpLimitsConfig } from './http-limits.ts';
import { headBudget, headLimitsOf } from './http-limits.ts';
import { findRequestFault } from './request-guard.ts';

/** How long a refused connection stays half-open so the client can read the answer before the close. */
const LINGER_MS = 2000;

const refused = new WeakSet<Socket>();

/**
 * Where the request head being parsed began on its connection, as nearly as the server
 * can tell: socket.bytesRead when the previous head was complete (0 on a new
 * connection). Only read when Node's parser reports HPE_HEADER_OVERFLOW, to tell a head
 * with too many fields from a head with too many bytes.
 */
const HEAD_START = Symbol('interpool.headStart');

type ServerSocket = Socket & {
  [HEAD_START]?: number;
  /** Node's http server: the response now writing to this socket (later pipelined ones wait in order). */
  _httpMessage?: (ServerResponse & { req?: IncomingMessage }) | null;
  /** Node's http server that accepted this connection. */
  server?: { headersTimeout: number };
};

export function isRefused(socket: Socket): boolean {
  return refused.has(socket);
}

function refusalBody(error: InterpoolError): string {
  return `${error.message} (${error.code})\n`;
}

/**
 * The onRequest hook: check the head (request-guard.ts) and answer a fault with its
 * status and Connection: close. Must be the first onRequest hook, so that a refused
 * request and everything after it on the connection never go further.
 */
export function guardRequests(config: HttpLimitsConfig, logger: Logger) {
  const limits = headLimitsOf(config);
  return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const raw = request.raw;
    const socket: ServerSocket = raw.socket;
    socket[HEAD_START] = socket.bytesRead;
    if (isRefused(socket)) {
      // Parsed from bytes after a refused request: never served, never answered.
      reply.hijack();
      return;
    }
    const fault = findRequestFault(
      { method: raw.method ?? '', target: request.originalUrl, httpVersion: raw.httpVersion, rawHeaders: raw.rawHeaders },
      limits,
    );
    if (!fault) {
      done();
      return;
    }
    refused.add(socket);
    logRefusal(logger, fault, socket, raw);
    lingerAfter(reply.raw, socket);
    reply.code(fault.statusCode).header('connection', 'close').type('text/plain; charset=utf-8').send(refusalBody(fault));
  };
}

/** After the answer is written, stop writing and give the client time to read it before closing. */
function lingerAfter(res: ServerResponse, socket: Socket): void {
  res.once('finish', () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}

type ClientError = Error & { code?: string; reason?: string; rawPacket?: unknown; bytesParsed?: number };

export interface ClientErrorContext {
  /** A request's head was complete and its body was still being read. */
  requestStarted: boolean;
  /** How many bytes of the current request head had been read when the parser stopped. */
  headBytes: number;
  /** The head timeout in force, in seconds: shorter than --headers-timeout while at --max-connections (connection-cap.ts). */
  headersTimeout: number;
}

/** The catalog error for an error Node's http server reports on a connection (parser or timeout). */
export function toClientError(error: ClientError, config: HttpLimitsConfig, { requestStarted, headBytes, headersTimeout }: ClientErrorContext): InterpoolError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new InterpoolError('INTERPOOL_ERR_REQUEST_TIMEOUT', [requestStarted
        ? `the whole request took longer than --body-timeout (${config.bodyTimeout} s)`
        : headersTimeout < config.headersTimeout
          ? `the request head took longer than ${headersTimeout} s, --headers-timeout while the server is at --max-connections (${config.maxConnections})`
          : `the request head took longer than --headers-timeout (${config.headersTimeout} s)`]);
    case 'HPE_HEADER_OVERFLOW':
      // Node reports both of its head limits with this one code: more fields than
      // maxHeadersCount, and more bytes than maxHeaderSize. A head shorter than the byte
      // budget can only have overflowed the count.
      return headBytes < headBudget(config)
        ? new InterpoolError('INTERPOOL_ERR_TOO_MANY_HEADERS', [config.limitRequestFields])
        : new InterpoolError('INTERPOOL_ERR_HEAD_TOO_LARGE', [headBudget(config)]);
    case 'HPE_INVALID_VERSION':
      if (error.reason === 'Invalid HTTP version') return new InterpoolError('INTERPOOL_ERR_HTTP_VERSION', [versionIn(error.rawPacket)]);
      break;
    case 'HPE_PAUSED_H2_UPGRADE':
      // "PRI * HTTP/2.0": an HTTP/2 connection preface, on an HTTP/1 server.
      return new InterpoolError('INTERPOOL_ERR_HTTP_VERSION', ['HTTP/2.0']);
  }
  const reason = error.reason ?? error.code ?? error.message;
  return new InterpoolError('INTERPOOL_ERR_BAD_REQUEST', [reason]);
}

function versionIn(packet: unknown): string {
  const match = Buffer.isBuffer(packet) ? / HTTP\/([0-9.]{1,5})\r?\n/.exec(packet.toString('latin1')) : null;
  return match ? `HTTP/${match[1]!}` : 'this HTTP version';
}

/**
 * Fastify's clientErrorHandler: Node's parser refused the bytes, or a timeout passed.
 * Answer in the catalog's shape, after the responses of the requests read before it.
 */
export function handleClientError(config: HttpLimitsConfig, logger: Logger) {
  return (error: ClientError, socket: ServerSocket): void => {
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || socket.destroyed) return;
    if (isRefused(socket)) {
      // The parser stays failed: every later read errors again. The answer is already out.
      return;
    }
    refused.add(socket);
    const inFlight = socket._httpMessage;
    const failure = toClientError(error, config, {
      requestStarted: Boolean(inFlight && !inFlight.req?.complete),
      headBytes: headBytesRead(error, socket),
      headersTimeout: (socket.server?.headersTimeout ?? config.headersTimeout * 1000) / 1000,
    });
    logRefusal(logger, failure, socket, undefined, error.code);
    afterCompleteRequests(socket, () => writeRefusal(socket, failure));
  };
}

/**
 * The server's 'connect' event: Node hands a CONNECT request to it instead of to the
 * request handler, and closes the connection without a word when nobody listens.
 */
export function refuseConnect(logger: Logger) {
  return (request: IncomingMessage, socket: ServerSocket): void => {
    const failure = new InterpoolError('INTERPOOL_ERR_CONNECT');
    refused.add(socket);
    logRefusal(logger, failure, socket, request);
    afterCompleteRequests(socket, () => writeRefusal(socket, failure));
  };
}

/** Bytes of the current head read up to where the parser stopped (see HEAD_START). */
function headBytesRead(error: ClientError, socket: ServerSocket): number {
  const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket : undefined;
  const stoppedAt = packet && typeof error.bytesParsed === 'number'
    ? socket.bytesRead - packet.length + error.bytesParsed
    : socket.bytesRead;
  return stoppedAt - (socket[HEAD_START] ?? 0);
}

/**
 * Run `then` once every request read whole before the refused bytes has had its
 * response written. Node answers a connection's requests in order, one response at a
 * time on the socket; a response whose request is incomplete (its body cut short by
 * the refusal) is never coming, and the refusal answers in its place.
 */
function afterCompleteRequests(socket: ServerSocket, then: () => void): void {
  const current = socket._httpMessage;
  if (!current || !current.req?.complete || socket.destroyed) {
    then();
    return;
  }
  const next = () => {
    current.off('finish', next);
    current.off('close', next);
    // Node has attached the next pipelined response (if any) in its own 'finish' listener.
    afterCompleteRequests(socket, then);
  };
  current.once('finish', next);
  current.once('close', next);
}

/** The refusal, written on the socket itself (the parser failed: there is no request to answer through). */
function writeRefusal(socket: ServerSocket, failure: InterpoolError): void {
  if (socket.destroyed) return;
  if (!socket.writable || socket._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const body = refusalBody(failure);
  const status = `${failure.statusCode} ${STATUS_TEXT[failure.statusCode] ?? 'Error'}`;
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 414: 'URI Too Long',
  431: 'Request Header Fields Too Large', 505: 'HTTP Version Not Supported',
};

function logRefusal(logger: Logger, error: InterpoolError, socket: Socket, request?: IncomingMessage, parserCode?: string): void {
  logger.info({
    status: error.statusCode,
    code: error.code,
    ...(parserCode ? { parser: parserCode } : {}),
    ...(request ? { method: request.method } : {}),
    remote: socket.remoteAddress,
  }, error.message);
}
