/**
 * Mounts: which app serves which URL prefix, and how a path splits into SCRIPT_NAME and
 * PATH_INFO. A prefix matches whole path segments only: `/api` serves `/api` and
 * `/api/x`, never `/apix`. The longest matching prefix wins.
 */
import { extname } from 'node:path';
import type { InterpreterKind } from '../runtime/protocol.ts';
import { OptionError } from './options.ts';

export interface MountSpec {
  /** Normalised prefix: "" for the root, else "/a/b" without a trailing slash. */
  prefix: string;
  file: string;
  callable: string;
}

export const DEFAULT_CALLABLE = 'application';

const KIND_BY_EXTENSION: Record<string, InterpreterKind> = {
  '.js': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript', '.ts': 'javascript', '.mts': 'javascript',
  '.py': 'python',
};

export function interpreterKindOf(file: string): InterpreterKind | undefined {
  return KIND_BY_EXTENSION[extname(file).toLowerCase()];
}

export const APP_EXTENSIONS = Object.keys(KIND_BY_EXTENSION);

/** `/PREFIX=FILE[:CALLABLE]` or `FILE[:CALLABLE]` (mounted at the root). */
export function parseMountSpec(text: string): MountSpec {
  const equals = text.indexOf('=');
  const hasPrefix = text.startsWith('/') && equals !== -1;
  const prefix = hasPrefix ? normalisePrefix(text.slice(0, equals), text) : '';
  const target = hasPrefix ? text.slice(equals + 1) : text;
  const [file, callable] = splitCallable(target);
  if (file === '') throw new OptionError(`mount "${text}" names no app file; expected /PREFIX=FILE[:CALLABLE] or FILE[:CALLABLE]`);
  return { prefix, file, callable };
}

/** `apps/api.py:app` → [apps/api.py, app]; the callable is an identifier after the last colon. */
export function splitCallable(target: string): [string, string] {
  const match = /^(.*):([A-Za-z_$][\w$]*)$/.exec(target);
  return match ? [match[1]!, match[2]!] : [target, DEFAULT_CALLABLE];
}

export function normalisePrefix(prefix: string, context: string = prefix): string {
  if (!prefix.startsWith('/')) throw new OptionError(`mount prefix must start with "/", got "${context}"`);
  if (/[?#%\s]/.test(prefix)) throw new OptionError(`mount prefix must be a plain path (no ?, #, % or spaces), got "${context}"`);
  const trimmed = prefix.replace(/\/+$/, '');
  return trimmed.replace(/\/{2,}/g, '/');
}

/** Human form of a prefix, for logs and names: "/" for the root. */
export function displayPrefix(prefix: string): string {
  return prefix === '' ? '/' : prefix;
}

export interface MountMatch<T> {
  target: T;
  scriptName: string;
  pathInfo: string;
}

export class MountTable<T> {
  /**
   * Longest prefix first, so the first match is the most specific. Each prefix as the
   * request path it matches comes out of PEP 3333's decoding: its UTF-8 bytes, one
   * character per byte (latin-1). The command line's `/café` matches the `/caf%C3%A9`
   * that browsers and curl send, as Apache's `WSGIScriptAlias /café` does, and
   * SCRIPT_NAME is `/cafÃ©`, the WSGI form of those bytes; an ASCII prefix is unchanged.
   */
  readonly #entries: { prefix: string; target: T }[];

  constructor(entries: Iterable<{ prefix: string; target: T }>) {
    this.#entries = [...entries]
      .map(({ prefix, target }) => ({ prefix: Buffer.from(prefix, 'utf8').toString('latin1'), target }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
    const seen = new Set<string>();
    for (const { prefix } of this.#entries) {
      if (seen.has(prefix)) throw new OptionError(`two apps are mounted at "${displayPrefix(prefix)}"`);
      seen.add(prefix);
    }
  }

  /** Split a decoded path into SCRIPT_NAME (the prefix) and PATH_INFO (the rest). */
  match(path: string): MountMatch<T> | undefined {
    for (const { prefix, target } of this.#entries) {
      if (prefix === '') return { target, scriptName: '', pathInfo: path };
      if (path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f)) {
        return { target, scriptName: prefix, pathInfo: path.slice(prefix.length) };
      }
    }
    return undefined;
  }
}
