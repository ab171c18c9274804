/**
 * The package's "./testing" export: deterministic building blocks for simulating syncwal
 * (a seeded PRNG, virtual time, and a fault-injecting disk).
 */
export { Random } from './random.js';
export { SimScheduler } from './scheduler.js';
export { SimDisk } from './disk.js';
export type {
  CrashMode,
  CrashOptions,
  CrashReport,
  LatencyRange,
  SimDiskOptions,
  SimErrorCode,
  SimSystemError,
  SimView,
} from './disk.js';
export { SimCheckpointDevice, SimCheckpointStore } from './checkpoint.js';
export type {
  SimCheckpointApply,
  SimCheckpointDeviceOptions,
  SimCheckpointFault,
} from './checkpoint.js';
