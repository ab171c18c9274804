import type {
  CheckpointBatch,
  CheckpointSnapshot,
  CheckpointStore,
} from '../../src/ports/checkpoint.js';
import { SimCheckpointDevice } from '../../src/sim/checkpoint.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { checkpointConformanceSuite } from './checkpoint.suite.js';

// Operations complete in microtasks, in the order they were issued.
checkpointConformanceSuite('SimCheckpointStore', async () => {
  const device = new SimCheckpointDevice({ seed: 1 });
  return {
    store: device.open(),
    reopen: async () => device.open(),
    cleanup: async () => undefined,
  };
});

// Operations complete after seeded latencies in virtual time, so concurrent ones reorder.
// The suite awaits port calls directly, so each call drives the scheduler until it settles.
checkpointConformanceSuite('SimCheckpointStore with latency', async () => {
  const scheduler = new SimScheduler();
  const device = new SimCheckpointDevice({ seed: 2, scheduler, latencyMs: { min: 0, max: 20 } });
  return {
    store: drivenStore(device.open(), scheduler),
    reopen: async () => drivenStore(device.open(), scheduler),
    cleanup: async () => {
      await scheduler.run();
    },
  };
});

function drivenStore(store: CheckpointStore, scheduler: SimScheduler): CheckpointStore {
  return {
    load: (): Promise<CheckpointSnapshot> => scheduler.drive(store.load()),
    // The store's own call runs first, so an assertion in it still throws synchronously.
    apply: (batch: CheckpointBatch): Promise<void> => scheduler.drive(store.apply(batch)),
    close: (): Promise<void> => scheduler.drive(store.close()),
    beginReplace: (): Promise<void> => scheduler.drive(store.beginReplace()),
    addReplace: (entries): Promise<void> => scheduler.drive(store.addReplace(entries)),
    commitReplace: (commit): Promise<void> => scheduler.drive(store.commitReplace(commit)),
  };
}
