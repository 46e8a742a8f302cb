/**
 * Outbound network for Python interpreters: Python's sockets backed by Node's own TCP.
 *
 * Pyodide 314 ships a socket layer over `node:net` (`useNodeSockFS`): a connect, send,
 * recv or poll from Python becomes a promise the interpreter waits on suspended (JSPI),
 * so only requests entered through a promising call can block on the network — which is
 * how every request enters (python.ts `runRequest`). The layer is JavaScript state, not
 * part of a memory snapshot, so it is installed after every load, cold or restored.
 *
 * Two things are added on top:
 * - a timeout's interrupt reaches an interpreter that is waiting on a socket: while any
 *   socket operation is pending, the interrupt slot is watched, and when it is set the
 *   sockets with a pending wait are destroyed, so the wait ends (EOF or a refused
 *   connect) and Python then raises KeyboardInterrupt from the interrupt buffer. A socket
 *   abandoned mid-reply is in an unknown protocol state anyway; it must not be reused.
 * - Pyodide 0.27 (`--python 3.12`) has no such layer (its sockets are Emscripten's
 *   WebSocket emulation): there wsgi.py makes every connect fail at once with an
 *   OSError naming the setting to change, instead of hanging.
 *
 * The Node sockets belong to the worker thread's event loop: when an interpreter is
 * recycled or terminated, its thread ends and Node closes them.
 */
import { ControlSlot } from '../protocol.ts';

/** How often the interrupt slot is looked at while Python waits on a socket. */
const WATCH_MS = 20;
/** Emscripten's errno for an interrupted call. */
const EINTR = 27;

/** The socket record Pyodide's Node socket layer keeps per Python socket (internal). */
interface NodeSock {
  connecting: boolean;
  dataAvailable: unknown;
  wcgSocket: { _socket?: { destroy(error?: Error): void } } | null;
  sock_ops: SockOps;
}
type SockOps = Record<string, (sock: NodeSock, ...args: unknown[]) => unknown>;
export interface SockFS {
  createSocket(family: number, type: number, protocol: number): NodeSock;
}

export interface NetworkRuntime {
  useNodeSockFS?: () => Promise<void>;
  _module: { SOCKFS: SockFS };
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
    return false;
  }
  await pyodide.useNodeSockFS();
  pyodide.runPython('import interpool_wsgi; interpool_wsgi.guard_connects()');
  watchInterrupts(pyodide._module.SOCKFS, control);
  return true;
}

/**
 * Track the interpreter's open sockets, and wrap the shared socket operations so that
 * an interrupt ends any wait in progress.
 */
function watchInterrupts(sockfs: SockFS, control: Int32Array): void {
  const open = new Set<NodeSock>();
  let pending = 0;
  let watch: NodeJS.Timeout | undefined;

  // Sockets whose wait an interrupt ended: their pending operation reports EINTR.
  const aborted = new WeakSet<NodeSock>();
  const abort = (sock: NodeSock): void => {
    aborted.add(sock);
    sock.wcgSocket?._socket?.destroy(new Error('interrupted by the request timeout'));
    sock.sock_ops.shutdown?.(sock, 2 /* SHUT_RDWR */);
  };
  const abortWaits = (): void => {
    for (const sock of open) if (sock.connecting || sock.dataAvailable) abort(sock);
  };
  const startWatch = (): void => {
    if (pending++ > 0) return;
    watch = setInterval(() => {
      if (Atomics.load(control, ControlSlot.INTERRUPT) !== 0) abortWaits();
    }, WATCH_MS);
    watch.unref();
  };
  const stopWatch = (): void => {
    if (--pending > 0) return;
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
        // EINTR, as a signal would give a blocking call in CPython: the socket method
        // then runs the signal check, which raises KeyboardInterrupt right there, before
        // the library's own cleanup (redis-py disconnects on any exception) runs.
        if (Atomics.load(control, ControlSlot.INTERRUPT) !== 0) abort(sock);
        if (aborted.has(sock)) return -EINTR;
        startWatch();
        try {
          const result = await op.call(ops, sock, ...args);
          return aborted.has(sock) ? -EINTR : result;
        } finally {
          stopWatch();
        }
      };
    }
    const close = ops.close!;
    ops.close = (sock, ...args) => {
      open.delete(sock);
      return close.call(ops, sock, ...args);
    };
  };

  const createSocket = sockfs.createSocket.bind(sockfs);
  sockfs.createSocket = (family, type, protocol) => {
    const sock = createSocket(family, type, protocol);
    wrapOps(sock.sock_ops);
    open.add(sock);
    return sock;
  };
}
