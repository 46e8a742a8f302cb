/**
 * The admin of one server: what it records (requests, interpreter slots, Prometheus
 * metrics) and which request paths are its. One Admin serves either the public
 * listener (app.ts routes its paths to it) or its own --admin-bind listener.
 */
import type { ApplicationGroup } from '../pool/application-group.ts';
import type { ServerConfig } from '../config.ts';
import { buildTrustedProxies, type TrustedProxies } from '../forwarded.ts';
import { InterpreterSlots } from './interpreter-slots.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { RequestRecorder } from './recorder.ts';
import { SignInThrottle } from './sign-in-throttle.ts';

export const METRICS_PATH = '/metrics';

export interface Admin {
  readonly path: string;
  readonly token: string | undefined;
  readonly groups: readonly ApplicationGroup[];
  readonly recorder: RequestRecorder;
  readonly slots: InterpreterSlots;
  readonly metrics: Metrics;
  /** Who may speak for a client (--forwarded-allow-ips): the client the throttle counts and the log names. */
  readonly trustedProxies: TrustedProxies;
  readonly throttle: SignInThrottle;
  close(): void;
}

export function createAdmin(config: Pick<ServerConfig, 'adminPath' | 'adminToken' | 'forwardedAllowIps'>, groups: readonly ApplicationGroup[]): Admin {
  const recorder = new RequestRecorder(groups.map((group) => group.config.name));
  const seed = new Map(groups.map((group) => [group.config.name, group.stats().interpreters]));
  const slots = new InterpreterSlots(seed);
  const metrics = createMetrics(groups);
  return {
    path: config.adminPath,
    token: config.adminToken,
    groups,
    recorder,
    slots,
    metrics,
    trustedProxies: buildTrustedProxies(config.forwardedAllowIps),
    throttle: new SignInThrottle(),
    close() {
      recorder.close();
      slots.close();
      metrics.close();
    },
  };
}

/**
 * The path of a raw request target (path and query, as sent) when it is one of the
 * admin's: its path, anything under it, or /metrics; otherwise undefined. The admin's
 * paths never need percent-encoding, so a path with any other byte is left to the apps
 * (Fastify's router would answer it with its own 400, and so tell an outsider that the
 * admin is there). Who then gets it, the admin or an app, is public-targets.ts's call.
 */
export function adminPathOf(target: string, adminPath: string): string | undefined {
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  if (!/^[A-Za-z0-9._~/-]*$/.test(path)) return undefined;
  return path === METRICS_PATH || path === adminPath || path.startsWith(`${adminPath}/`) ? path : undefined;
}
