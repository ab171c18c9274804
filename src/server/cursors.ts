import type { ScanCursorTable } from './context.js';

/**
 * SCAN cursors: numbers standing for the key a scan resumes at. Clients treat a cursor as an
 * opaque integer (redis-cli parses it with strtoull), so the key itself cannot be the cursor.
 * The table is bounded: past `capacity` the oldest cursor is forgotten, and a forgotten
 * cursor answers `ERR invalid cursor` (the client starts again from 0). A cursor can be used
 * more than once (a retried SCAN call gets the same page).
 */
export class ScanCursors implements ScanCursorTable {
  readonly #capacity: number;
  readonly #entries = new Map<string, Buffer>();
  #next = 1;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error('capacity must be >= 1');
    this.#capacity = capacity;
  }

  save(next: Buffer): string {
    const cursor = String(this.#next++);
    this.#entries.set(cursor, next);
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    return cursor;
  }

  load(cursor: string): Buffer | null {
    return this.#entries.get(cursor) ?? null;
  }

  get size(): number {
    return this.#entries.size;
  }
}
