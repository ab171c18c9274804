import { assert } from '../core/assert.js';

/**
 * Virtual time for deterministic simulation. Nothing here reads a real clock: `now` moves only
 * when `step()` runs the earliest queued event. Events due at the same virtual time run in the
 * order they were scheduled, so a run is a pure function of the program and its seeds.
 *
 * After each event, `step()` waits for one `setImmediate` turn. That turn lets every promise
 * reaction the event triggered (and the reactions those trigger) run to completion before the
 * next event, so "what happens at time t" is fully settled before time moves on.
 */
export class SimScheduler {
  #nowMs = 0;
  #sequence = 0;
  /** A binary min-heap ordered by (time, sequence). */
  readonly #heap: ScheduledEvent[] = [];

  /** Current virtual time in milliseconds. */
  get now(): number {
    return this.#nowMs;
  }

  /** Number of queued events. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Runs `callback` at `now + delayMs` of virtual time. */
  schedule(delayMs: number, callback: () => void): void {
    assert(Number.isFinite(delayMs), 'SimScheduler.schedule: delay must be finite');
    assert(delayMs >= 0, 'SimScheduler.schedule: delay must not be negative');
    const event = { timeMs: this.#nowMs + delayMs, sequence: this.#sequence++, callback };
    this.#heap.push(event);
    this.#siftUp(this.#heap.length - 1);
  }

  /**
   * Runs the earliest event and then lets its promise reactions settle. Resolves false, without
   * doing anything, if no event is queued.
   */
  async step(): Promise<boolean> {
    const event = this.#pop();
    if (event === null) return false;
    assert(event.timeMs >= this.#nowMs, 'SimScheduler: time must not move backwards');
    this.#nowMs = event.timeMs;
    event.callback();
    await new Promise<void>((resolve) => setImmediate(resolve));
    return true;
  }

  /**
   * Steps until `promise` settles and returns its outcome (resolving or rejecting with it). If
   * no event is queued, one event-loop turn passes instead (work may finish outside the
   * scheduler, in microtasks or I/O). Rejects if the promise has not settled after `stepsMax`
   * steps or turns: a simulated operation that never completes is a bug to report.
   */
  async drive<T>(promise: Promise<T>, options: { stepsMax?: number } = {}): Promise<T> {
    const stepsMax = options.stepsMax ?? 1_000_000;
    let settled = false;
    const tracked = promise.finally(() => {
      settled = true;
    });
    // Observed here so a rejection arriving mid-loop is not reported as unhandled.
    tracked.catch(() => undefined);
    for (let steps = 0; !settled && steps < stepsMax; steps++) {
      if (!(await this.step())) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (!settled) throw new Error(`SimScheduler.drive: not settled after ${stepsMax} steps`);
    return tracked;
  }

  /**
   * Steps until no event is queued or `stepsMax` steps ran, and resolves with the steps taken.
   * Hitting the bound is not an error here: the caller checks `pending` if it must be idle.
   */
  async run(options: { stepsMax?: number } = {}): Promise<number> {
    const stepsMax = options.stepsMax ?? 10_000_000;
    assert(Number.isSafeInteger(stepsMax), 'SimScheduler.run: stepsMax must be an integer');
    assert(stepsMax >= 0, 'SimScheduler.run: stepsMax must not be negative');
    let steps = 0;
    while (steps < stepsMax) {
      const stepped = await this.step();
      if (!stepped) break;
      steps++;
    }
    return steps;
  }

  /** Drops every queued event (a simulated crash: the dead process's timers never fire). */
  clear(): void {
    this.#heap.length = 0;
  }

  #pop(): ScheduledEvent | null {
    const first = this.#heap[0];
    if (first === undefined) return null;
    const last = this.#heap.pop();
    assert(last !== undefined);
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#siftDown(0);
    }
    return first;
  }

  #siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#before(index, parent)) break;
      this.#swap(index, parent);
      index = parent;
    }
  }

  #siftDown(start: number): void {
    let index = start;
    const length = this.#heap.length;
    // Each pass moves one level down, and a heap in memory has far fewer than 2^64 levels.
    for (let level = 0; level < 64; level++) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < length && this.#before(left, smallest)) smallest = left;
      if (right < length && this.#before(right, smallest)) smallest = right;
      if (smallest === index) return;
      this.#swap(index, smallest);
      index = smallest;
    }
    assert(false, 'SimScheduler: heap deeper than 64 levels');
  }

  #before(a: number, b: number): boolean {
    const first = this.#heap[a];
    const second = this.#heap[b];
    assert(first !== undefined);
    assert(second !== undefined);
    if (first.timeMs !== second.timeMs) return first.timeMs < second.timeMs;
    return first.sequence < second.sequence;
  }

  #swap(a: number, b: number): void {
    const first = this.#heap[a];
    const second = this.#heap[b];
    assert(first !== undefined);
    assert(second !== undefined);
    this.#heap[a] = second;
    this.#heap[b] = first;
  }
}

interface ScheduledEvent {
  timeMs: number;
  sequence: number;
  callback: () => void;
}
