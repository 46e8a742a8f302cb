/**
 * A JS app's values in the shared store's stored form: canonical JSON (object keys
 * sorted, no spaces), where bytes (a Uint8Array) are the object `{"\u0000": base64}`.
 * runtime/wsgi.py writes the same form for Python apps. One text for every store
 * (in-process, Redis), copied in and out by nature, compared as text by compare_and_set.
 */

/** The one key of an encoded bytes value: no JSON object of an app can have it. */
const BYTES_KEY = '\u0000';
/** Deeper than this is a cycle, or a value nobody should share. */
const MAX_DEPTH = 64;

/** A value the store cannot hold: thrown in the app as TypeError (or RangeError). */
export function encodeSharedValue(value: unknown): string {
  return JSON.stringify(toPlain(value, 0));
}

export function decodeSharedValue(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const names = Object.keys(value);
      if (names.length === 1 && names[0] === BYTES_KEY) return new Uint8Array(Buffer.from((value as Record<string, string>)[BYTES_KEY]!, 'base64'));
    }
    return value;
  });
}

function toPlain(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new RangeError(`a shared store value may nest ${MAX_DEPTH} levels at most (a cycle?)`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`the shared store cannot hold ${value}`);
    return value;
  }
  if (value instanceof Uint8Array) return { [BYTES_KEY]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map((item) => toPlain(item, depth + 1));
  if (typeof value === 'object') {
    const prototype = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) {
      const plain: Record<string, unknown> = {};
      for (const name of Object.keys(value).sort()) {
        if (name === BYTES_KEY) throw new RangeError('a shared store object may not have the key "\\u0000"');
        plain[name] = toPlain((value as Record<string, unknown>)[name], depth + 1);
      }
      return plain;
    }
  }
  throw new TypeError(`the shared store cannot hold a value of type ${describeType(value)} (null, booleans, numbers, strings, Uint8Array, arrays and plain objects of those)`);
}

function describeType(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'Object';
  return typeof value;
}
