/**
 * Who each request comes from, as the app will be told: resolved once per request by an
 * onRequest hook (forwarded.ts decides whether the peer may speak for a client), before
 * the body is read, and read back when the environ is built.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { RequestFacts } from './environ.ts';
import { InterpoolError } from './errors.ts';
import { buildTrustedProxies, resolveClient, type ClientView } from './forwarded.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the resolveClients hook (app.ts declares it with decorateRequest). */
    clientView?: ClientView | null;
  }
}

/** The onRequest hook: apply forwarding headers from trusted peers; 400 when they contradict each other. */
export function resolveClients(forwardedAllowIps: readonly string[]) {
  const trusted = buildTrustedProxies(forwardedAllowIps);
  return (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const raw = request.raw;
    const view = resolveClient({ address: raw.socket.remoteAddress ?? '', port: raw.socket.remotePort ?? 0 }, raw.rawHeaders, trusted);
    if (view instanceof InterpoolError) {
      done(view);
      return;
    }
    // A request decoration, not a WeakMap: a property of the request's own (stable) shape.
    request.clientView = view;
    done();
  };
}

/** The RequestFacts fields that depend on who the client is. */
export function clientFacts(request: FastifyRequest): Pick<RequestFacts, 'remoteAddress' | 'remotePort' | 'urlScheme' | 'forwardedHost'> {
  const view = request.clientView;
  const raw = request.raw;
  if (!view) return { remoteAddress: raw.socket.remoteAddress ?? '', remotePort: raw.socket.remotePort ?? 0, urlScheme: 'http' };
  return { remoteAddress: view.remoteAddress, remotePort: view.remotePort, urlScheme: view.urlScheme, forwardedHost: view.host };
}
