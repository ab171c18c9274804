/**
 * The checkpoint port's conformance suite (the abstract-level pattern, as disk.suite.ts): the
 * SQLite store and the simulated one run these cases, so they agree on every edge the port
 * (src/ports/checkpoint.ts) documents, plus these, which it leaves open and this suite pins:
 *
 * - keys and values are any bytes, including the empty array (as a value and as a key);
 * - deleting an absent key is ignored;
 * - an `apply` below the stored `appliedLsn` rejects with INVALID, changes nothing, and leaves
 *   the store usable; an equal `appliedLsn` is allowed;
 * - request ids added in a batch are forgotten by the same batch's bound if they fall below it;
 * - request ids with equal LSNs come back in request id order (UTF-8 bytes);
 * - the store copies a batch when `apply` is called: the caller may reuse its buffers at once;
 * - two overlapping `apply` calls are a programmer bug: the second throws an AssertionError;
 * - after `close`, `load` and `apply` reject with CLOSED, and closing again is harmless;
 * - a replace (full sync) is invisible until `commitReplace`, then it is the whole state, with
 *   its request ids and log base; a second `beginReplace` discards what was staged; the log
 *   base is kept by an apply at the same LSN and dropped by one past it;
 * - `addReplace` or `commitReplace` without a `beginReplace` in this process rejects INVALID.
 */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import type {
  CheckpointBatch,
  CheckpointEntry,
  CheckpointSnapshot,
  CheckpointStore,
  RequestIdRecord,
} from '../../src/ports/checkpoint.js';

export interface CheckpointUnderTest {
  /** A new, empty store. */
  store: CheckpointStore;
  /** Opens the same store again; called only after the previous one was closed. */
  reopen(): Promise<CheckpointStore>;
  cleanup(): Promise<void>;
}

type Body = (subject: CheckpointUnderTest) => Promise<void>;
type WithStore = (body: Body) => () => Promise<void>;

