/**
 * The admin's HTTP routes, on the public listener (app.ts sends admin targets here) or
 * on the --admin-bind listener (listener.ts):
 *
 *   GET  <path>                  the dashboard (page.html, dashboard.js, dashboard.css, uPlot)
 *   GET  <path>/api/stats        every app and interpreter as JSON (?history=1 adds chart series)
 *   GET  /metrics                Prometheus text format (also <path>/metrics)
 *   POST <path>/api/reload       {"app": "/api"} or {} for every app
 *   POST <path>/api/recycle      {"app": "/api", "workerId": 12}
 *   GET|POST <path>/login        the sign-in form for --admin-token (only when a token is set)
 *
 * Every route checks access first (access.ts): on the public listener a refused client
 * gets the same 404 as an unknown path; on the admin listener, 401. With --admin-token,
 * a browser refused the dashboard page is sent to the sign-in form instead, and a client
 * that presented too many wrong tokens gets 429 (sign-in-throttle.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { clientFacts } from '../client-view.ts';
import { InterpoolError } from '../errors.ts';
import { resolveClient, type ClientView } from '../forwarded.ts';
import { accessFactsOf, ADMIN_COOKIE, cookieValueOf, decideAccess, presentsCredentials, sameSecret } from './access.ts';
import { METRICS_PATH, type Admin } from './admin.ts';
import { ACTION_HEADER, crossSiteReason } from './cross-site.ts';
import { throttleKeyOf } from './sign-in-throttle.ts';
import { buildStats } from './stats.ts';

export type Listener = 'public' | 'admin';

interface Asset {
  type: string;
  body: Buffer;
}

const asset = (url: string, type: string): Asset => ({ type, body: readFileSync(fileURLToPath(url)) });
const ASSETS: Record<string, Asset> = {
  // The dashboard's ES modules: dashboard.js imports the others.
  ...Object.fromEntries(['dashboard.js', 'dashboard-app.js', 'dashboard-charts.js', 'dashboard-dom.js']
    .map((name) => [name, asset(new URL(`./${name}`, import.meta.url).href, 'text/javascript; charset=utf-8')])),
  'dashboard.css': asset(new URL('./dashboard.css', import.meta.url).href, 'text/css; charset=utf-8'),
  'uPlot.iife.min.js': asset(import.meta.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
  'uPlot.min.css': asset(import.meta.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
};
const PAGE = readFileSync(fileURLToPath(new URL('./page.html', import.meta.url)), 'utf8');
const LOGIN_PAGE = readFileSync(fileURLToPath(new URL('./login.html', import.meta.url)), 'utf8');

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const COOKIE_MAX_AGE_SECONDS = 30 * 24 * 3600;

export function registerAdminRoutes(fastify: FastifyInstance, admin: Admin, listener: Listener, logger: Logger): void {
  const log = logger.child({ admin: true });
  const base = admin.path;

  const tokens = new TokenAttempts(admin, log);

  /** onRequest for every admin route: who may see it. */
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    setSecurityHeaders(reply);
    const facts = accessFactsOf(request.raw);
    const decision = decideAccess(facts, admin.token);
    if (decision.allowed && decision.via === 'loopback') return;
    // Returning the sent reply ends the request here: no handler runs.
    const counted = admin.token !== undefined && presentsCredentials(facts);
    const client = clientOf(request, admin);
    if (counted) {
      const wait = tokens.retryAfter(client);
      if (wait > 0) return sendThrottled(reply, wait);
    }
    if (decision.allowed) return;
    log.info({ ...client.fields, path: pathOf(request), reason: decision.reason }, 'admin access refused');
    if (counted) {
      tokens.recordFailure(client);
      // A stale sign-in cookie (the token changed) is sent by the open dashboard every
      // second: clear it, so that it counts once rather than throttling its own browser.
      if (facts.cookie?.includes(`${ADMIN_COOKIE}=`)) reply.header('set-cookie', `${ADMIN_COOKIE}=; Path=${base}; Max-Age=0; HttpOnly; SameSite=Strict`);
    }
    if (admin.token !== undefined && request.method === 'GET' && (pathOf(request) === base || pathOf(request) === `${base}/`)) {
      return reply.code(303).header('location', `${base}/login`).send();
    }
    return refuse(reply, listener, request);
  };
  const route = (method: 'GET' | 'POST' | ('GET' | 'POST')[], url: string, handler: (request: FastifyRequest, reply: FastifyReply) => unknown) => {
    fastify.route({ method, url, onRequest: guard, handler: async (request, reply) => handler(request, reply) });
  };

  const sendPage = (_request: FastifyRequest, reply: FastifyReply) => reply
    .header('content-security-policy', CSP).type('text/html; charset=utf-8')
    .send(PAGE.replaceAll('{{BASE}}', base));
  route('GET', base, sendPage);
  route('GET', `${base}/`, sendPage);
  for (const [name, { type, body }] of Object.entries(ASSETS)) {
    route('GET', `${base}/assets/${name}`, (_request, reply) => reply.type(type).send(body));
  }

  route('GET', `${base}/api/stats`, (request, reply) => {
    const history = (request.query as Record<string, string>).history === '1';
    return reply.type('application/json; charset=utf-8').send(buildStats(admin.groups, admin.recorder, admin.slots, { history }));
  });

  const sendMetrics = async (_request: FastifyRequest, reply: FastifyReply) => {
    const text = await admin.metrics.registry.metrics();
    return reply.type(admin.metrics.registry.contentType).send(text);
  };
  route('GET', METRICS_PATH, sendMetrics);
  route('GET', `${base}/metrics`, sendMetrics);

  action(`${base}/api/reload`, async (body) => {
    const app = body.app;
    if (app !== undefined && typeof app !== 'string') throw new InterpoolError('INTERPOOL_ERR_ADMIN_BAD_ACTION', ['"app" must be a mount name like "/api"']);
    const chosen = app === undefined ? admin.groups : admin.groups.filter((group) => group.config.name === app);
    if (chosen.length === 0) throw new InterpoolError('INTERPOOL_ERR_ADMIN_TARGET', [`no app is mounted at ${app}`]);
    log.info({ app: app ?? '*' }, 'admin: reload');
    const results = await Promise.all(chosen.map(async (group) => ({ app: group.config.name, ...(await group.reload()) })));
    return { results };
  });
  action(`${base}/api/recycle`, async (body) => {
    const { app, workerId } = body;
    if (typeof app !== 'string' || !Number.isSafeInteger(workerId)) {
      throw new InterpoolError('INTERPOOL_ERR_ADMIN_BAD_ACTION', ['expected {"app": "/api", "workerId": 12}']);
    }
    const group = admin.groups.find((candidate) => candidate.config.name === app);
    if (!group) throw new InterpoolError('INTERPOOL_ERR_ADMIN_TARGET', [`no app is mounted at ${app}`]);
    if (!group.recycle(workerId as number)) throw new InterpoolError('INTERPOOL_ERR_ADMIN_TARGET', [`no interpreter ${workerId} in app ${app}`]);
    log.info({ app, worker: workerId }, 'admin: recycle');
    return { app, workerId, recycled: true };
  });

  if (admin.token !== undefined) registerSignIn(fastify, admin, base, log, tokens);

  // Anything else under the admin path: the same 404 for everyone (after the access check).
  fastify.route({
    method: fastify.supportedMethods, url: `${base}/*`, onRequest: guard,
    handler: async (request, reply) => sendError(reply, new InterpoolError('INTERPOOL_ERR_NOT_FOUND', [pathOf(request)])),
  });

  /** A POST-only JSON action, refused when it may come from another site. */
  function action(url: string, run: (body: Record<string, unknown>) => Promise<unknown>): void {
    fastify.route({
      method: fastify.supportedMethods, url, onRequest: guard,
      handler: async (request, reply) => {
        if (request.method !== 'POST') {
          reply.header('allow', 'POST');
          return sendError(reply, new InterpoolError('INTERPOOL_ERR_ADMIN_METHOD', [request.method]));
        }
        const reason = crossSiteReason(originFactsOf(request), { requireHeader: true });
        if (reason) return sendError(reply, new InterpoolError('INTERPOOL_ERR_ADMIN_CROSS_SITE', [reason]));
        try {
          return reply.type('application/json; charset=utf-8').send(await run(jsonBodyOf(request)));
        } catch (error) {
          if (error instanceof InterpoolError) return sendError(reply, error);
          throw error;
        }
      },
    });
  }
}

