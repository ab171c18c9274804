/**
 * The workload of the `engine` suite, shared by its systems: 16-byte keys visited in a
 * scrambled order, 100-byte values, a disk that counts fdatasyncs (for the records/sync
 * column), and memory snapshots after a full garbage collection.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NodeDisk } from '../src/node/disk.js';
import type { FileHandle } from '../src/ports/disk.js';
import type { BenchResult } from './lib.js';

/** One row of the table, plus figures a row may add (shown under the table and in --json). */
export interface EngineRun {
  result: BenchResult;
  figures: Record<string, number> | null;
}

/** Bytes of every key. */
export const keyBytes = 16;
/** Bytes of every value. */
export const valueBytes = 100;
/** Keys the put and get rows write and read. */
export const keyspace = 100_000;
/** Coprime with every keyspace used here (2^a * 5^b), so `scrambled` is a permutation. */
const scrambleMultiplier = 48_271;

/** The key with number `id`: `user:` and 11 decimal digits (16 bytes). */
export function keyFor(id: number): Buffer {
  return Buffer.from(`user:${String(id).padStart(keyBytes - 5, '0')}`, 'latin1');
}

/** The `index`-th key number of a pass over [0, size): every number once, in scrambled order. */
export function scrambled(index: number, size: number): number {
  return (index * scrambleMultiplier) % size;
}

/** The keys of the put and get rows, in the order they are visited. */
export function keyspaceKeys(): Buffer[] {
  return Array.from({ length: keyspace }, (_, index) => keyFor(scrambled(index, keyspace)));
}

/** A value: `valueBytes` bytes. */
export function valueFor(seed: number): Buffer {
  return Buffer.alloc(valueBytes, 0x41 + (seed % 26));
}

/**
 * NodeDisk (the default disk of openNode) plus a count of fdatasync calls. A subclass, not a
 * wrapper, so it keeps every NodeDisk behaviour the log asks about (`blocking`, open options).
 */
export class CountingDisk extends NodeDisk {
  syncs = 0;

  override async open(...args: Parameters<NodeDisk['open']>): Promise<FileHandle> {
    const handle = await super.open(...args);
    const datasync = handle.datasync.bind(handle);
    handle.datasync = () => {
      this.syncs += 1;
      return datasync();
    };
    return handle;
  }
}

let collector: (() => void) | null = null;

/**
 * V8's full garbage collection. `global.gc` when node runs with --expose-gc; otherwise the flag
 * is set at run time and the function taken from a fresh context (which then has it), so
 * `npm run bench` needs no extra node flag.
 */
function collectGarbage(): void {
  if (collector === null) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collector = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    }
  }
  for (let round = 0; round < 3; round++) collector();
}

export interface MemorySnapshot {
  /** V8 heap in use (JS objects; the engine's state keeps only a few there). */
  heapUsed: number;
  /**
   * Backing stores of ArrayBuffers and Buffers, outside the heap: the engine's state (its
   * index and the slabs or adopted log segments holding keys and values) lives here.
   */
  arrayBuffers: number;
  rss: number;
}

/** Rounds of `memorySnapshot` at most. */
const snapshotRoundsMax = 20;

/**
 * Memory in use after a full garbage collection. The engine's state lives mostly in
 * ArrayBuffers, whose memory V8 gives back on a background thread after the collection that
 * found them dead; so this collects again, one event-loop turn apart, until the ArrayBuffer
 * figure stops falling (a snapshot taken at once would still count a closed node's state).
 */
export async function memorySnapshot(): Promise<MemorySnapshot> {
  let usage = process.memoryUsage();
  for (let round = 0; round < snapshotRoundsMax; round++) {
    collectGarbage();
    await new Promise<void>((resolve) => setImmediate(resolve));
    const next = process.memoryUsage();
    const settled = round > 0 && next.arrayBuffers >= usage.arrayBuffers;
    usage = next;
    if (settled) break;
  }
  return { heapUsed: usage.heapUsed, arrayBuffers: usage.arrayBuffers, rss: usage.rss };
}
