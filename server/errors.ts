/**
 * The error catalog: every error interpool produces has a stable code, a message
 * template and the HTTP status it maps to. The status travels on the error
 * (`statusCode`), so the handler never needs an `instanceof` ladder.
 * docs/errors.md documents each code; a test keeps the two in step.
 */
import type { ErrorCode } from '../runtime/protocol.ts';

export interface CatalogEntry {
  /** HTTP status for request-time errors; 0 for errors that stop the server at start. */
  statusCode: number;
  /** What a user reads; `%s` placeholders are filled in order. */
  template: string;
  /** One sentence for docs/errors.md. */
  doc: string;
}

export const catalog = {
  INTERPOOL_ERR_INVALID_OPTION: { statusCode: 0, template: '%s', doc: 'A command-line option, environment variable or config-file value is not valid; the message names it and what it accepts.' },
  INTERPOOL_ERR_CONFIG_FILE: { statusCode: 0, template: '%s', doc: 'The config file cannot be read or is not valid JSON of the expected shape.' },
  INTERPOOL_ERR_APP_FILE: { statusCode: 0, template: '%s', doc: 'An app file does not exist, or its extension names no interpreter kind.' },
  INTERPOOL_ERR_APP_BOOT: { statusCode: 0, template: '%s', doc: 'An app failed to load at start (syntax error, import error, throws at import, callable missing).' },
  INTERPOOL_ERR_LISTEN: { statusCode: 0, template: 'cannot listen on %s: %s', doc: 'The server could not bind its address (port in use, permission denied, unknown host).' },
  INTERPOOL_ERR_NOT_FOUND: { statusCode: 404, template: 'no app is mounted at %s', doc: 'The request path matches no mount.' },
  INTERPOOL_ERR_BODY_TOO_LARGE: { statusCode: 413, template: 'request body is larger than --body-limit (%s bytes)', doc: 'The request body is over --body-limit; refused before any worker is involved.' },
  INTERPOOL_ERR_APP_RAISED: { statusCode: 500, template: 'the app raised an error', doc: 'The app threw or raised while handling the request; the traceback goes to the log, never to the client.' },
  INTERPOOL_ERR_BAD_RESPONSE: { statusCode: 500, template: 'the app returned an invalid response: %s', doc: 'The app gave a status or headers that break the WSGI contract (CR/LF, a status that is not three digits and a reason, a hop-by-hop header, a wrong type).' },
  INTERPOOL_ERR_WORKER_DIED: { statusCode: 502, template: 'the worker serving this request died: %s', doc: 'The worker running the request died, or its interpreter ended (crash, process.exit, out of memory; in Python os._exit, sys.exit, os.abort, a fatal error of the runtime); a replacement starts.' },
  INTERPOOL_ERR_TIMEOUT: { statusCode: 504, template: 'the request ran longer than --timeout (%s s)', doc: 'The request ran past --timeout: its interpreter is interrupted (Python), and replaced if it does not return within --timeout-grace. After headers were sent the connection is aborted instead.' },
  INTERPOOL_ERR_APP_UNAVAILABLE: { statusCode: 503, template: 'the app at %s is not available: %s', doc: 'The app cannot serve right now (it failed to boot, or is still starting); the response has Retry-After.' },
  INTERPOOL_ERR_QUEUE_FULL: { statusCode: 503, template: 'the app at %s is busy: its queue of %s waiting requests is full', doc: 'Every interpreter of the app is busy and --max-queue requests already wait; refused at once, without touching an interpreter. The response has Retry-After.' },
  INTERPOOL_ERR_QUEUE_TIMEOUT: { statusCode: 504, template: 'the request waited longer than --queue-timeout (%s s) for an interpreter', doc: 'The request waited past --queue-timeout (in the queue, or handed ahead of time to a busy interpreter); the app never ran it.' },
  INTERPOOL_ERR_CLIENT_GONE: { statusCode: 499, template: 'the client closed the connection', doc: 'The client disconnected before its response was complete; a queued request leaves the queue, a running one is stopped and its iterable closed. Logged only: nobody is left to read a status.' },
  INTERPOOL_ERR_SHUTTING_DOWN: { statusCode: 503, template: 'the server is shutting down', doc: 'The request arrived while the server was closing; the response has Connection: close.' },
  INTERPOOL_ERR_BAD_REQUEST: { statusCode: 400, template: 'bad request: %s', doc: 'The request is malformed or ambiguous in a way used to smuggle requests (two Host, Content-Length or Content-Type headers, Content-Length with Transfer-Encoding, a Transfer-Encoding other than one chunked, forbidden bytes, * with a method other than OPTIONS); the connection is closed after the answer.' },
  INTERPOOL_ERR_FORBIDDEN_TRAILER: { statusCode: 400, template: 'the trailer section of the chunked body carries %s, which a trailer may not (RFC 9110 §6.5.1)', doc: 'A chunked body ended with a trailer field that changes framing, routing, authentication, request modifiers or the content\'s format (Host, Authorization, Content-Type, ...: the list is in docs/errors.md). The body\'s framing was sound, so the connection stays open.' },
  INTERPOOL_ERR_FORWARDED: { statusCode: 400, template: 'bad forwarding headers from a trusted proxy: %s', doc: 'A peer listed in --forwarded-allow-ips sent forwarding headers that disagree on the scheme or carry an invalid value.' },
  INTERPOOL_ERR_REQUEST_TIMEOUT: { statusCode: 408, template: 'the request did not arrive in time: %s', doc: 'The client took longer than --headers-timeout to send the request head, or longer than --body-timeout to send the whole request; the connection is closed.' },
  INTERPOOL_ERR_REQUEST_LINE_TOO_LONG: { statusCode: 414, template: 'the request line is longer than --limit-request-line (%s bytes)', doc: 'The request line (method, target, version) is over --limit-request-line.' },
  INTERPOOL_ERR_TOO_MANY_HEADERS: { statusCode: 431, template: 'more than --limit-request-fields (%s) header fields', doc: 'The request has more header fields than --limit-request-fields.' },
  INTERPOOL_ERR_HEADER_TOO_LARGE: { statusCode: 431, template: 'header %s is longer than --limit-request-field-size (%s bytes)', doc: 'One header line, counted with its CRLF as gunicorn counts it, is over --limit-request-field-size.' },
  INTERPOOL_ERR_HEAD_TOO_LARGE: { statusCode: 431, template: 'the request head is larger than %s bytes', doc: 'The request line and headers together are larger than the limits allow (the parser stops reading at that size).' },
  INTERPOOL_ERR_HTTP_VERSION: { statusCode: 505, template: '%s is not supported; send HTTP/1.1 or HTTP/1.0', doc: 'The request line names an HTTP version other than 1.0 or 1.1 (0.9, 1.2, 2.0 without a connection preface, 3.0).' },
  INTERPOOL_ERR_CONNECT: { statusCode: 405, template: 'CONNECT is not supported: this server is no proxy', doc: 'A CONNECT request (a proxy\'s tunnel): interpool is an origin server, and a WSGI app cannot take over a connection. The connection is closed after the answer.' },
  INTERPOOL_ERR_ADMIN_UNAUTHORIZED: { statusCode: 401, template: 'the admin needs a loopback connection or --admin-token (Authorization: Bearer TOKEN)', doc: 'On the --admin-bind listener: the client presents no valid --admin-token (with a token set, every client needs it), or, without a token, is not a loopback client the server can be sure of. (On the public listener the admin answers 404 instead, as if it did not exist.)' },
  INTERPOOL_ERR_ADMIN_CROSS_SITE: { statusCode: 403, template: 'admin action refused, it may be cross-site: %s', doc: 'An admin action (reload, recycle, sign-in) lacks the X-Interpool-Admin: 1 header, or its Origin or Sec-Fetch-Site says another site sent it.' },
  INTERPOOL_ERR_ADMIN_METHOD: { statusCode: 405, template: 'admin actions take POST, not %s', doc: 'An admin action was requested with a method other than POST.' },
  INTERPOOL_ERR_ADMIN_TARGET: { statusCode: 404, template: 'nothing to act on: %s', doc: 'An admin action names an app that is not mounted or an interpreter that is not running.' },
  INTERPOOL_ERR_ADMIN_BAD_ACTION: { statusCode: 400, template: 'bad admin action: %s', doc: 'An admin action\'s body is not the JSON it expects.' },
  INTERPOOL_ERR_ADMIN_THROTTLED: { statusCode: 429, template: 'too many wrong admin tokens from this client; try again in %s s', doc: 'The client presented five wrong --admin-token values (sign-in form, Bearer header or cookie) within a minute; every token it presents is refused until its minute is over. The response has Retry-After.' },
} satisfies Record<string, CatalogEntry>;

