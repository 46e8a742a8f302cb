/**
 * The javascript interpreter kind: the worker thread's own V8 isolate. Importing the app
 * here gives it a module graph of its own — module state is per worker, never shared.
 * `.ts` files load through Node's built-in type stripping (no build step).
 */
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { BootError, type BootTimer, type Interpreter } from '../interpreter.ts';
import type { RequestEnvelope, WorkerSpec } from '../protocol.ts';
import type { ResponseWriter } from '../response-writer.ts';
import { runApplication, type Application, type WorkerMode } from '../wsgi.ts';

export async function bootJavaScript(spec: WorkerSpec, timer: BootTimer): Promise<Interpreter> {
  const module = await timer.stage('import app', () => importApp(spec.file));
  const app = await timer.stage('find callable', () => findCallable(module, spec));
  const mode: WorkerMode = { overlap: spec.overlap, multiprocess: spec.multiprocess };
  return {
    kind: 'javascript',
    version: `Node ${process.versions.node}`,
    handle: (envelope: RequestEnvelope, writer: ResponseWriter) => runApplication(app, envelope, writer, mode),
    // This worker's own isolate: the heap of this app and nothing else.
    memoryBytes: () => getHeapStatistics().used_heap_size,
    healthy: () => true,
  };
}

async function importApp(file: string): Promise<Record<string, unknown>> {
  try {
    return await import(pathToFileURL(file).href);
  } catch (error) {
    const detail = error instanceof Error ? error.stack : String(error);
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new BootError('APP_BOOT_FAILED', `${file}: failed to load: ${message}`, detail);
  }
}

function findCallable(module: Record<string, unknown>, spec: WorkerSpec): Application {
  const candidate = module[spec.callable];
  if (typeof candidate === 'function') return candidate as Application;
  const exported = Object.keys(module).filter((name) => typeof module[name] === 'function');
  const hint = exported.length > 0 ? `; functions it exports: ${exported.join(', ')}` : '';
  throw new BootError('APP_CALLABLE_MISSING', `${spec.file}: no callable "${spec.callable}" exported${hint}`);
}
