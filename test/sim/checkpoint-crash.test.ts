/**
 * Crash and fault tests of the simulated checkpoint store (the fault model at the top of
 * src/sim/checkpoint.ts). Every case is seeded; loops over seeds check that each allowed outcome
 * occurs and that no forbidden one (a mix of two states) ever does. A failure names its seed.
 */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import type {
  CheckpointBatch,
  CheckpointSnapshot,
  CheckpointStore,
} from '../../src/ports/checkpoint.js';
import { SimCheckpointDevice } from '../../src/sim/checkpoint.js';
import { Random } from '../../src/sim/random.js';
import { SimScheduler } from '../../src/sim/scheduler.js';

const seeds = Array.from({ length: 300 }, (_unused, index) => index);

/** A snapshot as one comparable string. */
function fingerprint(snapshot: CheckpointSnapshot): string {
  const entries = snapshot.entries.map(
    (entry) =>
      `${Buffer.from(entry.key).toString('hex')}=${Buffer.from(entry.value).toString('hex')}`,
  );
  const requestIds = snapshot.requestIds.map((row) => `${row.requestId}@${row.lsn}:${row.outcome}`);
  return `lsn ${snapshot.appliedLsn} | ${entries.join(',')} | ${requestIds.join(',')}`;
}

/** A first batch that fills the store, and a second that changes it in every way a batch can. */
function batches(seed: number): [CheckpointBatch, CheckpointBatch] {
  const random = new Random(seed);
  const key = (index: number): Uint8Array => Uint8Array.of(index, random.int(256));
  const value = (): Uint8Array => Uint8Array.from({ length: random.int(8) }, () => random.int(256));
  const keys = Array.from({ length: 12 }, (_unused, index) => key(index));
  const first: CheckpointBatch = {
    appliedLsn: 10,
    puts: keys.map((k) => ({ key: k, value: value() })),
    deletes: [],
    requestIds: keys.map((_k, index) => ({
      requestId: `r${index}`,
      lsn: index + 1,
      outcome: index % 3 === 0 ? 'aborted' : 'committed',
      value: index % 2 === 0 ? null : Uint8Array.of(index),
    })),
    requestIdsBelowLsnForget: 0,
  };
  const second: CheckpointBatch = {
    appliedLsn: 10 + 1 + random.int(5),
    puts: [
      { key: keys[random.int(6)]!, value: value() },
      { key: Uint8Array.of(200, random.int(256)), value: value() },
    ],
    deletes: [keys[6 + random.int(6)]!, Uint8Array.of(250)],
    requestIds: [
      { requestId: 'r1', lsn: 11, outcome: 'aborted', value: null },
      { requestId: 'new', lsn: 12, outcome: 'committed', value: Uint8Array.of(7) },
    ],
    requestIdsBelowLsnForget: 1 + random.int(6),
  };
  return [first, second];
}

/** The state after `applied` on a device that never crashes. */
async function stateAfter(applied: CheckpointBatch[]): Promise<string> {
  const device = new SimCheckpointDevice({ seed: 0 });
  const store = device.open();
  for (const batch of applied) await store.apply(batch);
  return fingerprint(await store.load());
}

/** Whether a promise settles once every queued event and its reactions have run. */
async function settlesAfterRun(scheduler: SimScheduler | null, promise: Promise<unknown>) {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  if (scheduler !== null) await scheduler.run();
  await new Promise<void>((resolve) => setImmediate(resolve));
  return settled;
}