/**
 * The sign-in for --admin-token: the one admin page anyone may load (it holds a token
 * field and nothing else). A correct token sets an HttpOnly, SameSite=Strict cookie
 * holding a digest of the token and goes to the dashboard; a wrong one is refused as
 * an unauthorized request is.
 */
function registerSignIn(fastify: FastifyInstance, admin: Admin, base: string, log: Logger, tokens: TokenAttempts): void {
  const token = admin.token!;
  fastify.route({
    method: 'GET', url: `${base}/login`,
    handler: async (request, reply) => {
      const failed = (request.query as Record<string, string>).failed === '1';
      const page = LOGIN_PAGE.replaceAll('{{BASE}}', base).replace('{{MESSAGE}}', failed ? '<p class="failed">That was the wrong token.</p>\n' : '');
      return setSecurityHeaders(reply).header('content-security-policy', CSP).type('text/html; charset=utf-8').send(page);
    },
  });
  fastify.route({
    method: 'POST', url: `${base}/login`,
    handler: async (request, reply) => {
      setSecurityHeaders(reply);
      const reason = crossSiteReason(originFactsOf(request), { requireHeader: false });
      if (reason) return sendError(reply, new InterpoolError('INTERPOOL_ERR_ADMIN_CROSS_SITE', [reason]));
      const client = clientOf(request, admin);
      const wait = tokens.retryAfter(client);
      if (wait > 0) return sendThrottled(reply, wait);
      const given = new URLSearchParams(bodyText(request)).get('token') ?? '';
      if (!sameSecret(given, token)) {
        log.info(client.fields, 'admin sign-in refused: wrong token');
        tokens.recordFailure(client);
        return reply.code(303).header('location', `${base}/login?failed=1`).send();
      }
      const secure = client.view.urlScheme === 'https' ? '; Secure' : '';
      reply.header('set-cookie', `${ADMIN_COOKIE}=${cookieValueOf(token)}; Path=${base}; Max-Age=${COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Strict${secure}`);
      return reply.code(303).header('location', `${base}/`).send();
    },
  });
}

