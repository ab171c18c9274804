import { crc32 } from '../core/checksum.js';
import { CorruptionError, diskError } from '../core/errors.js';
import type { Disk } from '../ports/disk.js';

/**
 * A small file that makes a multi-file operation's decision durable before the operation
 * touches anything (a suffix truncation, a log reset). Layout: u32 crc of bytes [4, size) |
 * u32 magic | the operation's fields from byte 8. Written to a temporary name, synced, renamed,
 * and the directory synced: a marker under its durable name always has durable, valid
 * contents, so a bad one is corruption, not a torn write.
 */
export interface MarkerKind {
  name: string;
  magic: number;
  bytes: number;
}

export async function writeMarker(
  disk: Disk,
  walDir: string,
  kind: MarkerKind,
  fill: (view: DataView) => void,
): Promise<void> {
  await prepareMarker(disk, walDir, kind, fill);
  await installMarker(disk, walDir, kind);
}

/**
 * The first half of `writeMarker`: the marker's bytes under `<name>.tmp`, durable. If it fails,
 * the marker under its durable name (or its absence) is untouched, and `<name>.tmp` may be
 * left behind (open 'create' refuses to reuse it: remove it first).
 */
export async function prepareMarker(
  disk: Disk,
  walDir: string,
  kind: MarkerKind,
  fill: (view: DataView) => void,
): Promise<void> {
  const bytes = new Uint8Array(kind.bytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, kind.magic, true);
  fill(view);
  view.setUint32(0, crc32(bytes.subarray(4)), true);
  try {
    const handle = await disk.open(`${walDir}/${kind.name}.tmp`, 'create');
    try {
      await handle.write([bytes], 0);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  } catch (error: unknown) {
    throw diskError(kind.name, error);
  }
}

/**
 * The second half of `writeMarker`: renames the prepared `<name>.tmp` over `<name>` and syncs
 * the directory. If it fails, either name may turn up after a crash.
 */
export async function installMarker(disk: Disk, walDir: string, kind: MarkerKind): Promise<void> {
  try {
    await disk.rename(`${walDir}/${kind.name}.tmp`, `${walDir}/${kind.name}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError(kind.name, error);
  }
}

/**
 * The marker's fields, checked by `valid` as well as by its size, magic and crc (CORRUPT
 * otherwise), or null when `optional` and there is no marker.
 */
export async function readMarker(
  disk: Disk,
  walDir: string,
  kind: MarkerKind,
  options: { optional: boolean; valid: (view: DataView) => boolean },
): Promise<DataView | null> {
  const path = `${walDir}/${kind.name}`;
  const bytes = new Uint8Array(kind.bytes);
  let count: number;
  try {
    if (options.optional && (await disk.size(path)) === null) return null;
    const handle = await disk.open(path, 'read');
    try {
      count = await handle.read(bytes, 0, kind.bytes, 0);
    } finally {
      await handle.close();
    }
  } catch (error: unknown) {
    throw diskError(`read ${kind.name}`, error);
  }
  const view = new DataView(bytes.buffer);
  const valid =
    count === kind.bytes &&
    view.getUint32(4, true) === kind.magic &&
    crc32(bytes.subarray(4)) === view.getUint32(0, true) &&
    options.valid(view);
  if (!valid) throw new CorruptionError({ segment: kind.name, offset: 0, lsn: null }, 'bad marker');
  return view;
}

export async function removeMarker(disk: Disk, walDir: string, kind: MarkerKind): Promise<void> {
  try {
    await disk.remove(`${walDir}/${kind.name}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError(`remove ${kind.name}`, error);
  }
}
