/**
 * Crash and fault tests of a replace (full sync) on the simulated checkpoint store: a crash at
 * any point of a replace leaves the old state or, once the commit may have happened, the whole
 * new one (with its log base), never a mix; staged entries never survive a crash.
 */
import { describe, expect, it } from 'vitest';
import type { CheckpointEntry, CheckpointSnapshot } from '../../src/ports/checkpoint.js';
import { SimCheckpointDevice } from '../../src/sim/checkpoint.js';
import { Random } from '../../src/sim/random.js';
import { SimScheduler } from '../../src/sim/scheduler.js';

function fingerprint(snapshot: CheckpointSnapshot): string {
  const entries = snapshot.entries.map(
    (entry) =>
      `${Buffer.from(entry.key).toString('hex')}=${Buffer.from(entry.value).toString('hex')}`,
  );
  const ids = snapshot.requestIds.map((row) => `${row.requestId}@${row.lsn}`);
  const base = snapshot.logBase === undefined ? '-' : JSON.stringify(snapshot.logBase);
  return `lsn ${snapshot.appliedLsn} | ${entries.join(',')} | ${ids.join(',')} | ${base}`;
}

function entries(random: Random, count: number, tag: number): CheckpointEntry[] {
  return Array.from({ length: count }, (_unused, index) => ({
    key: Uint8Array.of(index, tag),
    value: Uint8Array.from({ length: random.int(6) }, () => random.int(256)),
  }));
}

describe('SimCheckpointDevice: crash during a replace', () => {
  it('recovers the old state or the whole new one, at any moment (300 seeds)', async () => {
    const outcomes = { old: 0, replaced: 0 };
    for (let seed = 0; seed < 300; seed++) {
      const random = new Random(seed);
      const scheduler = new SimScheduler();
      const device = new SimCheckpointDevice({ seed, scheduler, latencyMs: { min: 1, max: 6 } });
      const store = device.open();
      const old = entries(random, 6, 1);
      const oldIds = [{ requestId: 'old', lsn: 3, outcome: 'committed' as const, value: null }];
      await scheduler.drive(
        store.apply({
          appliedLsn: 5,
          puts: old,
          deletes: [],
          requestIds: oldIds,
          requestIdsBelowLsnForget: 0,
        }),
      );
      const before = fingerprint(await scheduler.drive(store.load()));
      const staged = [entries(random, 4, 2), entries(random, 3, 3)];
      const base = { lsn: 9, checksum: random.int(2 ** 31), term: 2 };
      const newIds = [{ requestId: 'new', lsn: 8, outcome: 'aborted' as const, value: null }];
      let committed = false;
      void (async () => {
        await store.beginReplace();
        await Promise.all(staged.map((chunk) => store.addReplace(chunk)));
        await store.commitReplace({ appliedLsn: 9, requestIds: newIds, logBase: base });
        committed = true;
      })();
      await scheduler.run({ stepsMax: random.int(12) });
      device.crash();
      const recovered = await scheduler.drive(device.open().load());
      const print = fingerprint(recovered);
      if (print === before) {
        expect(committed, `seed ${seed}: a resolved commit was lost`).toBe(false);
        outcomes.old++;
      } else {
        expect(recovered.appliedLsn, `seed ${seed}`).toBe(9);
        expect(recovered.entries, `seed ${seed}`).toHaveLength(7);
        expect(
          recovered.requestIds.map((row) => row.requestId),
          `seed ${seed}`,
        ).toEqual(['new']);
        expect(recovered.logBase, `seed ${seed}`).toEqual(base);
        outcomes.replaced++;
      }
    }
    expect(outcomes.old).toBeGreaterThan(30);
    expect(outcomes.replaced).toBeGreaterThan(30);
  });

  it('staging never survives a crash: an add after it is refused until a new begin', async () => {
    const device = new SimCheckpointDevice({ seed: 1 });
    const store = device.open();
    await store.beginReplace();
    await store.addReplace([{ key: Uint8Array.of(1), value: Uint8Array.of(1) }]);
    device.crash();
    const reopened = device.open();
    await expect(reopened.addReplace([])).rejects.toMatchObject({ code: 'INVALID' });
    await reopened.beginReplace();
    await reopened.commitReplace({
      appliedLsn: 1,
      requestIds: [],
      logBase: { lsn: 1, checksum: 0, term: 1 },
    });
    expect((await reopened.load()).entries).toEqual([]);
  });

  it('an EIO commit fences the store and is in doubt: old or new after reopen', async () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const device = new SimCheckpointDevice({ seed });
      const store = device.open();
      const put = { key: Uint8Array.of(1), value: Uint8Array.of(1) };
      await store.apply({
        appliedLsn: 2,
        puts: [put],
        deletes: [],
        requestIds: [],
        requestIdsBelowLsnForget: 0,
      });
      await store.beginReplace();
      await store.addReplace([{ key: Uint8Array.of(2), value: Uint8Array.of(2) }]);
      device.failNextApply('EIO');
      const commit = { appliedLsn: 4, requestIds: [], logBase: { lsn: 4, checksum: 7, term: 1 } };
      await expect(store.commitReplace(commit)).rejects.toMatchObject({ code: 'IOERR' });
      await expect(store.beginReplace()).rejects.toMatchObject({ code: 'IOERR' });
      await store.close();
      const loaded = await device.open().load();
      const keys = loaded.entries.map((entry) => entry.key[0]);
      expect([[1], [2]], `seed ${seed}`).toContainEqual(keys);
      expect(loaded.appliedLsn, `seed ${seed}`).toBe(keys[0] === 2 ? 4 : 2);
      outcomes.add(keys[0] === 2 ? 'new' : 'old');
    }
    expect([...outcomes].sort()).toEqual(['new', 'old']);
  });
});
