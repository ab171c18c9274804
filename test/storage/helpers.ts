import { RecordType } from '../../src/core/format/frame.js';
import type { Disk } from '../../src/ports/disk.js';
import { SimDisk } from '../../src/sim/disk.js';
import { Log, type LogRecordInput } from '../../src/storage/log.js';

export const nodeDir = '/node';
export const walDir = '/node/wal';

/** A deterministic payload that names its writer and sequence, so a mix-up is visible. */
export function payloadFor(tag: string, size = 40): Uint8Array {
  const text = new TextEncoder().encode(tag);
  const bytes = new Uint8Array(Math.max(size, text.length));
  bytes.set(text);
  for (let index = text.length; index < bytes.length; index++)
    bytes[index] = (index * 31 + text.length) & 0xff;
  return bytes;
}

export function intent(tag: string, size?: number, term = 1): LogRecordInput {
  return { type: RecordType.Intent, term, payload: payloadFor(tag, size) };
}

export async function openLog(
  disk: Disk,
  segmentSizeBytes = 4096,
  extra: { preallocate?: boolean } = {},
) {
  return Log.open(disk, { dir: nodeDir, segmentSizeBytes, ...extra });
}

/** Copies every file of one simulated disk's durable tree into a fresh simulated disk. */
export function cloneDisk(
  source: SimDisk,
  seed: number,
  mutate?: (path: string, bytes: Uint8Array) => Uint8Array,
) {
  const target = new SimDisk({ seed });
  const all = source.listAll();
  const files = all.filter((path) => !all.some((other) => other.startsWith(`${path}/`)));
  for (const path of files) {
    const bytes = source.readVisible(path);
    target.writeRaw(path, mutate === undefined ? bytes : mutate(path, bytes.slice()));
  }
  return target;
}

export async function readAll(log: Log) {
  if (log.durableLsn < log.firstLsn) return [];
  return log.read({ lsnFirst: log.firstLsn, lsnLast: log.durableLsn });
}

export function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index++) if (left[index] !== right[index]) return false;
  return true;
}
