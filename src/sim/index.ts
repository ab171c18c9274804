/**
 * The package's "./testing" export: deterministic building blocks for simulating syncwal
 * (a seeded PRNG, virtual time, a fault-injecting disk and checkpoint store, a fault-injecting
 * network).
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
export { SimNetwork } from './network.js';
export type {
  SimNetworkCounters,
  SimNetworkFaults,
  SimNetworkOptions,
  SimTransportOptions,
} from './network.js';
export { simClock } from './clock.js';