export function checkpointConformanceSuite(
  name: string,
  factory: () => Promise<CheckpointUnderTest>,
): void {
  /** Runs one case on a fresh store and always cleans up. */
  const withStore: WithStore = (body) => async () => {
    const subject = await factory();
    try {
      await body(subject);
    } finally {
      await subject.cleanup();
    }
  };

  describe(`${name}: checkpoint conformance`, () => {
    roundTripCases(withStore);
    appliedLsnCases(withStore);
    requestIdCases(withStore);
    lifecycleCases(withStore);
    scaleCases(withStore);
    replaceCases(withStore);
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function hex(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

function batch(fields: Partial<CheckpointBatch> & { appliedLsn: number }): CheckpointBatch {
  return { puts: [], deletes: [], requestIds: [], requestIdsBelowLsnForget: 0, ...fields };
}

function put(key: Uint8Array, value: Uint8Array): CheckpointEntry {
  return { key, value };
}

/** A snapshot in a comparable form: hex strings in place of byte arrays. */
function plain(snapshot: CheckpointSnapshot): {
  appliedLsn: number;
  entries: [string, string][];
  requestIds: RequestIdRecord[];
} {
  return {
    appliedLsn: snapshot.appliedLsn,
    entries: snapshot.entries.map((entry) => [hex(entry.key), hex(entry.value)]),
    requestIds: snapshot.requestIds,
  };
}

function record(
  requestId: string,
  lsn: number,
  outcome: RequestIdRecord['outcome'],
  value: Uint8Array | null = outcome === 'committed' ? Uint8Array.of(lsn & 0xff, 0, 255) : null,
): RequestIdRecord {
  return { requestId, lsn, outcome, value };
}

// ---------------------------------------------------------------------------------------------
// Cases.

function roundTripCases(withStore: WithStore): void {
  describe('load and apply', () => {
    it(
      'a new store loads empty, with appliedLsn 0',
      withStore(async ({ store }) => {
        expect(plain(await store.load())).toEqual({ appliedLsn: 0, entries: [], requestIds: [] });
      }),
    );

    it(
      'round-trips binary keys and values, including empty ones and 0x00 / 0xff bytes',
      withStore(async ({ store }) => {
        const puts = [
          put(bytes(0x00), bytes()),
          put(bytes(0xff, 0x00, 0xff), bytes(0x00, 0x00, 0x00)),
          put(bytes(), bytes(0xff)),
          put(
            bytes(0x61, 0x00, 0x62),
            Uint8Array.from({ length: 300 }, (_u, i) => i % 256),
          ),
        ];
        await store.apply(batch({ appliedLsn: 7, puts }));
        const loaded = await store.load();
        expect(loaded.appliedLsn).toBe(7);
        expect(loaded.entries.every((entry) => entry.key instanceof Uint8Array)).toBe(true);
        expect(loaded.entries.every((entry) => entry.value instanceof Uint8Array)).toBe(true);
        const expected = puts.map((entry): [string, string] => [hex(entry.key), hex(entry.value)]);
        expected.sort((a, b) => Buffer.compare(Buffer.from(a[0], 'hex'), Buffer.from(b[0], 'hex')));
        expect(plain(loaded).entries).toEqual(expected);
      }),
    );

    it(
      'returns keys in ascending byte order, shorter prefix first',
      withStore(async ({ store }) => {
        const keys = [
          bytes(0xff),
          bytes(0x80),
          bytes(0x00, 0x00),
          bytes(0x7f, 0xff),
          bytes(0x00),
          bytes(0x01),
          bytes(),
          bytes(0x7f),
          bytes(0xff, 0x00),
        ];
        await store.apply(batch({ appliedLsn: 1, puts: keys.slice(0, 4).map((k) => put(k, k)) }));
        await store.apply(batch({ appliedLsn: 2, puts: keys.slice(4).map((k) => put(k, k)) }));
        const loaded = plain(await store.load()).entries.map(([key]) => key);
        expect(loaded).toEqual(['', '00', '0000', '01', '7f', '7fff', '80', 'ff', 'ff00']);
      }),
    );

    it(
      'replaces values and removes deleted keys; deleting an absent key is ignored',
      withStore(async ({ store }) => {
        const puts = [put(bytes(1), bytes(10)), put(bytes(2), bytes(20)), put(bytes(3), bytes(30))];
        await store.apply(batch({ appliedLsn: 1, puts }));
        await store.apply(
          batch({
            appliedLsn: 2,
            puts: [put(bytes(2), bytes(21))],
            deletes: [bytes(1), bytes(9)],
          }),
        );
        expect(plain(await store.load()).entries).toEqual([
          ['02', '15'],
          ['03', '1e'],
        ]);
        await store.apply(batch({ appliedLsn: 3, deletes: [bytes(2), bytes(3)] }));
        expect(plain(await store.load())).toEqual({ appliedLsn: 3, entries: [], requestIds: [] });
      }),
    );

    it(
      'copies the batch when apply is called: the caller may reuse its buffers at once',
      withStore(async ({ store }) => {
        // Buffers too: their slice() is a view, so an adapter must copy them some other way.
        const key = Buffer.from([1, 2, 3]);
        const value = bytes(4, 5, 6);
        const deleted = Buffer.from([7]);
        await store.apply(batch({ appliedLsn: 1, puts: [put(deleted, bytes(8))] }));
        const done = store.apply(
          batch({ appliedLsn: 2, puts: [put(key, value)], deletes: [deleted] }),
        );
        key.fill(0xee);
        value.fill(0xee);
        deleted.fill(0xee);
        await done;
        expect(plain(await store.load()).entries).toEqual([['010203', '040506']]);
      }),
    );
  });
}

function appliedLsnCases(withStore: WithStore): void {
  describe('appliedLsn', () => {
    it(
      'a lower appliedLsn rejects with INVALID, changes nothing and leaves the store usable',
      withStore(async ({ store }) => {
        const first = batch({
          appliedLsn: 10,
          puts: [put(bytes(1), bytes(1))],
          requestIds: [record('a', 10, 'committed')],
        });
        await store.apply(first);
        const before = plain(await store.load());
        const lower = batch({
          appliedLsn: 9,
          puts: [put(bytes(2), bytes(2))],
          deletes: [bytes(1)],
          requestIds: [record('b', 9, 'aborted')],
          requestIdsBelowLsnForget: 11,
        });
        await expect(store.apply(lower)).rejects.toMatchObject({ code: 'INVALID' });
        expect(plain(await store.load())).toEqual(before);
        await store.apply(batch({ appliedLsn: 11, puts: [put(bytes(3), bytes(3))] }));
        expect((await store.load()).appliedLsn).toBe(11);
      }),
    );

    it(
      'an equal appliedLsn is allowed, and its changes apply',
      withStore(async ({ store }) => {
        await store.apply(batch({ appliedLsn: 5, puts: [put(bytes(1), bytes(1))] }));
        await store.apply(batch({ appliedLsn: 5, puts: [put(bytes(2), bytes(2))] }));
        expect(plain(await store.load())).toEqual({
          appliedLsn: 5,
          entries: [
            ['01', '01'],
            ['02', '02'],
          ],
          requestIds: [],
        });
      }),
    );
  });
}

function requestIdCases(withStore: WithStore): void {
  describe('request ids', () => {
    it(
      'inserts, replaces and returns them oldest first',
      withStore(async ({ store }) => {
        const first = [record('c', 3, 'committed'), record('a', 1, 'aborted')];
        await store.apply(batch({ appliedLsn: 3, requestIds: first }));
        expect((await store.load()).requestIds).toEqual([first[1], first[0]]);
        const second = [record('a', 4, 'committed'), record('b', 2, 'committed')];
        await store.apply(batch({ appliedLsn: 4, requestIds: second }));
        expect((await store.load()).requestIds).toEqual([
          record('b', 2, 'committed'),
          record('c', 3, 'committed'),
          record('a', 4, 'committed'),
        ]);
      }),
    );

    it(
      'orders request ids with equal LSNs by their UTF-8 bytes',
      withStore(async ({ store }) => {
        // U+FF5E sorts before U+1F600 in UTF-8 bytes, but after it in UTF-16 code units.
        const ids = ['b', '\u{1F600}', 'a', '\uFF5E', 'B'];
        const requestIds = ids.map((id) => record(id, 1, 'committed'));
        await store.apply(batch({ appliedLsn: 1, requestIds }));
        const loaded = (await store.load()).requestIds.map((row) => row.requestId);
        expect(loaded).toEqual(['B', 'a', 'b', '\uFF5E', '\u{1F600}']);
      }),
    );

    it(
      'forgets ids below the bound (0 forgets none), including ids added by the same batch',
      withStore(async ({ store }) => {
        const requestIds = [record('a', 1, 'committed'), record('b', 5, 'aborted')];
        await store.apply(batch({ appliedLsn: 5, requestIds }));
        await store.apply(batch({ appliedLsn: 6, requestIdsBelowLsnForget: 0 }));
        expect((await store.load()).requestIds).toHaveLength(2);
        const more = [record('c', 2, 'committed'), record('d', 6, 'committed')];
        await store.apply(batch({ appliedLsn: 6, requestIds: more, requestIdsBelowLsnForget: 5 }));
        expect((await store.load()).requestIds).toEqual([
          record('b', 5, 'aborted'),
          record('d', 6, 'committed'),
        ]);
      }),
    );
  });
}

function lifecycleCases(withStore: WithStore): void {
  describe('lifecycle', () => {
    it(
      'keeps everything across close and reopen',
      withStore(async ({ store, reopen }) => {
        const puts = [put(bytes(0xff), bytes()), put(bytes(0x00), bytes(1, 2))];
        const requestIds = [record('x', 4, 'committed'), record('y', 2, 'aborted')];
        await store.apply(batch({ appliedLsn: 4, puts, requestIds, deletes: [bytes(3)] }));
        const before = plain(await store.load());
        await store.close();
        const reopened = await reopen();
        expect(plain(await reopened.load())).toEqual(before);
        await reopened.apply(batch({ appliedLsn: 5, deletes: [bytes(0xff)] }));
        await reopened.close();
        const again = await reopen();
        expect(plain(await again.load())).toEqual({
          ...before,
          appliedLsn: 5,
          entries: [before.entries[0]],
        });
        await again.close();
      }),
    );

    it(
      'rejects load and apply with CLOSED after close; closing twice is harmless',
      withStore(async ({ store }) => {
        await store.close();
        await expect(store.load()).rejects.toMatchObject({ code: 'CLOSED' });
        await expect(store.apply(batch({ appliedLsn: 1 }))).rejects.toMatchObject({
          code: 'CLOSED',
        });
        await store.close();
      }),
    );

    it(
      'completes requests made before close',
      withStore(async ({ store, reopen }) => {
        const applied = store.apply(batch({ appliedLsn: 2, puts: [put(bytes(1), bytes(2))] }));
        const loaded = store.load();
        const closed = store.close();
        await applied;
        expect((await loaded).appliedLsn).toBe(2);
        await closed;
        const reopened = await reopen();
        expect((await reopened.load()).appliedLsn).toBe(2);
        await reopened.close();
      }),
    );

    it(
      'asserts when two applies overlap (callers serialize)',
      withStore(async ({ store }) => {
        const first = store.apply(batch({ appliedLsn: 1 }));
        expect(() => store.apply(batch({ appliedLsn: 2 }))).toThrow(AssertionError);
        await first;
        await store.apply(batch({ appliedLsn: 2 }));
        expect((await store.load()).appliedLsn).toBe(2);
      }),
    );
  });
}

function scaleCases(withStore: WithStore): void {
  describe('scale', () => {
    it(
      'round-trips a batch of 100,000 keys',
      withStore(async ({ store, reopen }) => {
        const count = 100_000;
        const puts: CheckpointEntry[] = [];
        // Keys are written in a scrambled order (a multiplicative permutation of the indexes)
        // so the store, not the caller, has to sort them.
        for (let index = 0; index < count; index++) {
          const scrambled = (index * 7919) % count;
          const key = Buffer.alloc(16);
          key.writeUInt32BE(scrambled, 0);
          key.writeUInt32BE(0xffffffff - scrambled, 12);
          const value = Buffer.alloc(scrambled % 50, scrambled % 256);
          puts.push(put(key, value));
        }
        await store.apply(batch({ appliedLsn: 123, puts }));
        await store.close();
        const reopened = await reopen();
        const loaded = await reopened.load();
        await reopened.close();
        expect(loaded.appliedLsn).toBe(123);
        expect(loaded.entries).toHaveLength(count);
        let mismatches = 0;
        for (let index = 0; index < count; index++) {
          const entry = loaded.entries[index]!;
          const key = Buffer.from(entry.key);
          const value = Buffer.from(entry.value);
          const ok =
            key.length === 16 &&
            key.readUInt32BE(0) === index &&
            value.length === index % 50 &&
            value.every((byte) => byte === index % 256);
          if (!ok) mismatches++;
        }
        expect(mismatches).toBe(0);
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Replace (full sync).

const logBaseOf = (lsn: number) => ({ lsn, checksum: 0x8000_0001 + lsn, term: 3 });

function replaceCases(withStore: WithStore): void {
  describe('replace', () => {
    it(
      'swaps in exactly the staged entries, request ids and log base, durably',
      withStore(async ({ store, reopen }) => {
        const old = [put(bytes(1), bytes(1)), put(bytes(2), bytes(2)), put(bytes(9), bytes(9))];
        const oldIds = [record('a', 4, 'committed')];
        await store.apply(batch({ appliedLsn: 4, puts: old, requestIds: oldIds }));
        await store.beginReplace();
        await store.addReplace([put(bytes(2), bytes(20)), put(bytes(5), bytes(50))]);
        await store.addReplace([put(bytes(0), bytes()), put(bytes(5), bytes(51))]);
        const before = plain(await store.load());
        expect(before.entries).toEqual([['01', '01'], ['02', '02'], ['09', '09']]);
        const requestIds = [record('z', 12, 'aborted'), record('y', 11, 'committed')];
        await store.commitReplace({ appliedLsn: 12, requestIds, logBase: logBaseOf(12) });
        const expected = {
          appliedLsn: 12,
          entries: [['00', ''], ['02', '14'], ['05', '33']],
          requestIds: [requestIds[1], requestIds[0]],
        };
        const loaded = await store.load();
        expect(plain(loaded)).toEqual(expected);
        expect(loaded.logBase).toEqual(logBaseOf(12));
        await store.close();
        const reopened = await reopen();
        const again = await reopened.load();
        expect(plain(again)).toEqual(expected);
        expect(again.logBase).toEqual(logBaseOf(12));
        await reopened.close();
      }),
    );

    it(
      'leaves the state alone until the commit; an uncommitted replace is gone after reopen',
      withStore(async ({ store, reopen }) => {
        await store.apply(batch({ appliedLsn: 3, puts: [put(bytes(7), bytes(7))] }));
        await store.beginReplace();
        await store.addReplace([put(bytes(8), bytes(8))]);
        await store.close();
        const reopened = await reopen();
        const loaded = await reopened.load();
        expect(plain(loaded)).toEqual({ appliedLsn: 3, entries: [['07', '07']], requestIds: [] });
        expect(loaded.logBase).toBeUndefined();
        await expect(reopened.addReplace([put(bytes(1), bytes(1))])).rejects.toMatchObject({
          code: 'INVALID',
        });
        const commit = { appliedLsn: 5, requestIds: [], logBase: logBaseOf(5) };
        await expect(reopened.commitReplace(commit)).rejects.toMatchObject({ code: 'INVALID' });
        // A fresh replace after those refusals works (the store was not fenced).
        await reopened.beginReplace();
        await reopened.addReplace([put(bytes(1), bytes(1))]);
        await reopened.commitReplace(commit);
        expect(plain(await reopened.load()).entries).toEqual([['01', '01']]);
        await reopened.close();
      }),
    );

    it(
      'a second beginReplace discards what was staged; an empty replace empties the state',
      withStore(async ({ store }) => {
        await store.apply(batch({ appliedLsn: 1, puts: [put(bytes(1), bytes(1))] }));
        await store.beginReplace();
        await store.addReplace([put(bytes(2), bytes(2))]);
        await store.beginReplace();
        await store.addReplace([put(bytes(3), bytes(3))]);
        await store.commitReplace({ appliedLsn: 2, requestIds: [], logBase: logBaseOf(2) });
        expect(plain(await store.load()).entries).toEqual([['03', '03']]);
        await store.beginReplace();
        await store.commitReplace({ appliedLsn: 3, requestIds: [], logBase: logBaseOf(3) });
        expect(plain(await store.load())).toEqual({ appliedLsn: 3, entries: [], requestIds: [] });
      }),
    );

    it(
      'refuses a commit below the stored appliedLsn or off its log base, keeping the staging',
      withStore(async ({ store }) => {
        await store.apply(batch({ appliedLsn: 10, puts: [put(bytes(1), bytes(1))] }));
        await store.beginReplace();
        await store.addReplace([put(bytes(2), bytes(2))]);
        const low = { appliedLsn: 9, requestIds: [], logBase: logBaseOf(9) };
        await expect(store.commitReplace(low)).rejects.toMatchObject({ code: 'INVALID' });
        const off = { appliedLsn: 11, requestIds: [], logBase: logBaseOf(10) };
        await expect(store.commitReplace(off)).rejects.toMatchObject({ code: 'INVALID' });
        expect(plain(await store.load()).entries).toEqual([['01', '01']]);
        await store.commitReplace({ appliedLsn: 10, requestIds: [], logBase: logBaseOf(10) });
        expect(plain(await store.load())).toEqual({
          appliedLsn: 10,
          entries: [['02', '02']],
          requestIds: [],
        });
      }),
    );

    it(
      'keeps the log base through an apply at its LSN and drops it at the first one past it',
      withStore(async ({ store, reopen }) => {
        await store.beginReplace();
        await store.commitReplace({ appliedLsn: 20, requestIds: [], logBase: logBaseOf(20) });
        await store.apply(batch({ appliedLsn: 20, puts: [put(bytes(1), bytes(1))] }));
        expect((await store.load()).logBase).toEqual(logBaseOf(20));
        await store.apply(batch({ appliedLsn: 21, puts: [put(bytes(2), bytes(2))] }));
        expect((await store.load()).logBase).toBeUndefined();
        await store.close();
        const reopened = await reopen();
        const loaded = await reopened.load();
        expect(loaded.logBase).toBeUndefined();
        expect(plain(loaded).entries).toEqual([['01', '01'], ['02', '02']]);
        await reopened.close();
      }),
    );

    it(
      'copies staged entries when addReplace is called',
      withStore(async ({ store }) => {
        await store.beginReplace();
        const key = Buffer.from([1, 2]);
        const value = bytes(3, 4);
        const added = store.addReplace([put(key, value)]);
        key.fill(0xee);
        value.fill(0xee);
        await added;
        await store.commitReplace({ appliedLsn: 1, requestIds: [], logBase: logBaseOf(1) });
        expect(plain(await store.load()).entries).toEqual([['0102', '0304']]);
      }),
    );

    it(
      'replaces 100,000 keys staged in overlapping chunks of 2,500',
      withStore(async ({ store, reopen }) => {
        const count = 100_000;
        await store.apply(batch({ appliedLsn: 1, puts: [put(bytes(0xff, 0xff), bytes(1))] }));
        await store.beginReplace();
        const adds: Promise<void>[] = [];
        for (let start = 0; start < count; start += 2_500) {
          const entries: CheckpointEntry[] = [];
          for (let index = start; index < start + 2_500; index++) {
            const key = Buffer.alloc(8);
            key.writeUInt32BE(index, 0);
            entries.push(put(key, Buffer.alloc(index % 40, index % 251)));
          }
          adds.push(store.addReplace(entries));
        }
        await Promise.all(adds);
        await store.commitReplace({ appliedLsn: 50, requestIds: [], logBase: logBaseOf(50) });
        await store.close();
        const loaded = await (async () => {
          const reopened = await reopen();
          try {
            return await reopened.load();
          } finally {
            await reopened.close();
          }
        })();
        expect(loaded.appliedLsn).toBe(50);
        expect(loaded.entries).toHaveLength(count);
        let mismatches = 0;
        loaded.entries.forEach((entry, index) => {
          const key = Buffer.from(entry.key);
          const ok =
            key.readUInt32BE(0) === index &&
            entry.value.length === index % 40 &&
            entry.value.every((byte) => byte === index % 251);
          if (!ok) mismatches++;
        });
        expect(mismatches).toBe(0);
      }),
    );
  });
}
