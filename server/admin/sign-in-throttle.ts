/**
 * Sign-in throttling for --admin-token: a client that presents a few wrong tokens (the
 * sign-in form, a Bearer header, a cookie) within a minute gets 429 until its minute is
 * over, for the right token too, so that guessing learns nothing while it waits.
 *
 * A client is the address the server trusts (the forwarded one behind a trusted proxy),
 * an IPv6 client its /64: one host usually holds a whole /64 to rotate through. The
 * table is bounded: entries are kept in the order their windows started, so expired
 * ones are dropped from the front, and when it is full of live ones the oldest goes (an
 * attacker with that many addresses has that many guesses a minute anyway). The clock
 * is a parameter, so that the unit test needs no sleeping.
 */
import { isIP } from 'node:net';

export interface ThrottleLimits {
  /** Wrong tokens a client may present per window. */
  failures: number;
  windowMs: number;
  /** Clients remembered at most. */
  clients: number;
}

export const SIGN_IN_LIMITS: ThrottleLimits = { failures: 5, windowMs: 60_000, clients: 10_000 };

interface Window {
  startedAt: number;
  failures: number;
}

export class SignInThrottle {
  readonly #limits: ThrottleLimits;
  /** Insertion order is window-start order: a window that restarts is deleted and added again. */
  readonly #windows = new Map<string, Window>();

  constructor(limits: ThrottleLimits = SIGN_IN_LIMITS) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#windows.size;
  }

  /** Whole seconds this client must wait before presenting a token again; 0 when it may now. */
  retryAfter(client: string, now: number): number {
    const window = this.#liveWindow(client, now);
    if (!window || window.failures < this.#limits.failures) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.#limits.windowMs - now) / 1000));
  }

  /** Count one wrong token; true when it is the one that uses up the client's allowance. */
  recordFailure(client: string, now: number): boolean {
    let window = this.#liveWindow(client, now);
    if (!window) {
      this.#makeRoom(now);
      window = { startedAt: now, failures: 0 };
      this.#windows.set(client, window);
    }
    window.failures++;
    return window.failures === this.#limits.failures;
  }

  #liveWindow(client: string, now: number): Window | undefined {
    const window = this.#windows.get(client);
    if (window && now - window.startedAt >= this.#limits.windowMs) {
      this.#windows.delete(client);
      return undefined;
    }
    return window;
  }

  #makeRoom(now: number): void {
    for (const [client, window] of this.#windows) {
      if (this.#windows.size < this.#limits.clients && now - window.startedAt < this.#limits.windowMs) return;
      this.#windows.delete(client);
    }
  }
}

/** The throttle's key for a client address: IPv4 as is, IPv6 by its /64. */
export function throttleKeyOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6 || address.includes('.')) return address;
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
