/**
 * Trusted proxies: who the client is (REMOTE_ADDR), which scheme it used
 * (wsgi.url_scheme) and which host it asked for (HTTP_HOST), when a reverse proxy sits
 * in front. Only a peer listed in --forwarded-allow-ips may say so, through
 * X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Ssl or RFC 7239
 * Forwarded; from any other peer those headers change nothing (the app still sees them
 * as ordinary HTTP_* values). Pure functions, table-tested.
 *
 * The client address is found as proxy-addr and Werkzeug do: walk the forwarded chain
 * from the nearest hop outwards, skipping hops that are themselves trusted proxies; the
 * first untrusted hop is the client. Scheme and host are taken from the same hop when
 * each proxy appended its own value, else from the nearest proxy (which overwrote it).
 */
import { BlockList, isIP } from 'node:net';
import { InterpoolError } from './errors.ts';

export interface TrustedProxies {
  /** True when a request from this peer address may set forwarding headers. */
  trusts(address: string): boolean;
}

export interface ClientView {
  remoteAddress: string;
  /** The peer's port; when a trusted proxy names the client, the port it gave, or 0 when it gave none. */
  remotePort: number;
  urlScheme: 'http' | 'https';
  /** Replaces HTTP_HOST when a trusted proxy forwarded the host the client asked for. */
  host: string | undefined;
}

export interface Peer {
  address: string;
  port: number;
}

/**
 * Check one --forwarded-allow-ips entry list (addresses, CIDR ranges, or `*`) and return
 * it normalised, or a message saying what is wrong with it.
 */
export function parseProxyList(raw: unknown): string[] | string {
  const items = typeof raw === 'string' ? raw.split(',') : raw;
  if (!Array.isArray(items)) return 'must be a comma-separated list of IP addresses, CIDR ranges or *';
  const entries = items.map((item) => (typeof item === 'string' ? item.trim() : item)).filter((item) => item !== '');
  for (const entry of entries) {
    if (typeof entry !== 'string' || (entry !== '*' && !parseRange(entry))) {
      return `must be a comma-separated list of IP addresses, CIDR ranges or *; ${JSON.stringify(entry)} is none of those`;
    }
  }
  return entries as string[];
}

/** Build the matcher for a list parseProxyList accepted. */
export function buildTrustedProxies(entries: readonly string[]): TrustedProxies {
  if (entries.includes('*')) return { trusts: () => true };
  const list = new BlockList();
  for (const entry of entries) {
    const range = parseRange(entry)!;
    if (range.prefix === undefined) list.addAddress(range.address, range.family);
    else list.addSubnet(range.address, range.prefix, range.family);
  }
  // The last answer is kept: a server's requests mostly come from one peer (its proxy, or
  // the loopback), and BlockList.check parses the address again on every call (~0.6% of
  // the main thread's time under a hello load).
  let lastAddress: string | undefined;
  let lastTrusted = false;
  return {
    trusts: (address) => {
      if (address === lastAddress) return lastTrusted;
      const plain = unmapIPv4(address);
      const family = isIP(plain);
      lastTrusted = family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
      lastAddress = address;
      return lastTrusted;
    },
  };
}

function parseRange(entry: string): { address: string; prefix: number | undefined; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max)) return undefined;
  return { address: address!, prefix: prefixText === undefined ? undefined : Number(prefixText), family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) is 127.0.0.1. */