export type CatalogCode = keyof typeof catalog;

export class InterpoolError extends Error {
  readonly code: CatalogCode;
  readonly statusCode: number;
  /** Traceback or stack for the log; never sent to a client. */
  readonly detail: string | undefined;
  /** For a 503: the seconds Retry-After says, when the server knows (the next boot attempt). */
  retryAfter: number | undefined;

  constructor(code: CatalogCode, args: readonly (string | number)[] = [], detail?: string) {
    super(formatTemplate(catalog[code].template, args));
    this.name = 'InterpoolError';
    this.code = code;
    this.statusCode = catalog[code].statusCode;
    this.detail = detail;
    this.retryAfter = undefined;
  }
}

export function formatTemplate(template: string, args: readonly (string | number)[]): string {
  let next = 0;
  return template.replace(/%s/g, () => String(args[next++] ?? ''));
}

/** Map an error that crossed the thread boundary (runtime ErrorCode) to the catalog. */
export function fromWorkerError(code: ErrorCode, message: string, mount: string, detail?: string): InterpoolError {
  switch (code) {
    case 'APP_RAISED':
      return new InterpoolError('INTERPOOL_ERR_APP_RAISED', [], detail ?? message);
    case 'APP_BAD_RESPONSE':
      return new InterpoolError('INTERPOOL_ERR_BAD_RESPONSE', [message], detail);
    case 'APP_BOOT_FAILED':
    case 'APP_CALLABLE_MISSING':
      return new InterpoolError('INTERPOOL_ERR_APP_UNAVAILABLE', [mount, message], detail);
    case 'WORKER_DIED':
      return new InterpoolError('INTERPOOL_ERR_WORKER_DIED', [message], detail);
  }
}
