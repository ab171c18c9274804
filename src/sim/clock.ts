import type { Clock } from '../ports/clock.js';
import type { SimScheduler } from './scheduler.js';

/** Virtual time from a SimScheduler: timers are scheduler events, `now` its virtual clock. */
export function simClock(scheduler: SimScheduler): Clock {
  return {
    now: () => scheduler.now,
    setTimer(delayMs, callback) {
      let cancelled = false;
      scheduler.schedule(delayMs, () => {
        if (!cancelled) callback();
      });
      return () => {
        cancelled = true;
      };
    },
    defer(callback) {
      scheduler.schedule(0, callback);
    },
  };
}
