/**
 * Outbound network for Python interpreters: Python's sockets backed by Node's own TCP.
 *
 * Pyodide 314 ships a socket layer over `node:net` (`useNodeSockFS`): a connect, send,
 * recv or poll from Python becomes a promise the interpreter waits on suspended (JSPI),
 * so only requests entered through a promising call can block on the network — which is
 * how every request enters (python.ts `runRequest`). The layer is JavaScript state, not
 * part of a memory snapshot, so it is installed after every load, cold or restored.
 *
 * Added on top:
 * - a timeout's interrupt reaches an interpreter that is waiting on a socket: while any
 *   socket operation is pending, the interrupt slot is watched, and when it is set the
 *   sockets with a pending wait are destroyed, so the wait ends (EOF or a refused
 *   connect) and Python then raises KeyboardInterrupt from the interrupt buffer. A socket
 *   abandoned mid-reply is in an unknown protocol state anyway; it must not be reused.
 * - a peer's reset is ECONNRESET on the next read (ConnectionResetError, as in CPython),
 *   where Pyodide's layer reported the end of the stream.
 * - TLS: the ssl module on Node's TLS (python-tls.ts), over this layer's sockets.
 *
 * Pyodide 0.27 (`--python 3.12`) has no such layer (its sockets are Emscripten's
 * WebSocket emulation): there wsgi.py makes every connect fail at once with an OSError
 * naming the setting to change, instead of hanging, and importing ssl fails the same way.
 *
 * The Node sockets belong to the worker thread's event loop: when an interpreter is
 * recycled or terminated, its thread ends and Node closes them.
 */
import { ControlSlot } from '../protocol.ts';
import { enableTls, refuseTls, resetSockets, type NodeSock, type TlsRuntime } from './python-tls.ts';

/** How often the interrupt slot is looked at while Python waits on a socket. */
const WATCH_MS = 20;
/** poll() events reported for an interrupted socket: error and hang-up. */
const POLLERR_POLLHUP = 8 | 16;

type SockOps = NodeSock['sock_ops'];
export interface SockFS {
  createSocket(family: number, type: number, protocol: number): NodeSock;
}

export interface NetworkRuntime extends TlsRuntime {
  useNodeSockFS?: () => Promise<void>;
  _module: { SOCKFS: SockFS };
  ERRNO_CODES: Record<string, number>;
  runPython(code: string): unknown;
}

/** Pyodide's asynchronous socket operations: the ones an interpreter waits on. */
const WAITING_OPS = ['connectAsync', 'recvmsgAsync', 'sendmsgAsync', 'pollAsync'] as const;

/**
 * Give this interpreter real TCP sockets when its runtime can (returns true), else make
 * socket connects fail at once with a clear error (returns false). Call after every load.
 */
export async function enableNetwork(pyodide: NetworkRuntime, control: Int32Array): Promise<boolean> {
  if (typeof pyodide.useNodeSockFS !== 'function') {
    pyodide.runPython('import interpool_wsgi; interpool_wsgi.refuse_network()');
    refuseTls(pyodide);
    return false;
  }
  await pyodide.useNodeSockFS();
  pyodide.runPython('import interpool_wsgi; interpool_wsgi.guard_connects()');
  watchInterrupts(pyodide._module.SOCKFS, control, pyodide.ERRNO_CODES);
  enableTls(pyodide, control);
  return true;
}

/**
 * Wrap the shared socket operations so that an interrupt ends any wait in progress: the
 * sockets with a pending operation are destroyed, and that operation reports EINTR, as
 * a signal would to a blocking call in CPython. CPython then runs its signal check,
 * which raises KeyboardInterrupt right inside recv()/connect(), before the library's own
 * error handling runs (redis-py then drops the connection). EINTR is reported once per
 * socket; CPython retries an EINTR call, so any later call on that socket gets
 * ECONNABORTED instead of spinning.
 */
/** Remember a reset of this socket's TCP connection (a TLS socket over it: python-tls.ts). */
function noteResets(sock: NodeSock): void {
  const socket = sock.wcgSocket?._socket as { on?(event: 'error', listener: (error: { code?: string }) => void): void } | undefined;
  socket?.on?.('error', (error) => {
    if (error.code === 'ECONNRESET') resetSockets.add(sock);
  });
}

function watchInterrupts(sockfs: SockFS, control: Int32Array, errno: Record<string, number>): void {
  const EINTR = errno.EINTR!;
  const ECONNABORTED = errno.ECONNABORTED!;
  const ECONNRESET = errno.ECONNRESET!;
  /** Sockets with an operation in progress, and how many. */
  const waiting = new Map<NodeSock, number>();
  /** Interrupted sockets: whether their EINTR was reported yet. */
  const interrupted = new WeakMap<NodeSock, boolean>();
  let watch: NodeJS.Timeout | undefined;

  const isInterrupted = (): boolean => Atomics.load(control, ControlSlot.INTERRUPT) !== 0;
  const abort = (sock: NodeSock): void => {
    if (interrupted.has(sock)) return;
    interrupted.set(sock, false);
    sock.wcgSocket?._socket?.destroy(new Error('interrupted by the request timeout'));
    sock.sock_ops.shutdown?.(sock, 2 /* SHUT_RDWR */);
  };
  const failure = (sock: NodeSock, op: string): number => {
    if (op === 'pollAsync') return POLLERR_POLLHUP;
    if (interrupted.get(sock)) return -ECONNABORTED;
    interrupted.set(sock, true);
    return -EINTR;
  };
  const begin = (sock: NodeSock): void => {
    waiting.set(sock, (waiting.get(sock) ?? 0) + 1);
    if (watch) return;
    watch = setInterval(() => {
      if (isInterrupted()) for (const pending of waiting.keys()) abort(pending);
    }, WATCH_MS);
    watch.unref();
  };
  const end = (sock: NodeSock): void => {
    const left = waiting.get(sock)! - 1;
    if (left > 0) waiting.set(sock, left);
    else waiting.delete(sock);
    if (waiting.size > 0) return;
    clearInterval(watch);
    watch = undefined;
  };

  let wrapped: SockOps | undefined;
  const wrapOps = (ops: SockOps): void => {
    if (wrapped === ops) return;
    wrapped = ops;
    for (const name of WAITING_OPS) {
      const op = ops[name];
      if (!op) continue;
      ops[name] = async (sock, ...args) => {
        if (isInterrupted()) abort(sock);
        if (interrupted.has(sock)) return failure(sock, name);
        begin(sock);
        try {
          const result = await op.call(ops, sock, ...args);
          if (interrupted.has(sock)) return failure(sock, name);
          if (name === 'connectAsync' && result === 0) noteResets(sock);
          // The end of the stream after a reset: the reset (Pyodide reports an end).
          if (name === 'recvmsgAsync' && result === 0 && resetSockets.has(sock)) return -ECONNRESET;
          return result;
        } finally {
          end(sock);
        }
      };
    }
  };

  const createSocket = sockfs.createSocket.bind(sockfs);
  sockfs.createSocket = (family, type, protocol) => {
    const sock = createSocket(family, type, protocol);
    wrapOps(sock.sock_ops);
    return sock;
  };
}
