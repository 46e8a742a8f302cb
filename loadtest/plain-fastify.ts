/**
 * The baseline of the hello scenario: a plain Fastify server, its own process, one route
 * answering the same bytes and headers as apps/hello.ts, no logging, no pool.
 * `node loadtest/plain-fastify.ts PORT`.
 */
import Fastify from 'fastify';

const body = Buffer.from('Hello, World!\n');
const port = Number(process.argv[2] ?? 0);

const fastify = Fastify({ logger: false });
fastify.get('/', (_request, reply) => {
  reply.header('content-type', 'text/plain; charset=utf-8').header('content-length', String(body.byteLength)).send(body);
});

await fastify.listen({ host: '127.0.0.1', port });
process.stdout.write(`plain fastify listening on http://127.0.0.1:${(fastify.server.address() as { port: number }).port}\n`);
const stop = () => { fastify.close().then(() => process.exit(0), () => process.exit(1)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
