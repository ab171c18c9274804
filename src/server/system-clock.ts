import { performance } from 'node:perf_hooks';
import type { ServerClock } from './context.js';

/**
 * The real clock of the server: monotonic time from `performance.now()`, wall time as the
 * process's time origin plus the monotonic time since. Wall time only labels things (log lines,
 * INFO's last checkpoint time, TIME); no decision depends on it. Tests inject their own clock.
 */
export const systemClock: ServerClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => performance.timeOrigin + performance.now(),
};
