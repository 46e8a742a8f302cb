/**
 * Interpreter slots: the dashboard's rows. A worker thread that exits is replaced by a
 * new one with a new id, so "how often has this interpreter restarted, and why did it
 * last exit" is a question about a slot, not a worker: when an interpreter exits, the
 * next one to boot for the same app takes its slot over (restarts + 1, last exit
 * reason kept). On a reload, the new generation takes over the old generation's slots.
 * Fed by the interpreter booted/exited diagnostics channels.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { channels, type InterpreterBooted, type InterpreterExited } from '../diagnostics.ts';
import type { ExitReason } from '../pool/application-group.ts';

export interface Slot {
  /** 1, 2, ... per app, in order of first boot. */
  slot: number;
  workerId: number;
  generation: number;
  restarts: number;
  lastExit: ExitReason | null;
  lastExitAt: number | null;
}

class AppSlots {
  readonly slots: Slot[] = [];
  readonly byWorker = new Map<number, Slot>();
  /** Slots whose interpreter exited, waiting for a replacement, oldest first. */
  readonly vacant: Slot[] = [];

  booted(workerId: number, generation: number): void {
    if (this.byWorker.has(workerId)) return;
    const slot = this.vacant.shift() ?? this.#olderGeneration(generation);
    if (!slot) {
      const fresh: Slot = { slot: this.slots.length + 1, workerId, generation, restarts: 0, lastExit: null, lastExitAt: null };
      this.slots.push(fresh);
      this.byWorker.set(workerId, fresh);
      return;
    }
    if (this.byWorker.get(slot.workerId) === slot) {
      // Taken over from a live interpreter of an older generation: a reload.
      this.byWorker.delete(slot.workerId);
      slot.lastExit = 'reload';
      slot.lastExitAt = Date.now();
    }
    slot.workerId = workerId;
    slot.generation = generation;
    slot.restarts++;
    this.byWorker.set(workerId, slot);
  }

  exited(workerId: number, reason: ExitReason): void {
    const slot = this.byWorker.get(workerId);
    if (!slot) return;
    this.byWorker.delete(workerId);
    slot.lastExit = reason;
    slot.lastExitAt = Date.now();
    this.vacant.push(slot);
  }

  #olderGeneration(generation: number): Slot | undefined {
    return this.slots.find((slot) => slot.generation < generation && this.byWorker.get(slot.workerId) === slot);
  }
}

export class InterpreterSlots {
  readonly #apps = new Map<string, AppSlots>();
  readonly #onBooted = (message: unknown) => {
    const { app, generation, report } = message as InterpreterBooted;
    this.#apps.get(app)?.booted(report.workerId, generation);
  };
  readonly #onExited = (message: unknown) => {
    const { app, workerId, reason } = message as InterpreterExited;
    this.#apps.get(app)?.exited(workerId, reason);
  };

  /** `seed`: the interpreters already running, per app, in order. */
  constructor(seed: ReadonlyMap<string, readonly { workerId: number; generation: number }[]>) {
    for (const [app, workers] of seed) {
      const slots = new AppSlots();
      for (const { workerId, generation } of workers) slots.booted(workerId, generation);
      this.#apps.set(app, slots);
    }
    subscribe(channels.interpreterBooted.name, this.#onBooted);
    subscribe(channels.interpreterExited.name, this.#onExited);
  }

  close(): void {
    unsubscribe(channels.interpreterBooted.name, this.#onBooted);
    unsubscribe(channels.interpreterExited.name, this.#onExited);
  }

  /** The slot a live worker holds (a worker seen for the first time gets a new one). */
  slotOf(app: string, workerId: number, generation: number): Slot | undefined {
    const slots = this.#apps.get(app);
    if (!slots) return undefined;
    if (!slots.byWorker.has(workerId)) slots.booted(workerId, generation);
    return slots.byWorker.get(workerId);
  }
}
