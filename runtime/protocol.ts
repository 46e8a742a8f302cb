/**
 * The only contract between the main thread (server/) and the workers (runtime/).
 *
 * Everything here is plain data that survives `postMessage` (structured clone).
 * Errors cross the thread boundary as {@link ErrorData}, never as thrown objects:
 * `postMessage` drops an Error's class and its own fields.
 *
 * This file imports nothing.
 */

/** The kinds of interpreter a worker can hold, chosen from the app file's extension. */
export type InterpreterKind = 'javascript' | 'python';

/** What a worker is told at start (piscina `workerData`): which app to boot. */
export interface WorkerSpec {
  /** Name of the app (its mount, for logs). */
  app: string;
  kind: InterpreterKind;
  /** Absolute path of the app file. */
  file: string;
  /** Name of the WSGI callable inside the file. */
  callable: string;
  /** Interpreter-specific settings, passed through untouched by server/. */
  settings: Record<string, unknown>;
  /** When the worker retires itself (the main thread then replaces it). */
  limits: WorkerLimits;
  /**
   * Embedded mode (--workers 0): requests overlap in the one interpreter. Otherwise the
   * worker runs its requests one at a time, in the order they came.
   */
  overlap: boolean;
  /**
   * Another interpreter may run this app at the same time (--workers above 1, or
   * --processes above 1), each with its own module state: wsgi.multiprocess.
   */
  multiprocess: boolean;
}

export interface WorkerLimits {
  /** Retire after this many requests (0: never), plus a random 0..maxRequestsJitter. */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Retire when the interpreter's memory is over this after a request (0: no limit). */
  memoryLimitMb: number;
}

/**
 * One request, as the worker sees it. The CGI variables are computed once, on the
 * main thread, for every kind of interpreter (one implementation of the environ rules).
 */
export interface RequestEnvelope {
  /** Unique per pool; used to route stream messages and cancellations. */
  id: number;
  /** CGI/WSGI string variables: REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, HTTP_*, ... (packed: {@link WireCgi}) */
  cgi: WireCgi;
  /** `wsgi.url_scheme`. */
  urlScheme: 'http' | 'https';
  /** The whole request body, already buffered on the main thread. */
  body: Uint8Array;
  /**
   * Set when the request is handed to a worker that is still busy (prefetch): the index
   * of the claim cell (ControlSlot.PREFETCH + claim) holding its id. The worker swaps
   * the id out before running it; the main thread may swap it out first to take the
   * request back. Whoever swaps first owns it. {@link WITHDRAWN} means the main thread
   * took the request back before any worker took it: the worker answers `not-run`.
   */
  claim?: number;
}

/**
 * The CGI variables as they cross to a worker: packed, each key and each value followed
 * by a NUL ("REQUEST_METHOD\0GET\0PATH_INFO\0/\0..."). postMessage copies one string in
 * one piece but an object key by key, and builds it again on the other side key by key
 * (with the flat results, the main thread's cost of a hand-off went 8.1 -> 4.7 us in a
 * bench: docs/loadtest.md, "Flat messages"), and the native engine reads it into Python
 * as it is. A value with a
 * NUL of its own (PATH_INFO decoded from %00) cannot be packed: those variables cross as
 * an object. runtime/wire-cgi.ts reads both.
 */
export type WireCgi = string | Record<string, string>;

/** RequestEnvelope.claim of a request taken back while it waited in piscina's queue. */
export const WITHDRAWN = -1;

/**
 * A request as it is posted to a worker: an empty body is left out, because cloning even
 * an empty buffer costs about as much as the rest of the envelope.
 */
export type WireRequest = Omit<RequestEnvelope, 'body'> & { body?: Uint8Array };

/** A response header, as the app gave it. */
export type HeaderPair = [name: string, value: string];

/**
 * Response headers as they cross to the main thread: name, value, name, value, ... in the
 * app's order (validated there), the list Node's writeHead takes. One array of strings
 * costs postMessage far less than an array of pairs.
 */
