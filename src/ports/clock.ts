/**
 * Time as the engine's replication driver sees it. Real: monotonic `performance.now()` and
 * `setTimeout`; simulated: the SimScheduler's virtual time. The pure core never reads time; the
 * driver passes `now()` into `tick()`.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `callback` once after `delayMs`; returns a function that cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
  /** Calls `callback` once, after the current turn's I/O callbacks (setImmediate). */
  defer(callback: () => void): void;
}