function unmapIPv4(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

/** One hop of a forwarded chain: an address (or `unknown`, or an RFC 7239 obfuscated name) and maybe a port. */
interface Hop {
  address: string;
  port: string | undefined;
  proto?: string;
  host?: string;
}

/**
 * What the app is told about the client. From an untrusted peer: the socket's own view.
 * From a trusted one: the forwarding headers applied, or the error to answer with when
 * they are malformed or disagree on the scheme.
 */
export function resolveClient(peer: Peer, rawHeaders: readonly string[], trusted: TrustedProxies): ClientView | InterpoolError {
  const own: ClientView = { remoteAddress: peer.address, remotePort: peer.port, urlScheme: 'http', host: undefined };
  if (!trusted.trusts(peer.address)) return own;
  const headers = collectHeaders(rawHeaders);
  // Most requests, even from a trusted peer, carry no forwarding header: nothing to apply.
  if (headers === undefined) return own;
  try {
    return applyForwarding(own, headers, trusted);
  } catch (error) {
    if (error instanceof InterpoolError) return error;
    throw error;
  }
}

type ForwardingHeaders = Partial<Record<'forwarded' | 'x-forwarded-for' | 'x-forwarded-proto' | 'x-forwarded-host' | 'x-forwarded-ssl', string>>;
/**
 * The names of ForwardingHeaders, in any case: tested on each header name as received, so
 * that only these few are lower-cased (a new string), not every header of every request.
 */
const FORWARDING_NAME = /^(?:forwarded|x-forwarded-(?:for|proto|host|ssl))$/i;

/** Repeated header lines are one comma-separated list (RFC 9110 §5.3). Undefined when there are none. */
function collectHeaders(rawHeaders: readonly string[]): ForwardingHeaders | undefined {
  let found: ForwardingHeaders | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!FORWARDING_NAME.test(rawHeaders[i]!)) continue;
    const name = rawHeaders[i]!.toLowerCase() as keyof ForwardingHeaders;
    found ??= {};
    const value = rawHeaders[i + 1]!.trim();
    found[name] = found[name] === undefined ? value : `${found[name]}, ${value}`;
  }
  return found;
}

function applyForwarding(own: ClientView, headers: ForwardingHeaders, trusted: TrustedProxies): ClientView {
  const view = { ...own };
  const schemes: [string, 'http' | 'https'][] = [];
  if (headers.forwarded !== undefined) {
    const hops = parseForwarded(headers.forwarded);
    const client = pickClient(hops, trusted);
    if (client.address) [view.remoteAddress, view.remotePort] = [client.address, Number(client.port ?? 0)];
    if (client.proto !== undefined) schemes.push(['Forwarded proto', toScheme(client.proto, 'Forwarded proto')]);
    if (client.host !== undefined) view.host = checkHost(client.host, 'Forwarded host');
  }
  if (headers['x-forwarded-for'] !== undefined) {
    const hops = splitList(headers['x-forwarded-for']).map((entry) => parseNode(entry, 'X-Forwarded-For'));
    const client = pickClient(hops, trusted);
    // Forwarded, the standard header, wins the address when both are present.
    if (headers.forwarded === undefined && client.address) [view.remoteAddress, view.remotePort] = [client.address, Number(client.port ?? 0)];
    const proto = alignedValue(headers['x-forwarded-proto'], hops.length, client.index);
    if (proto !== undefined) schemes.push(['X-Forwarded-Proto', toScheme(proto, 'X-Forwarded-Proto')]);
    const host = alignedValue(headers['x-forwarded-host'], hops.length, client.index);
    if (host !== undefined && view.host === undefined) view.host = checkHost(host, 'X-Forwarded-Host');
  } else {
    const proto = alignedValue(headers['x-forwarded-proto'], 0, 0);
    if (proto !== undefined) schemes.push(['X-Forwarded-Proto', toScheme(proto, 'X-Forwarded-Proto')]);
    const host = alignedValue(headers['x-forwarded-host'], 0, 0);
    if (host !== undefined && view.host === undefined) view.host = checkHost(host, 'X-Forwarded-Host');
  }
  if (headers['x-forwarded-ssl'] !== undefined) schemes.push(['X-Forwarded-Ssl', sslScheme(headers['x-forwarded-ssl'])]);
  const [first, ...others] = schemes;
  const disagreeing = others.find(([, scheme]) => scheme !== first![1]);
  if (disagreeing) {
    throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`${first![0]} says ${first![1]} but ${disagreeing[0]} says ${disagreeing[1]}`]);
  }
  if (first) view.urlScheme = first[1];
  return view;
}

/** Walk from the nearest hop outwards past trusted proxies; the first other hop is the client. */
function pickClient(hops: readonly Hop[], trusted: TrustedProxies): Partial<Hop> & { index: number } {
  if (hops.length === 0) return { index: -1 };
  let index = hops.length - 1;
  while (index > 0 && isAddress(hops[index]!.address) && trusted.trusts(hops[index]!.address)) index--;
  return { ...hops[index]!, index };
}

/**
 * The X-Forwarded-Proto/-Host value for the client's hop: when there is one value per
 * X-Forwarded-For hop (each proxy appended), the one at the client's index; otherwise
 * the last, written by the nearest proxy.
 */
