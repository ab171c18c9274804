import { diskError, NoSpaceError } from '../core/errors.js';
import { freeSpaceReserveBytes, preallocateChunkBytes } from '../core/limits.js';
import type { Disk, FileHandle } from '../ports/disk.js';

/** The name of the segment being prepared in the background (etcd's file_pipeline). */
export const preallocatedName = 'prealloc.tmp';

const zeroChunk = new Uint8Array(preallocateChunkBytes);

/**
 * Creates `<walDir>/prealloc.tmp` filled with real zeros (not a sparse hole: overwriting
 * allocated blocks keeps fdatasync from having to persist a size or extent change) and syncs
 * it. Checks free space with statvfs first, so a full disk is a clear NOSPACE before any write.
 */
export async function preallocateSegment(
  disk: Disk,
  walDir: string,
  segmentSizeBytes: number,
): Promise<FileHandle> {
  const free = await disk.freeBytes(walDir).catch((error: unknown) => {
    throw diskError('statvfs', error);
  });
  if (free < segmentSizeBytes + freeSpaceReserveBytes) {
    throw new NoSpaceError(
      `${free} bytes free, a new segment needs ${segmentSizeBytes} plus a reserve of ` +
        `${freeSpaceReserveBytes}`,
    );
  }
  const path = `${walDir}/${preallocatedName}`;
  let handle: FileHandle;
  try {
    if ((await disk.size(path)) !== null) await disk.remove(path);
    handle = await disk.open(path, 'create', { background: true });
  } catch (error: unknown) {
    throw diskError('create segment', error);
  }
  try {
    for (let offset = 0; offset < segmentSizeBytes; offset += zeroChunk.length) {
      const length = Math.min(zeroChunk.length, segmentSizeBytes - offset);
      await handle.write([zeroChunk.subarray(0, length)], offset);
    }
    await handle.datasync();
    return handle;
  } catch (error: unknown) {
    await handle.close().catch(() => undefined);
    throw diskError('preallocate segment', error);
  }
}

/** Overwrites [from, to) with zeros (not synced). */
export async function zeroRange(handle: FileHandle, from: number, to: number): Promise<void> {
  for (let offset = from; offset < to; offset += zeroChunk.length) {
    const length = Math.min(zeroChunk.length, to - offset);
    await handle.write([zeroChunk.subarray(0, length)], offset);
  }
}

/** The end of the non-zero bytes in [from, limit) of a file, or `from` if all zero. */
export async function findDirtyEnd(handle: FileHandle, from: number, limit: number) {
  const buffer = new Uint8Array(preallocateChunkBytes);
  let dirtyEnd = from;
  for (let offset = from; offset < limit; offset += buffer.length) {
    const length = Math.min(buffer.length, limit - offset);
    const count = await handle.read(buffer, 0, length, offset);
    for (let index = count - 1; index >= 0; index--) {
      if (buffer[index] !== 0) {
        dirtyEnd = offset + index + 1;
        break;
      }
    }
    if (count < length) break;
  }
  return Math.ceil(dirtyEnd / 8) * 8;
}
