/**
 * Which requests on the public listener the admin answers and which go to the apps.
 * An app's URL space is its own, as under gunicorn and mod_wsgi, where no server page
 * sits among an app's paths: Django's /admin, a Prometheus client's /metrics. So the
 * admin takes, out of the paths adminPathOf() names:
 *
 * - any of them no app is mounted over (nothing else would answer it);
 * - /metrics never from an app mounted over it (an app at / keeps its own /metrics; the
 *   admin's are at <admin path>/metrics);
 * - its own path (--admin-path, /_interpool by default) and what is under it, from a
 *   client it admits (access.ts) or that presents credentials (a wrong token is refused,
 *   counted and throttled there), and with --admin-token the sign-in page and the
 *   dashboard page (which sends a browser to the sign-in). Any other client is passed to
 *   the app mounted there: an outsider sees that app's answer and nothing of the admin,
 *   and with --admin-path /admin, Django's admin still works for clients behind a proxy.
 *
 * Decided from the raw request before Fastify routes it (app.ts's rewriteUrl), so the
 * request then takes one path or the other whole, body and all.
 */
import type { IncomingMessage } from 'node:http';
import { accessFactsOf, decideAccess, presentsCredentials } from './access.ts';
import { adminPathOf, METRICS_PATH, type Admin } from './admin.ts';

/** `appServes(path)`: whether an app is mounted over this (ASCII) path. */
export function adminAnswers(raw: IncomingMessage, admin: Pick<Admin, 'path' | 'token'>, appServes: (path: string) => boolean): boolean {
  const path = adminPathOf(raw.url ?? '', admin.path);
  if (path === undefined) return false;
  if (!appServes(path)) return true;
  if (path === METRICS_PATH) return false;
  if (admin.token !== undefined && (path === admin.path || path === `${admin.path}/` || path === `${admin.path}/login`)) return true;
  const facts = accessFactsOf(raw);
  return decideAccess(facts, admin.token).allowed || presentsCredentials(facts);
}
