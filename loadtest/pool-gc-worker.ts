/**
 * The worker of pool-gc.ts: answers every task at once with a result shaped like a
 * hello response, either as a piscina task handler or over a plain MessagePort.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';

const body = new TextEncoder().encode('Hello, World!\n');

function answer(task: { id: number }) {
  return { kind: 'response', id: task.id, status: '200 OK', headers: [['Content-Type', 'text/plain']], body: [body.slice()] };
}

export default answer;

// Plain-port mode: pool-gc.ts sends this worker its end of a MessageChannel.
parentPort?.once('message', (message: { port?: MessagePort }) => {
  const port = message.port;
  port?.on('message', (task: { id: number }) => port.postMessage(answer(task)));
});