function alignedValue(list: string | undefined, hopCount: number, clientIndex: number): string | undefined {
  if (list === undefined) return undefined;
  const values = splitList(list);
  if (values.length === 0) return undefined;
  return values.length === hopCount && clientIndex >= 0 ? values[clientIndex] : values[values.length - 1];
}

function splitList(value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function isAddress(address: string): boolean {
  return isIP(address) !== 0;
}

function toScheme(value: string, where: string): 'http' | 'https' {
  const scheme = value.trim().toLowerCase();
  if (scheme === 'http' || scheme === 'https') return scheme;
  throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`${where} ${JSON.stringify(value)} is neither http nor https`]);
}

function sslScheme(value: string): 'http' | 'https' {
  const flag = value.trim().toLowerCase();
  if (flag === 'on') return 'https';
  if (flag === 'off') return 'http';
  throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`X-Forwarded-Ssl ${JSON.stringify(value)} is neither on nor off`]);
}

/** A host and optional port, as in a Host header: reg-name or IPv4, or [IPv6]. */
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function checkHost(value: string, where: string): string {
  if (HOST.test(value)) return value;
  throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`${where} ${JSON.stringify(value)} is not a host`]);
}

/**
 * A node as X-Forwarded-For or Forwarded's `for=` writes it: `192.0.2.1`, `192.0.2.1:80`,
 * `2001:db8::1`, `[2001:db8::1]:80`, `unknown`, or an obfuscated `_name`.
 */
function parseNode(text: string, where: string): Hop {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}|_[A-Za-z0-9._-]+))?$/.exec(text);
  if (bracketed && isIP(bracketed[1]!) === 6) return { address: bracketed[1]!, port: portOf(bracketed[2]) };
  if (isIP(text) !== 0) return { address: unmapIPv4(text), port: undefined };
  const withPort = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5}|_[A-Za-z0-9._-]+)$/.exec(text);
  if (withPort && isIP(withPort[1]!) === 4) return { address: withPort[1]!, port: portOf(withPort[2]) };
  if (text.toLowerCase() === 'unknown' || /^_[A-Za-z0-9._-]+$/.test(text)) return { address: text, port: undefined };
  throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`${where} entry ${JSON.stringify(text)} is not an address`]);
}

/** An obfuscated port (`_abc`) is no port the app can use. */
function portOf(text: string | undefined): string | undefined {
  return text === undefined || text.startsWith('_') ? undefined : text;
}

/** RFC 7239 §4: comma-separated elements of `;`-separated `name=value` pairs, values token or quoted-string. */
export function parseForwarded(value: string): Hop[] {
  const hops: Hop[] = [];
  const pair = /\s*([A-Za-z0-9!#$%&'*+\-.^_`|~]+)=(?:([A-Za-z0-9!#$%&'*+\-.^_`|~:[\]]+)|"((?:[^"\\]|\\.)*)")\s*/y;
  let at = 0;
  let hop: Partial<Hop> = {};
  let address: string | undefined;
  const finishHop = () => {
    const node = address === undefined ? { address: '', port: undefined } : parseNode(address, 'Forwarded for');
    hops.push({ ...node, ...(hop.proto !== undefined ? { proto: hop.proto } : {}), ...(hop.host !== undefined ? { host: hop.host } : {}) });
    hop = {};
    address = undefined;
  };
  while (at < value.length) {
    pair.lastIndex = at;
    const match = pair.exec(value);
    if (!match) throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`Forwarded ${JSON.stringify(value)} is not name=value pairs`]);
    const name = match[1]!.toLowerCase();
    const text = match[2] ?? match[3]!.replace(/\\(.)/g, '$1');
    if (name === 'for') address = text;
    else if (name === 'proto') hop.proto = text;
    else if (name === 'host') hop.host = text;
    at = pair.lastIndex;
    const separator = value[at];
    if (separator === ';') at++;
    else if (separator === ',') { finishHop(); at++; }
    else if (separator !== undefined) throw new InterpoolError('INTERPOOL_ERR_FORWARDED', [`Forwarded ${JSON.stringify(value)} is not name=value pairs`]);
  }
  finishHop();
  // An element without for= says nothing about the client: it cannot be the client hop.
  return hops.filter((h) => h.address !== '' || h.proto !== undefined || h.host !== undefined);
}
