/**
 * Raw-socket helpers for the hardening tests: send exact bytes (whole, or one byte per
 * write), read until the server closes, and say how many responses came back and
 * whether the server closed the connection by itself.
 */
import { connect, type Socket } from 'node:net';
import { parseRawResponse, type RawResponse } from './support.ts';

export interface Exchange {
  response: RawResponse;
  /** Every status line the server wrote: more than one means leftover bytes were served. */
  statusLines: string[];
  /** The server closed the connection (rather than the test giving up waiting). */
  closedByServer: boolean;
}

export interface SendOptions {
  /** Write one byte at a time, each in its own TCP segment. */
  oneByteWrites?: boolean;
  /** Give up waiting for the close after this long (then closedByServer is false). */
  waitMs?: number;
  host?: string;
  /** Connect from this local address (any of 127.0.0.0/8 works on loopback). */
  localAddress?: string;
}

/** Send `bytes` on a fresh connection and read until the server closes it. */
export function exchange(port: number, bytes: string | Buffer, options: SendOptions = {}): Promise<Exchange> {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host ?? '127.0.0.1', port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    socket.setNoDelay(true);
    const parts: Buffer[] = [];
    let closedByServer = true;
    const timer = setTimeout(() => { closedByServer = false; socket.destroy(); }, options.waitMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(parts);
      const statusLines = raw.toString('latin1').match(/HTTP\/1\.[01] \d{3}[^\r\n]*/g) ?? [];
      resolve({ response: parseRawResponse(raw), statusLines, closedByServer });
    });
    socket.once('connect', () => {
      if (options.oneByteWrites) void writeByteByByte(socket, data);
      else socket.write(data);
    });
  });
}

async function writeByteByByte(socket: Socket, data: Buffer): Promise<void> {
  for (let i = 0; i < data.length; i++) {
    if (socket.destroyed || !socket.writable) return;
    socket.write(data.subarray(i, i + 1));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A socket that sends `head` one byte every `intervalMs`, then "a" forever: a header that never ends. */
export interface Dribbler {
  socket: Socket;
  /** Resolves with what the server wrote, once it closes the connection. */
  closed: Promise<string>;
  stop(): void;
}

export function dribble(port: number, head: string, intervalMs: number): Dribbler {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const parts: Buffer[] = [];
  let at = 0;
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => { clearInterval(timer); resolve(Buffer.concat(parts).toString('latin1')); });
  });
  socket.once('connect', () => {
    timer = setInterval(() => {
      if (!socket.writable) return;
      socket.write(at < head.length ? head[at]! : 'a', 'latin1');
      at++;
    }, intervalMs);
  });
  return { socket, closed, stop: () => { clearInterval(timer); socket.destroy(); } };
}
