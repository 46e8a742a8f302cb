/**
 * Who may see the admin dashboard and /metrics. The decision is a pure function of
 * what the connection and the request say, table-tested in test/unit/admin-access.test.ts:
 *
 * - with --admin-token, everyone presenting that token (`Authorization: Bearer TOKEN`,
 *   or the cookie the dashboard's sign-in sets), and nobody else: loopback clients too,
 *   because behind a reverse proxy on this machine every client is a loopback client;
 * - without a token, a loopback connection (127.0.0.0/8, ::1) that the server can be
 *   sure is the client itself: it carries no forwarding header of any kind (Forwarded,
 *   X-Forwarded-*, X-Real-IP, Via, ...: the client is then someone else), and its Host
 *   is localhost or an IP literal, so that a web page served under a DNS-rebound name
 *   cannot read the dashboard through the browser.
 *
 * A proxy that forwards without adding any header (nginx's plain `proxy_pass`) cannot be
 * told apart from a local client: that is why docs/admin.md says to use --admin-bind or
 * a token behind a proxy, and why the server warns at start (start-warning.ts).
 * The Host header never grants anything. Tokens are compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export const ADMIN_COOKIE = 'interpool_admin';

export interface AccessFacts {
  /** The socket's peer address, as Node reports it. */
  peerAddress: string;
  /** Every Host header, as sent (none for HTTP/1.0 without one). */
  hosts: readonly string[];
  authorization: string | undefined;
  cookie: string | undefined;
  /** The first header (lower-case) that says a proxy passed the request on, if any. */
  forwardingHeader: string | undefined;
}

export type AccessDecision =
  | { allowed: true; via: 'loopback' | 'token' }
  | { allowed: false; reason: string };

export function decideAccess(facts: AccessFacts, token: string | undefined): AccessDecision {
  if (token !== undefined) {
    if (presentsToken(facts, token)) return { allowed: true, via: 'token' };
    return { allowed: false, reason: presentsCredentials(facts) ? 'wrong token' : 'no token (--admin-token is set: every client needs it)' };
  }
  if (!isLoopback(facts.peerAddress)) return { allowed: false, reason: 'not a loopback connection, and no --admin-token is set' };
  if (facts.forwardingHeader !== undefined) return { allowed: false, reason: `came through a proxy (${facts.forwardingHeader} header), and no --admin-token is set` };
  if (facts.hosts.length > 1) return { allowed: false, reason: 'more than one Host header' };
  const host = facts.hosts[0];
  if (host !== undefined && !isLocalHostHeader(host)) {
    return { allowed: false, reason: 'loopback connection with a Host that is not localhost or an IP address (DNS rebinding?)' };
  }
  return { allowed: true, via: 'loopback' };
}

export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** `[IPv6]` followed by nothing or `:port`; or a name or IPv4 address followed by nothing or `:port`. */
const BRACKETED_HOST = /^\[([0-9A-Fa-f:.]+)\](?::\d{0,5})?$/;
const PLAIN_HOST = /^([A-Za-z0-9.-]+)(?::\d{0,5})?$/;
/** localhost or a name under it (RFC 6761: resolved on this machine, never by DNS), with an optional root dot. */
const LOCALHOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*localhost\.?$/;

/**
 * localhost, *.localhost or an IP literal, with or without a port, parsed strictly:
 * anything after a bracketed IPv6 literal but a port, an empty name, a port that is not
 * digits, or a character no host name has, is not local.
 */
export function isLocalHostHeader(host: string): boolean {
  const bracketed = BRACKETED_HOST.exec(host);
  if (bracketed) return isIP(bracketed[1]!) === 6;
  const plain = PLAIN_HOST.exec(host);
  if (!plain) return false;
  const name = plain[1]!.toLowerCase();
  return LOCALHOST_NAME.test(name) || isIP(name) === 4;
}

/** The cookie value for a token: a digest, so the token itself is never stored in the browser. */
export function cookieValueOf(token: string): string {
  return createHash('sha256').update(`interpool-admin-cookie\0${token}`).digest('base64url');
}

/** The request offers a token, right or wrong: a Bearer header or the sign-in cookie (what the sign-in throttle counts). */
export function presentsCredentials(facts: AccessFacts): boolean {
  return bearerOf(facts) !== undefined || cookieNamed(facts.cookie, ADMIN_COOKIE) !== undefined;
}

function presentsToken(facts: AccessFacts, token: string): boolean {
  const bearer = bearerOf(facts);
  if (bearer !== undefined && sameSecret(bearer, token)) return true;
  const cookie = cookieNamed(facts.cookie, ADMIN_COOKIE);
  return cookie !== undefined && sameSecret(cookie, cookieValueOf(token));
}

function bearerOf(facts: AccessFacts): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(facts.authorization ?? '')?.[1];
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

/**
 * Headers that proxies and CDNs add to say whose request they pass on: RFC 7239, every
 * X-Forwarded-* (For, Proto, Host, Port, Ssl, Prefix, Server ...), Via (RFC 9110 §7.6.3),
 * and the vendor ones. Any of them, even empty, means the peer is not the client.
 */
const FORWARDING_HEADERS = new Set([
  'forwarded', 'via', 'x-real-ip', 'x-client-ip', 'client-ip', 'true-client-ip', 'cf-connecting-ip',
  'fastly-client-ip', 'x-cluster-client-ip', 'x-original-forwarded-for', 'x-proxyuser-ip',
]);

/** The first forwarding header among raw header names and values, lower-cased, or undefined. */
export function forwardingHeaderIn(rawHeaders: readonly string[]): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (FORWARDING_HEADERS.has(name) || name === 'x-forwarded' || name.startsWith('x-forwarded-')) return name;
  }
  return undefined;
}

export function accessFactsOf(raw: IncomingMessage): AccessFacts {
  const hosts: string[] = [];
  for (let i = 0; i + 1 < raw.rawHeaders.length; i += 2) {
    if (raw.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(raw.rawHeaders[i + 1]!);
  }
  return {
    peerAddress: raw.socket.remoteAddress ?? '',
    hosts,
    authorization: raw.headers.authorization,
    cookie: raw.headers.cookie,
    forwardingHeader: forwardingHeaderIn(raw.rawHeaders),
  };
}
