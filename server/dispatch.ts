/**
 * One request's journey on the main thread: match a mount, build the envelope, admit
 * it to the app (run, queue or refuse; its ticket keeps --queue-timeout and --timeout,
 * server/pool/request-ticket.ts), stream the answer back, stop the app when the client
 * goes away, and write the access-log line.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WireRequest } from '../runtime/protocol.ts';
import { logAccess, markRefusedFor, requestTarget } from './access-log.ts';
import type { ApplicationGroup, RequestTicket } from './pool/application-group.ts';
import { buildCgi, decodePathLatin1, splitRequestTarget, toWireCgi, type RequestFacts } from './environ.ts';
import { clientFacts } from './client-view.ts';
import { channels, type RequestStarted } from './diagnostics.ts';
import { InterpoolError } from './errors.ts';
import type { MountTable } from './mount-table.ts';
import { findTrailerFault } from './request-guard.ts';
import { ResponseSender } from './response-sender.ts';

/** Admit the request to its app; a refusal is marked as the app's before it goes to the error handler. */
function admit(request: FastifyRequest, group: ApplicationGroup, envelope: WireRequest, sender: ResponseSender): RequestTicket {
  try {
    return group.submit(envelope, sender);
  } catch (error) {
    markRefusedFor(request, group.config.name);
    throw error;
  }
}

/**
 * Not async: the request ends through the sender's callback, not a promise. What it
 * throws before the reply is hijacked (not found, refused) reaches the client through
 * Fastify's error handler, as a rejection would.
 */
export function dispatchRequest(
  request: FastifyRequest,
  reply: FastifyReply,
  mounts: MountTable<ApplicationGroup>,
  logger: Logger,
  isClosing: () => boolean = () => false,
): void {
  // The body is read whole, so a chunked body's trailer section is known: one carrying a
  // field it may not is refused here, before any worker. Not in the body parser: an error
  // there makes Fastify close the connection, losing the answers of requests pipelined
  // behind this one; the body's framing was sound (the parser refuses Content-Length and
  // Transfer-Encoding trailers itself), so the connection can stay open.
  const trailerFault = request.raw.rawTrailers.length === 0 ? undefined : findTrailerFault(request.raw.rawTrailers);
  if (trailerFault) throw trailerFault;
  const target = requestTarget(request);
  const { rawPath, query } = splitRequestTarget(target);
  const match = mounts.match(decodePathLatin1(rawPath));
  if (!match) throw new InterpoolError('INTERPOOL_ERR_NOT_FOUND', [rawPath]);

  const group = match.target;
  const body = ownedBody(request.body);
  const facts = requestFacts(request, target, body?.byteLength ?? 0);
  const id = group.nextRequestId();
  const cgi = toWireCgi(buildCgi(facts, match.scriptName, match.pathInfo, query));
  // Two literals, not a spread: a spread builds a throwaway object for every request.
  const envelope: WireRequest = body ? { id, cgi, urlScheme: facts.urlScheme, body } : { id, cgi, urlScheme: facts.urlScheme };

  // The sender's outcome is the end of the request on the main thread.
  const sender = new ResponseSender(reply.raw, group.config.name, isClosing, (outcome) => {
    ticket.release();
    logAccess(logger, request, reply.elapsedTime, outcome, group.config.name, id);
  });
  // Refusals (queue full, app failing to boot) throw here, before the reply is hijacked,
  // and reach the client through the error handler.
  const ticket = admit(request, group, envelope, sender);
  // The sender stops or holds back the worker through the ticket;
  // nothing reaches the sender before this line (results and streams arrive later, as messages).
  sender.attach(ticket);
  if (channels.requestStarted.hasSubscribers) channels.requestStarted.publish({ app: group.config.name, requestId: id, method: facts.method, path: rawPath } satisfies RequestStarted);
  reply.hijack();
  reply.raw.on('close', () => {
    if (sender.done) return;
    sender.clientGone();
    ticket.cancel();
  });
  // The ticket answers the sender (result, error, --timeout) from here.
}

function requestFacts(request: FastifyRequest, target: string, bodyLength: number): RequestFacts {
  const raw = request.raw;
  const socket = raw.socket;
  return {
    method: raw.method ?? 'GET',
    rawUrl: target,
    rawHeaders: raw.rawHeaders,
    httpVersion: raw.httpVersion,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    // REMOTE_ADDR, REMOTE_PORT and the scheme, with forwarding from trusted proxies applied.
    ...clientFacts(request),
    bodyLength,
  };
}

/**
 * Fastify hands us a Buffer that may share a pooled slab; the worker gets its own copy,
 * transferred. No body at all when it is empty (see WireRequest).
 */
function ownedBody(body: unknown): Uint8Array | undefined {
  if (!(body instanceof Uint8Array) || body.byteLength === 0) return undefined;
  return new Uint8Array(body);
}
