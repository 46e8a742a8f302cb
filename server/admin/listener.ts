/**
 * --admin-bind: the admin on a listener of its own (e.g. 127.0.0.1:9100, or an internal
 * interface for Prometheus), so that the public listener serves apps only. The same
 * access rules apply; a refused client gets 401 here rather than a 404.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Admin } from './admin.ts';
import { registerAdminRoutes } from './routes.ts';

export function buildAdminServer(admin: Admin, logger: Logger): FastifyInstance {
  const fastify = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    exposeHeadRoutes: false,
  });
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  registerAdminRoutes(fastify, admin, 'admin', logger);
  fastify.addHook('onClose', async () => admin.close());
  return fastify;
}
