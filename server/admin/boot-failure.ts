/**
 * A boot failure as the operator should read it on the dashboard: the exception's type
 * and message, and the frames of the app's own code — not interpool's loader, importlib,
 * Node's module loader or installed packages, which are the same in every traceback.
 * Reads a Python traceback or a V8 stack, whichever the detail is; pure, so the table
 * test in test/unit/admin-boot-failure.test.ts can hold every shape.
 */
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Frame {
  file: string;
  line: number;
  /** The function's name, when the traceback gives one ("<module>" for a module's top level). */
  function: string | null;
  /** The source line, when the traceback quotes it (Python does). */
  code: string | null;
}

export interface ExceptionSummary {
  /** "KeyError", "ModuleNotFoundError", "TypeError" ...; null when the error carried no type. */
  type: string | null;
  message: string;
}

/** Code that is never the app's own, wherever the app lives. */
const FOREIGN_PATH = /(^<|^node:|[\\/](node_modules|site-packages|dist-packages)[\\/]|[\\/]lib[\\/]python\d)/;

/**
 * The frames of `traceback` in the app's own code: its file, or files under its
 * directory, except `internalDirs` (interpool's runtime, when an app sits above it).
 */
export function ownFramesOf(traceback: string, appFile: string, internalDirs: readonly string[] = []): Frame[] {
  const appDir = withSep(dirname(appFile));
  const internal = internalDirs.map(withSep);
  const own = (file: string) => !FOREIGN_PATH.test(file)
    && (file === appFile || (file.startsWith(appDir) && !internal.some((dir) => file.startsWith(dir))));
  return framesOf(traceback).filter((frame) => own(frame.file));
}

/** Every frame of a Python traceback or a V8 stack, outermost first for Python, as written. */
export function framesOf(traceback: string): Frame[] {
  const lines = traceback.split('\n');
  const frames: Frame[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const python = /^\s*File "(.+)", line (\d+)(?:, in (.+))?$/.exec(line);
    if (python) {
      const next = lines[index + 1];
      const code = next !== undefined && /^\s{4,}\S/.test(next) && !/^\s*File "/.test(next) && !/^\s*[~^]+\s*$/.test(next) ? next.trim() : null;
      frames.push({ file: python[1]!, line: Number(python[2]), function: python[3] ?? null, code });
      continue;
    }
    const v8 = /^\s+at (?:(?:async )?(.+?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (v8) frames.push({ file: pathOf(v8[2]!), line: Number(v8[3]), function: v8[1] ?? null, code: null });
  }
  return frames;
}

/**
 * The exception a Python traceback ends with (the lines after its last indented one)
 * or a V8 stack starts with ("TypeError: ..." before the "at" lines). Null when the
 * text is neither.
 */
export function exceptionOf(traceback: string): ExceptionSummary | null {
  const lines = traceback.split('\n').map((line) => line.trimEnd());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  let block: string[];
  if (/^Traceback \(most recent call last\)|^\s*File "/m.test(traceback)) {
    const lastIndented = lines.findLastIndex((line) => /^\s/.test(line));
    block = lines.slice(lastIndented + 1);
  } else {
    const firstAt = lines.findIndex((line) => /^\s+at /.test(line));
    if (firstAt < 0) return null;
    block = lines.slice(0, firstAt);
    // A syntax error's stack may begin with the location and the quoted line.
    const typed = block.findIndex((line) => TYPED_LINE.test(line));
    if (typed < 0) return null;
    block = block.slice(typed);
  }
  const match = TYPED_LINE.exec(block[0] ?? '') ?? /^([A-Za-z_][\w.]*)$/.exec(block[0] ?? '');
  if (!match) return null;
  return { type: match[1]!, message: [match[2] ?? '', ...block.slice(1)].join('\n') };
}

/** "KeyError: 'x'", "pkg.errors.ConfigError: bad", "TypeError: ...". */
const TYPED_LINE = /^([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*): (.*)$/;

function pathOf(location: string): string {
  if (!location.startsWith('file://')) return location;
  try {
    return fileURLToPath(location);
  } catch {
    return location;
  }
}

function withSep(dir: string): string {
  return dir.endsWith(sep) ? dir : dir + sep;
}