describe('SimCheckpointDevice crash', () => {
  it('leaves exactly the state before or after an apply in flight, never a mix', async () => {
    const outcomes = { before: 0, after: 0 };
    for (const seed of seeds) {
      const [first, second] = batches(seed);
      const before = await stateAfter([first]);
      const after = await stateAfter([first, second]);
      expect(after, `seed ${seed}`).not.toBe(before);
      const scheduler = new SimScheduler();
      const device = new SimCheckpointDevice({ seed, scheduler, latencyMs: { min: 1, max: 9 } });
      const store = device.open();
      await scheduler.drive(store.apply(first));
      const inflight = store.apply(second);
      const loading = store.load();
      // Run a few events (possibly none): the apply may complete first, or be caught in flight.
      const random = new Random(seed);
      for (let steps = random.int(3); steps > 0; steps--) await scheduler.step();
      const completed = device.inflightCount === 0;
      device.crash();
      const recovered = fingerprint(await scheduler.drive(device.open().load()));
      if (completed) expect(recovered, `seed ${seed}: a completed apply is durable`).toBe(after);
      expect([before, after], `seed ${seed}`).toContain(recovered);
      outcomes[recovered === after ? 'after' : 'before']++;
      expect(fingerprint(device.durableState())).toBe(recovered);
      // The dead process hears nothing more, whatever happened to its requests.
      if (!completed) expect(await settlesAfterRun(scheduler, inflight)).toBe(false);
      void loading;
    }
    expect(outcomes.before).toBeGreaterThan(20);
    expect(outcomes.after).toBeGreaterThan(20);
  });

  it('decides an apply in flight by a seeded coin flip without a scheduler too', async () => {
    const outcomes = new Set<string>();
    for (const seed of seeds.slice(0, 64)) {
      const [first, second] = batches(seed);
      const device = new SimCheckpointDevice({ seed });
      const store = device.open();
      await store.apply(first);
      const inflight = store.apply(second);
      device.crash();
      const recovered = fingerprint(await device.open().load());
      const before = await stateAfter([first]);
      const after = await stateAfter([first, second]);
      expect([before, after], `seed ${seed}`).toContain(recovered);
      outcomes.add(recovered === after ? 'after' : 'before');
      expect(await settlesAfterRun(null, inflight)).toBe(false);
    }
    expect([...outcomes].sort()).toEqual(['after', 'before']);
  });

  it('replays the same outcome from the same seed', async () => {
    const run = async (seed: number): Promise<string> => {
      const [first, second] = batches(seed);
      const device = new SimCheckpointDevice({ seed });
      const store = device.open();
      await store.apply(first);
      void store.apply(second);
      device.crash();
      return fingerprint(await device.open().load());
    };
    for (const seed of seeds.slice(0, 32)) expect(await run(seed)).toBe(await run(seed));
  });

  it('makes every call on a dead store a promise that never settles', async () => {
    const device = new SimCheckpointDevice({ seed: 1 });
    const store = device.open();
    await store.apply(batches(1)[0]);
    device.crash();
    expect(await settlesAfterRun(null, store.load())).toBe(false);
    expect(await settlesAfterRun(null, store.apply(batches(1)[1]))).toBe(false);
    expect(await settlesAfterRun(null, store.close())).toBe(false);
    expect((await device.open().load()).appliedLsn).toBe(10);
  });

  it('refuses a second open store in one process (one process owns the file)', async () => {
    const device = new SimCheckpointDevice({ seed: 1 });
    const store = device.open();
    expect(() => device.open()).toThrow(AssertionError);
    await store.close();
    const reopened = device.open();
    device.crash();
    // After a crash the old store is dead, so the new process may open at once.
    void reopened;
    expect((await device.open().load()).appliedLsn).toBe(0);
  });
});

describe('SimCheckpointDevice.failNextApply', () => {
  it('ENOSPC rejects with NOSPACE, changes nothing, and leaves the store usable', async () => {
    const [first, second] = batches(3);
    const device = new SimCheckpointDevice({ seed: 3 });
    const store = device.open();
    await store.apply(first);
    const before = fingerprint(device.durableState());
    device.failNextApply('ENOSPC');
    await expect(store.apply(second)).rejects.toMatchObject({ code: 'NOSPACE' });
    expect(fingerprint(device.durableState())).toBe(before);
    expect(fingerprint(await store.load())).toBe(before);
    await store.apply(second);
    expect(fingerprint(await store.load())).toBe(await stateAfter([first, second]));
  });

  it('an ENOSPC apply caught in flight by a crash never turns up', async () => {
    for (const seed of seeds.slice(0, 64)) {
      const [first, second] = batches(seed);
      const device = new SimCheckpointDevice({ seed });
      const store = device.open();
      await store.apply(first);
      device.failNextApply('ENOSPC');
      void store.apply(second);
      device.crash();
      expect(fingerprint(await device.open().load()), `seed ${seed}`).toBe(
        await stateAfter([first]),
      );
    }
  });

  it('EIO rejects with IOERR, changes nothing visible, and fences the store', async () => {
    const [first, second] = batches(4);
    const device = new SimCheckpointDevice({ seed: 4 });
    const store = device.open();
    await store.apply(first);
    const before = fingerprint(device.durableState());
    device.failNextApply('EIO');
    await expect(store.apply(second)).rejects.toMatchObject({ code: 'IOERR' });
    expect(fingerprint(device.durableState())).toBe(before);
    await expect(store.load()).rejects.toMatchObject({ code: 'IOERR' });
    await expect(store.apply(second)).rejects.toMatchObject({ code: 'IOERR' });
    await store.close();
    await expect(store.load()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('an EIO apply is in doubt: after reopening it is there entirely or not at all', async () => {
    const outcomes = new Set<string>();
    for (const seed of seeds.slice(0, 64)) {
      const [first, second] = batches(seed);
      const device = new SimCheckpointDevice({ seed });
      const store = device.open();
      await store.apply(first);
      device.failNextApply('EIO');
      await expect(store.apply(second)).rejects.toMatchObject({ code: 'IOERR' });
      await store.close();
      if (seed % 2 === 0) device.crash();
      const reopened = device.open();
      const recovered = fingerprint(await reopened.load());
      const before = await stateAfter([first]);
      const after = await stateAfter([first, second]);
      expect([before, after], `seed ${seed}`).toContain(recovered);
      outcomes.add(recovered === after ? 'after' : 'before');
      // Once decided, it stays decided: another crash changes nothing.
      device.crash();
      expect(fingerprint(await device.open().load()), `seed ${seed}`).toBe(recovered);
    }
    expect([...outcomes].sort()).toEqual(['after', 'before']);
  });

  it('a fault applies to the next apply only', async () => {
    const [first, second] = batches(5);
    const device = new SimCheckpointDevice({ seed: 5 });
    const store: CheckpointStore = device.open();
    device.failNextApply('ENOSPC');
    await expect(store.apply(first)).rejects.toMatchObject({ code: 'NOSPACE' });
    await store.apply(first);
    await store.apply(second);
    expect(fingerprint(await store.load())).toBe(await stateAfter([first, second]));
  });
});
