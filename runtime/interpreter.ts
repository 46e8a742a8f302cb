/**
 * The interface every kind of interpreter implements inside a worker, and the loader
 * that picks one by kind. A new kind plugs in here and in interpreters/, with no change
 * to server/: the main thread only ever sees protocol.ts messages.
 */
import type { BootStage, InterpreterKind, RequestEnvelope, TaskResult, WorkerSpec } from './protocol.ts';
import type { ResponseWriter } from './response-writer.ts';

export interface Interpreter {
  readonly kind: InterpreterKind;
  /** Human-readable runtime version ("Node 24.9.0", "Python 3.14.0"). */
  readonly version: string;
  /** Run one request through the app, always calling the iterable's close(). */
  handle(envelope: RequestEnvelope, writer: ResponseWriter): Promise<TaskResult>;
  /** Bytes the interpreter holds now (Pyodide: its WebAssembly memory; native: its own allocator's arenas; JS: the V8 heap). */
  memoryBytes?(): number;
  /** What memoryBytes measures, when it is not the obvious (the admin shows it). */
  memoryMeasure?: string;
  /** False once the interpreter cannot serve again (a fatal runtime error): it is replaced. */
  healthy?(): boolean;
}

/** Times each boot stage and keeps the list for the boot report. */
export class BootTimer {
  readonly stages: BootStage[] = [];
  /** Things worth a log line about this boot (a snapshot that could not be used, ...). */
  readonly notes: string[] = [];

  note(message: string): void {
    this.notes.push(message);
  }

  async stage<T>(name: string, run: () => Promise<T> | T): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      this.stages.push({ name, ms: Math.round((performance.now() - started) * 10) / 10 });
    }
  }
}

/** Raised by a boot stage when the app cannot be loaded; `code` is an ErrorCode. */
export class BootError extends Error {
  readonly code: 'APP_BOOT_FAILED' | 'APP_CALLABLE_MISSING';
  readonly detail: string | undefined;

  constructor(code: 'APP_BOOT_FAILED' | 'APP_CALLABLE_MISSING', message: string, detail?: string) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

/**
 * Boot the interpreter kind named by the spec. Each kind is imported only when used.
 * `control` is the worker's shared control block (see ControlSlot): slot INTERRUPT is
 * set to 2 (SIGINT) by the main thread when a request times out.
 */
export async function bootInterpreter(spec: WorkerSpec, timer: BootTimer, control: Int32Array): Promise<Interpreter> {
  switch (spec.kind) {
    case 'javascript': {
      const { bootJavaScript } = await import('./interpreters/javascript.ts');
      return bootJavaScript(spec, timer);
    }
    case 'python': {
      if (spec.settings.python === 'native') {
        const { bootNative } = await import('./interpreters/native.ts');
        return bootNative(spec, timer, control);
      }
      const { bootPython } = await import('./interpreters/python.ts');
      return bootPython(spec, timer, control);
    }
  }
}