export type FlatHeaders = string[];

/**
 * A whole response's body as it crosses to the main thread: its chunks, or one string of
 * latin-1 characters, one per byte (a body of at most {@link SMALL_BODY_BYTES} crosses
 * so, whatever the engine). postMessage clones a string with one copy, where every
 * Uint8Array costs a new ArrayBuffer and backing store on each side (in a two-thread
 * bench, 10.3 against 5.5 us of CPU per response message), and Node writes a string body
 * together with the head, in one buffer (docs/loadtest.md, "Small bodies as strings").
 */
export type WholeBody = Uint8Array[] | string;

/** The largest body sent as a string: past it, the extra copies of a string cost more than an ArrayBuffer's setup. */
export const SMALL_BODY_BYTES = 16 * 1024;

/**
 * What a task resolves to. A response whose body was complete when the app returned
 * (a list / array) comes back whole in `body`; an iterator is streamed over the
 * worker's stream port as it is produced, and the task then resolves with
 * `streamed: true` (the stream's own `end` message closes the response).
 */
export type TaskResult =
  | { kind: 'response'; workerId: number; status: string; headers: FlatHeaders; body: WholeBody }
  | { kind: 'streamed'; workerId: number }
  | { kind: 'error'; workerId: number; error: ErrorData; headersSent: boolean }
  /** A prefetched request this worker did not run: taken back, or the worker is retiring. */
  | { kind: 'not-run'; workerId: number };

/** An error that crossed the thread boundary. `code` is a key of the server's catalog. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  /** Traceback / stack, for the log only (never sent to the client). */
  detail?: string;
}

export type ErrorCode =
  | 'APP_RAISED'
  | 'APP_BAD_RESPONSE'
  | 'APP_BOOT_FAILED'
  | 'APP_CALLABLE_MISSING'
  /**
   * The interpreter ended while serving the request (os._exit, sys.exit, os.abort, a
   * fatal error of the runtime such as a stack overflow): it never serves again, and
   * the worker is replaced. The message says how it ended.
   */
  | 'WORKER_DIED';

/**
 * Messages on a worker's stream port (worker → main), in order per request. `result` is
 * the outcome of a request that came over the port ({@link PortRequests}), not through
 * piscina: its TaskResult, or `failure` when the handler threw (as a piscina task's
 * rejection would).
 */
export type StreamMessage =
  | { type: 'result'; id: number; result?: TaskResult; failure?: string }
  | { type: 'start'; id: number; status: string; headers: FlatHeaders }
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'error'; id: number; error: ErrorData; headersSent: boolean }
  /**
   * A line for the server log: from wsgi.errors, or (with `stream`) whatever the worker
   * printed to its stdout or stderr (the runtime, console.*, Python's print). `id` is
   * the request running then, or NO_REQUEST.
   */
  | { type: 'log'; id: number; line: string; stream?: 'stdout' | 'stderr' };

/**
 * A whole response to a request that came over the port (the common answer), posted as
 * a bare tuple instead of a `result` message with nested objects, which postMessage
 * writes and rebuilds key by key (docs/loadtest.md, "Flat messages"). Every other answer
 * is a `result` stream message.
 */
export type PortResponse = [id: number, status: string, headers: FlatHeaders, body: WholeBody];

/**
 * Requests the main thread posts on a booted worker's stream port (main → worker),
 * bypassing piscina: one to run at once if the worker is idle, offers in claim cells if it
 * is busy, as many as were ready in one turn of the main thread's event loop, in one
 * message. The worker answers each on
 * the same port ({@link PortResponse}, or a `result` stream message). (docs/architecture.md,
 * "Requests go over the worker's port".) Each request is {@link PORT_REQUEST_FIELDS}
 * entries in a row of one flat array, not an envelope object: postMessage writes and
 * reads every key of every object.
 */
