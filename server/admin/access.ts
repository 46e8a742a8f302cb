/**
 * Who may see the admin dashboard and /metrics. The decision is a pure function of
 * what the connection and the request say, table-tested in test/unit/admin-access.test.ts:
 *
 * - a loopback connection (127.0.0.0/8, ::1), unless the request came through a proxy
 *   (it carries Forwarded, X-Forwarded-For or X-Real-IP: the client is then someone
 *   else), and only when its Host is localhost or an IP literal, so that a web page
 *   served under a DNS-rebound name cannot read the dashboard through the browser;
 * - or, with --admin-token, anyone presenting that token: `Authorization: Bearer TOKEN`,
 *   or the cookie the dashboard's sign-in sets.
 *
 * The Host header never grants anything. Tokens are compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export const ADMIN_COOKIE = 'interpool_admin';

export interface AccessFacts {
  /** The socket's peer address, as Node reports it. */
  peerAddress: string;
  host: string | undefined;
  authorization: string | undefined;
  cookie: string | undefined;
  /** The request carries forwarding headers (Forwarded, X-Forwarded-For, X-Real-IP). */
  proxied: boolean;
}

export type AccessDecision =
  | { allowed: true; via: 'loopback' | 'token' }
  | { allowed: false; reason: string };

export function decideAccess(facts: AccessFacts, token: string | undefined): AccessDecision {
  if (token !== undefined && presentsToken(facts, token)) return { allowed: true, via: 'token' };
  if (!isLoopback(facts.peerAddress)) return { allowed: false, reason: 'not a loopback connection, and no valid token' };
  if (facts.proxied) return { allowed: false, reason: 'came through a proxy (forwarding headers), and no valid token' };
  if (facts.host !== undefined && !isLocalHostHeader(facts.host)) {
    return { allowed: false, reason: 'loopback connection with a Host that is not localhost or an IP address (DNS rebinding?)' };
  }
  return { allowed: true, via: 'loopback' };
}

export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** localhost, *.localhost or an IP literal, with or without a port. */
export function isLocalHostHeader(host: string): boolean {
  const name = host.startsWith('[')
    ? host.slice(1, host.indexOf(']') === -1 ? undefined : host.indexOf(']'))
    : host.replace(/:\d*$/, '');
  const lower = name.toLowerCase().replace(/\.$/, '');
  return lower === 'localhost' || lower.endsWith('.localhost') || isIP(lower) !== 0;
}

/** The cookie value for a token: a digest, so the token itself is never stored in the browser. */
export function cookieValueOf(token: string): string {
  return createHash('sha256').update(`interpool-admin-cookie\0${token}`).digest('base64url');
}

function presentsToken(facts: AccessFacts, token: string): boolean {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(facts.authorization ?? '')?.[1];
  if (bearer !== undefined && sameSecret(bearer, token)) return true;
  const cookie = cookieNamed(facts.cookie, ADMIN_COOKIE);
  return cookie !== undefined && sameSecret(cookie, cookieValueOf(token));
}

/** Constant-time comparison (of digests, so that lengths leak nothing either). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function cookieNamed(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

const FORWARDING_HEADERS = new Set(['forwarded', 'x-forwarded-for', 'x-real-ip']);

export function accessFactsOf(raw: IncomingMessage): AccessFacts {
  const headers = raw.headers;
  return {
    peerAddress: raw.socket.remoteAddress ?? '',
    host: headers.host,
    authorization: headers.authorization,
    cookie: headers.cookie,
    proxied: Object.keys(headers).some((name) => FORWARDING_HEADERS.has(name)),
  };
}
