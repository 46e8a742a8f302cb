/**
 * Whatever a worker prints becomes log lines of the server, never raw text.
 *
 * A worker thread's process.stdout and process.stderr are piped into the server
 * process's own, where they would interleave raw text with the JSON log: a runtime's
 * banner (Pyodide's "fatal error" and its stack dump), Emscripten's messages, an app's
 * console.log or Python's print(). So the worker's two streams are rerouted, whole
 * lines at a time, to the main thread over the stream port, and the main thread logs
 * each as one JSON line tagged with the app, the worker and the stream.
 */
import type { MessagePort } from 'node:worker_threads';
import { ControlSlot, type StreamMessage } from './protocol.ts';

/** A line longer than this is cut into several (a runaway write without a newline). */
const MAX_LINE = 16 * 1024;

export function routeWorkerOutput(port: MessagePort, control: Int32Array): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    let pending = '';
    const post = (line: string): void => {
      const message: StreamMessage = { type: 'log', id: Atomics.load(control, ControlSlot.REQUEST_ID), line, stream: name };
      port.postMessage(message);
    };
    // Replaces write() on the stream object: console.* and every library hold the stream
    // itself, so they all come through here. Writes are synchronous and never fail.
    stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        // A blank line carries nothing a log reader needs.
        if (line.trim() === '') continue;
        for (let at = 0; at < line.length; at += MAX_LINE) post(line.slice(at, at + MAX_LINE));
      }
      if (pending.length >= MAX_LINE) {
        post(pending);
        pending = '';
      }
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
      return true;
    }) as typeof stream.write;
  }
}