export type PortRequests = (number | string | Record<string, string> | Uint8Array | undefined)[];

/** The entries of one request in {@link PortRequests}: id, claim, urlScheme, cgi, body. */
export const PORT_REQUEST_FIELDS = 5;

/** Add a request to a PortRequests message. */
export function appendPortRequest(message: PortRequests, request: WireRequest): void {
  message.push(request.id, request.claim, request.urlScheme, request.cgi, request.body);
}

/** The request at `index` (a multiple of PORT_REQUEST_FIELDS) of a PortRequests message. */
export function readPortRequest(message: PortRequests, index: number): WireRequest {
  const request: WireRequest = {
    id: message[index] as number,
    cgi: message[index + 3] as WireCgi,
    urlScheme: message[index + 2] as RequestEnvelope['urlScheme'],
  };
  const claim = message[index + 1] as number | undefined;
  if (claim !== undefined) request.claim = claim;
  const body = message[index + 4] as Uint8Array | undefined;
  if (body !== undefined) request.body = body;
  return request;
}

/** The message a worker posts once, through piscina's 'message' event, when it starts. */
export interface WorkerHello {
  type: 'interpool:hello';
  workerId: number;
  /** Worker → main stream messages ({@link StreamMessage}). */
  streamPort: unknown;
  /** Shared control block: see {@link ControlSlot}. */
  control: SharedArrayBuffer;
  /** The app's shared store: see {@link SharedStoreLink}. */
  sharedStore?: SharedStoreLink;
}

/** The named, timed stages of a boot, in order. */
export interface BootStage {
  name: string;
  ms: number;
}

export interface BootReport {
  workerId: number;
  kind: InterpreterKind;
  /** Interpreter version, e.g. "Node 24.9.0" or "Python 3.14.0". */
  version: string;
  stages: BootStage[];
  /** Why this boot took a slower path (e.g. no snapshot); the main thread logs them. */
  notes?: string[];
  /** What the worker's memory figure measures, when not the obvious (the native engine says). */
  memory?: string;
  error?: ErrorData;
}

/**
 * Scratch files of one server process (Python memory snapshots) live in
 * `<os.tmpdir()>/<SCRATCH_DIR_NAME>/<pid>/`; the server removes its own at shutdown.
 */
export const SCRATCH_DIR_NAME = 'interpool-snapshots';

/** Posted once (piscina 'message' event) when the interpreter has booted or failed to. */
export interface WorkerBooted {
  type: 'interpool:booted';
  report: BootReport;
}

/**
 * Slots of the shared Int32Array control block a worker publishes. The main thread
 * reads state without a message round trip and writes CANCEL to stop a request.
 * Slot 0 is reserved for an interrupt flag (Pyodide's interrupt buffer reads index 0).
 */
export const ControlSlot = {
  INTERRUPT: 0,
  STATE: 1,
  REQUEST_ID: 2,
  CANCEL: 3,
  REQUESTS_SERVED: 4,
  /** Set by the worker before it returns its last result: a {@link RetireReason}. */
  RETIRING: 5,
  /** The interpreter's memory after its last request, in KiB. */
  MEMORY_KIB: 6,
  /**
   * Flow control: the id of a streamed request whose client is not reading fast enough.
   * The worker stops producing chunks until the main thread clears it (and notifies).
   */
  PAUSED: 7,
  /**
   * Set by the main thread just before it terminates a worker whose request or boot
   * outran --timeout-grace: a native interpreter still running Python is made to unwind,
   * so that its thread gets back to JS and the termination can end it (native/src/unwind.h).
   */
  UNWIND: 8,
  /**
   * The id of the last request this worker started (never reset): a worker starts the
   * requests posted to it in the order they were posted, so when it dies, those posted
   * after this one never reached the app and can run elsewhere.
   */
  LAST_STARTED: 9,
  /** The first of {@link MAX_PREFETCH} claim cells (see RequestEnvelope.claim); 0 = free. */
  PREFETCH: 10,
} as const;
/**
 * Requests a busy worker may hold beyond the one it runs. 7, not 3: requests reach a
 * worker in one message per turn of the main thread (server/pool/worker-pool.ts), and
 * deeper cells make those batches larger, so the worker sleeps, and is woken, less often
 * (docs/loadtest.md, "Requests over the worker's port").
 */
