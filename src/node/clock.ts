import { performance } from 'node:perf_hooks';
import type { Clock } from '../ports/clock.js';

/** Real time: monotonic milliseconds and Node timers (unref'd: they never hold the process). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
  defer(callback) {
    setImmediate(callback);
  },
};