/** Who sent a request: the peer, and the client the server trusts it to be (the forwarded one behind a trusted proxy). */
interface Client {
  view: ClientView;
  /** The sign-in throttle's key. */
  key: string;
  /** For log lines: `remote` is the peer, `client` the address the server trusts. */
  fields: { remote: string; client: string };
}

function clientOf(request: FastifyRequest, admin: Admin): Client {
  const raw = request.raw;
  const peer = { address: raw.socket.remoteAddress ?? '', port: raw.socket.remotePort ?? 0 };
  // On the public listener app.ts's onRequest hook resolved it already; the --admin-bind
  // listener resolves it here, with the same --forwarded-allow-ips. Headers a trusted
  // proxy got wrong leave the peer as the client.
  const resolved = request.clientView ?? resolveClient(peer, raw.rawHeaders, admin.trustedProxies);
  const view: ClientView = resolved instanceof InterpoolError
    ? { remoteAddress: peer.address, remotePort: peer.port, urlScheme: 'http', host: undefined }
    : resolved;
  return { view, key: throttleKeyOf(view.remoteAddress), fields: { remote: peer.address, client: view.remoteAddress } };
}

/** The sign-in throttle, read with the wall clock, logging once when it holds a client back. */
class TokenAttempts {
  readonly #admin: Admin;
  readonly #log: Logger;

  constructor(admin: Admin, log: Logger) {
    this.#admin = admin;
    this.#log = log;
  }

  retryAfter(client: Client): number {
    return this.#admin.throttle.retryAfter(client.key, Date.now());
  }

  recordFailure(client: Client): void {
    const now = Date.now();
    if (!this.#admin.throttle.recordFailure(client.key, now)) return;
    this.#log.warn({ ...client.fields, retryAfter: this.#admin.throttle.retryAfter(client.key, now) }, 'admin sign-in throttled: too many wrong tokens from this client');
  }
}

function sendThrottled(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  reply.header('retry-after', String(retryAfterSeconds));
  return sendError(reply, new InterpoolError('INTERPOOL_ERR_ADMIN_THROTTLED', [retryAfterSeconds]));
}

function setSecurityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'same-origin');
}

function refuse(reply: FastifyReply, listener: Listener, request: FastifyRequest): FastifyReply {
  if (listener === 'admin') {
    reply.header('www-authenticate', 'Bearer realm="interpool admin"');
    return sendError(reply, new InterpoolError('INTERPOOL_ERR_ADMIN_UNAUTHORIZED'));
  }
  return sendError(reply, new InterpoolError('INTERPOOL_ERR_NOT_FOUND', [pathOf(request)]));
}

function sendError(reply: FastifyReply, error: InterpoolError): FastifyReply {
  return reply.code(error.statusCode).type('text/plain; charset=utf-8').send(`${error.message} (${error.code})\n`);
}

/** The raw path as sent, without the query string. */
function pathOf(request: FastifyRequest): string {
  const target = request.originalUrl;
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

function originFactsOf(request: FastifyRequest) {
  const headers = request.raw.headers;
  const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
  return {
    actionHeader: single(headers[ACTION_HEADER]),
    secFetchSite: single(headers['sec-fetch-site']),
    origin: headers.origin,
    host: headers.host,
    scheme: clientFacts(request).urlScheme as 'http' | 'https',
  };
}

function bodyText(request: FastifyRequest): string {
  return request.body instanceof Uint8Array ? Buffer.from(request.body).toString('utf8') : '';
}

function jsonBodyOf(request: FastifyRequest): Record<string, unknown> {
  const text = bodyText(request).trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InterpoolError('INTERPOOL_ERR_ADMIN_BAD_ACTION', ['the body is not JSON']);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InterpoolError('INTERPOOL_ERR_ADMIN_BAD_ACTION', ['the body must be a JSON object']);
  return parsed as Record<string, unknown>;
}
