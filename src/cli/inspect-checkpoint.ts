import { existsSync, readFileSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { CorruptionError, IoError, errnoCode } from '../core/errors.js';

/**
 * Reads a node's checkpoint (`<node dir>/checkpoint.sqlite`, DESIGN §5) for `wal-inspect
 * state`, read-only. The file is written by src/node/checkpoint-sqlite.ts (schema in
 * src/node/checkpoint-worker.ts, format version 1): `kv (key BLOB, value BLOB)`, `meta`
 * holding `format_version` and `applied_lsn`.
 *
 * The store runs SQLite in WAL mode, and a read-only SQLite connection to a WAL-mode database
 * creates `-wal` and `-shm` files next to it when they are missing, and leaves them behind.
 * wal-inspect changes no file, so:
 * - If `checkpoint.sqlite-wal` exists (the node is running, or stopped without a clean close),
 *   the file is opened with better-sqlite3 `readonly: true`, which reads the committed
 *   transactions in the WAL as well. SQLite may then create `-shm` if it is missing: the
 *   shared-memory index every reader of a WAL database uses.
 * - Otherwise every committed transaction is in the main file (a clean close checkpoints the
 *   WAL into it and deletes it), and the file's bytes are read into memory and opened from
 *   there (better-sqlite3's serialized-buffer form, read-only), with the header's two
 *   journal-mode bytes set to the rollback-journal value in that in-memory copy only. No file
 *   on disk is opened by SQLite at all.
 */
export const checkpointFileName = 'checkpoint.sqlite';

const formatVersion = 1;
/** SQLite file header: bytes 18 and 19 are the write and read versions, 2 for WAL mode. */
const headerBytes = 100;
const journalModeOffsets = [18, 19] as const;
const journalModeRollback = 1;
const journalModeWal = 2;

export interface CheckpointContents {
  appliedLsn: number;
  /** Every key and value, keys ascending in byte order. */
  entries: { key: Uint8Array; value: Uint8Array }[];
}

function corrupt(reason: string): CorruptionError {
  return new CorruptionError({ segment: checkpointFileName, offset: 0, lsn: null }, reason);
}

/** SQLite's own errors, typed the way the checkpoint store types them. */
function sqliteError(error: unknown): Error {
  const code = errnoCode(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  const wrongShape = code === 'SQLITE_ERROR' && /no such (table|column)/.test(message);
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || wrongShape) {
    return corrupt(`${code}: ${message}`);
  }
  if (code.startsWith('SQLITE_')) {
    return new IoError('sqlite', `${checkpointFileName}: ${code}: ${message}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(message);
}

async function openReadOnly(path: string): Promise<BetterSqlite3.Database> {
  const Database = (await import('better-sqlite3')).default;
  if (existsSync(`${path}-wal`)) return new Database(path, { readonly: true, fileMustExist: true });
  const bytes = readFileSync(path);
  if (bytes.length < headerBytes) throw corrupt(`file of ${bytes.length} bytes is too short`);
  for (const offset of journalModeOffsets) {
    if (bytes[offset] === journalModeWal) bytes[offset] = journalModeRollback;
  }
  return new Database(bytes, { readonly: true });
}

function readAppliedLsn(db: BetterSqlite3.Database): number {
  const read = db.prepare<[string], { value: unknown }>('SELECT value FROM meta WHERE name = ?');
  const version = read.get('format_version')?.value;
  if (version !== formatVersion) {
    throw corrupt(`format_version is ${String(version)}, expected ${formatVersion}`);
  }
  const applied = read.get('applied_lsn')?.value ?? 0;
  if (typeof applied !== 'number' || !Number.isSafeInteger(applied) || applied < 0) {
    throw corrupt(`applied_lsn is ${String(applied)}, not an LSN`);
  }
  return applied;
}

function readEntries(db: BetterSqlite3.Database): CheckpointContents['entries'] {
  const entries: CheckpointContents['entries'] = [];
  const rows = db.prepare('SELECT key, value FROM kv ORDER BY key').raw(true);
  for (const row of rows.iterate() as IterableIterator<unknown[]>) {
    const [key, value] = row;
    if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
      throw corrupt('a kv row whose key or value is not a blob');
    }
    entries.push({ key, value });
  }
  return entries;
}

/**
 * The checkpoint of the node directory `nodeDir`, or null if it has none. Throws CORRUPT for
 * a file that is not a checkpoint, IOERR for other SQLite failures.
 */
export async function readCheckpoint(nodeDir: string): Promise<CheckpointContents | null> {
  const path = `${nodeDir}/${checkpointFileName}`;
  if (!existsSync(path)) return null;
  let db: BetterSqlite3.Database | null = null;
  try {
    db = await openReadOnly(path);
    const appliedLsn = readAppliedLsn(db);
    return { appliedLsn, entries: readEntries(db) };
  } catch (error: unknown) {
    throw sqliteError(error);
  } finally {
    db?.close();
  }
}