export const MAX_PREFETCH = 7;
/** The control block's length: the claim cells are its last slots. */
export const CONTROL_SLOTS = ControlSlot.PREFETCH + MAX_PREFETCH;

export const WorkerState = {
  BOOTING: 0,
  IDLE: 1,
  BUSY: 2,
  /** The app failed to boot in this worker: it takes no requests. */
  BOOT_FAILED: 3,
} as const;

/** Why a worker asks to be replaced after its current response. */
export const RetireReason = {
  NONE: 0,
  /** --max-requests reached. */
  RECYCLED: 1,
  /** --memory-limit exceeded. */
  MEMORY: 2,
  /** The interpreter is broken (e.g. a fatal WebAssembly error) and cannot serve again. */
  BROKEN: 3,
} as const;

/** Request ids start at 1 so that 0 in REQUEST_ID / CANCEL means "none". */
export const NO_REQUEST = 0;

/**
 * The app's shared store (docs/shared-store.md): each worker has a port of its own to
 * the main thread, which owns the store (it outlives every interpreter). Values cross
 * in their stored form, a canonical JSON text ({@link SharedStoreRequest}), so that the
 * same text is what the in-process store keeps, what Redis keeps, and what
 * compare_and_set compares.
 */
export interface SharedStoreLink {
  /** Worker → main requests, main → worker replies. */
  port: unknown;
  /**
   * One Int32 cell: the main thread adds 1 after each reply it posts and notifies, so
   * that a Python call, which is synchronous, can block (Atomics.wait) until its answer
   * arrives and read it with receiveMessageOnPort.
   */
  signal: SharedArrayBuffer;
}

export type SharedStoreOp = 'get' | 'set' | 'delete' | 'incr' | 'cas' | 'keys' | 'lock' | 'unlock'
  /** The worker gave up waiting for its lock request `abandons` (a --timeout): never grant it. */
  | 'abandon';

/**
 * One operation. `value` and `expected` are encoded values: canonical JSON (keys sorted,
 * no spaces) where bytes are the object `{"\u0000": base64}`. A missing `expected`
 * (compare_and_set with None/null) matches a missing key too.
 */
export interface SharedStoreRequest {
  seq: number;
  op: SharedStoreOp;
  /** The key, the prefix (keys) or the lock's name. */
  key: string;
  value?: string;
  expected?: string;
  /** set: seconds to live; lock: seconds the lock lasts at most (its expiry). */
  ttl?: number;
  /** incr. */
  delta?: number;
  /** lock: seconds to wait for it. */
  timeout?: number;
  /** unlock: the token the lock was given with. */
  token?: string;
  /** abandon: the seq of the lock request given up. */
  abandons?: number;
  /** Fire and forget: the worker waits for no reply. */
  noReply?: boolean;
}

/**
 * How an operation failed, as the app sees it: Python raises TypeError, ValueError
 * ('limit' too), TimeoutError, interpool.SharedStoreUnavailable; JS the same names, and
 * RangeError for 'limit'.
 */
export type SharedStoreErrorKind = 'type' | 'value' | 'limit' | 'timeout' | 'unavailable';

export type SharedStoreReply =
  /**
   * get: the encoded value, or undefined when missing; set: undefined; delete, cas,
   * unlock: a boolean; incr: the new number; keys: the sorted keys; lock: its token.
   */
  | { seq: number; ok: true; result: string | number | boolean | string[] | undefined }
  | { seq: number; ok: false; kind: SharedStoreErrorKind; message: string };
