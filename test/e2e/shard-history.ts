/**
 * The client side of the shard e2e test: seeded writers that SET 100-byte values with request
 * ids through ioredis to the shard's primary, the history of every write (key, value, request
 * id, primary life, invocation and reply times, reply), and the pure checks of what the nodes
 * hold against that history.
 *
 * A reply is `ok` (+OK), `noreplicas` (-NOREPLICAS: definitive, never visible) or
 * `indeterminate` (-UNKNOWN, -IOERR, -CLOSED, or the connection failed: outcome unknown until
 * STATUS resolves it). Every value is unique (it starts with its request id), so a value read
 * from a node names the write that produced it.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Random } from '../../src/sim/random.js';

export type Outcome = 'ok' | 'noreplicas' | 'indeterminate';

export interface WriteRecord {
  rid: string;
  writer: number;
  key: string;
  value: string;
  /** The primary's life (start count) the write was sent to. */
  life: number;
  invokedMs: number;
  repliedMs: number | null;
  outcome: Outcome | null;
  /** The error reply or connection error, if any. */
  detail: string;
}

interface ReplyWaiter {
  target: number;
  resolve: () => void;
}

export class ClientHistory {
  readonly writes: WriteRecord[] = [];
  readonly counts: Record<Outcome, number> = { ok: 0, noreplicas: 0, indeterminate: 0 };
  /** Replies the contract does not allow for a SET (ERR ..., READONLY ...). */
  readonly unexpected: string[] = [];
  replies = 0;
  #waiters: ReplyWaiter[] = [];

  invoke(write: Omit<WriteRecord, 'invokedMs' | 'repliedMs' | 'outcome' | 'detail'>) {
    const record: WriteRecord = {
      ...write,
      invokedMs: performance.now(),
      repliedMs: null,
      outcome: null,
      detail: '',
    };
    this.writes.push(record);
    return record;
  }

  reply(record: WriteRecord, outcome: Outcome, detail: string): void {
    record.repliedMs = performance.now();
    record.outcome = outcome;
    record.detail = detail;
    this.counts[outcome] += 1;
    this.replies += 1;
    const ready = this.#waiters.filter((waiter) => this.replies >= waiter.target);
    this.#waiters = this.#waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves once `count` more replies arrived; rejects after `timeoutMs` without them. */
  moreReplies(count: number, timeoutMs: number): Promise<void> {
    const target = this.replies + count;
    if (count <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== entry);
        const counts = JSON.stringify(this.counts);
        reject(new Error(`no ${count} write replies in ${timeoutMs} ms (so far ${counts})`));
      }, timeoutMs);
      const entry: ReplyWaiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(entry);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Writers.

/** How the writers find the primary. */
export interface PrimaryAccess {
  /** Waits until the primary is up; its client port and life. */
  primary(): Promise<{ port: number; life: number }>;
  /** After NOREPLICAS: wait for a sign the shard changed (or a short bound). */
  backoff(): Promise<void>;
}

export interface WorkloadOptions {
  seed: number;
  writers: number;
  keys: number;
  valueBytes: number;
  /** Each writer stops after this many writes even if not told to stop. */
  writesPerWriterMax: number;
}

export function keyName(index: number): string {
  return `key:${String(index).padStart(3, '0')}`;
}

function valueOf(rid: string, random: Random, bytes: number): string {
  let text = `${rid}|`;
  while (text.length < bytes) text += random.uint32().toString(16).padStart(8, '0');
  return text.slice(0, bytes);
}

export function connectOptions(port: number) {
  return {
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    // No retries and no resending: a write is sent once, on one connection, and its outcome
    // is what that connection said (or indeterminate if it failed).
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    autoResendUnfulfilledCommands: false,
  };
}

/** A connection to the primary's current life (bounded attempts across restarts). */
async function connectPrimary(access: PrimaryAccess): Promise<{ redis: Redis; life: number }> {
  let last: unknown = null;
  for (let attempt = 0; attempt < 100; attempt++) {
    const { port, life } = await access.primary();
    const redis = new Redis(connectOptions(port));
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return { redis, life };
    } catch (error: unknown) {
      last = error;
      redis.disconnect();
      // It went down between our look and the connect: the next look waits for its restart.
      await access.backoff();
    }
  }
  throw new Error(`cannot connect to the primary: ${String(last)}`);
}

function classify(error: unknown): { outcome: Outcome; detail: string; connection: boolean } {
  const message = error instanceof Error ? error.message : String(error);
  const replyError = error instanceof Error && error.name === 'ReplyError';
  if (!replyError) return { outcome: 'indeterminate', detail: message, connection: true };
  const prefix = message.split(' ', 1)[0] ?? '';
  if (prefix === 'NOREPLICAS') return { outcome: 'noreplicas', detail: message, connection: false };
  if (prefix === 'UNKNOWN' || prefix === 'IOERR' || prefix === 'CLOSED') {
    return { outcome: 'indeterminate', detail: message, connection: false };
  }
  return { outcome: 'indeterminate', detail: `unexpected: ${message}`, connection: false };
}

async function writerLoop(
  index: number,
  options: WorkloadOptions,
  access: PrimaryAccess,
  history: ClientHistory,
  stopped: () => boolean,
): Promise<void> {
  const random = new Random(options.seed * 64 + index);
  let client: { redis: Redis; life: number } | null = null;
  try {
    for (let count = 0; count < options.writesPerWriterMax && !stopped(); count++) {
      client ??= await connectPrimary(access);
      const key = keyName(random.int(options.keys));
      const rid = `w${index}.${count}`;
      const value = valueOf(rid, random, options.valueBytes);
      const record = history.invoke({ rid, writer: index, key, value, life: client.life });
      const result = await client.redis.call('SET', key, value, 'RID', rid).then(
        (reply) => ({ reply, error: null }),
        (error: unknown) => ({ reply: null, error }),
      );
      if (result.error === null) {
        const ok = result.reply === 'OK';
        if (!ok) history.unexpected.push(`${rid}: reply ${JSON.stringify(result.reply)}`);
        history.reply(record, ok ? 'ok' : 'indeterminate', ok ? '' : String(result.reply));
        continue;
      }
      const { outcome, detail, connection } = classify(result.error);
      if (detail.startsWith('unexpected')) history.unexpected.push(`${rid}: ${detail}`);
      history.reply(record, outcome, detail);
      if (connection) {
        client.redis.disconnect();
        client = null;
      }
      if (outcome !== 'ok') await access.backoff();
    }
  } finally {
    client?.redis.disconnect();
  }
}

/** Concurrent seeded writers; `stop` lets each finish its current write and end. */
export class Workload {
  readonly done: Promise<void>;
  #stopped = false;

  constructor(options: WorkloadOptions, access: PrimaryAccess, history: ClientHistory) {
    const writers = Array.from({ length: options.writers }, (_, index) =>
      writerLoop(index, options, access, history, () => this.#stopped),
    );
    this.done = Promise.all(writers).then(() => undefined);
  }

  stop(): void {
    this.#stopped = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks (pure).

export type RequestStatus =
  { status: 'committed' | 'aborted' | 'pending'; lsn: number } | { status: 'unknown' };

/** `STATUS` as ioredis returns it in RESP2: ['status', 'committed', 'lsn', 12]. */
export function parseStatus(reply: unknown): RequestStatus {
  if (!Array.isArray(reply)) throw new Error(`STATUS reply ${JSON.stringify(reply)}`);
  const fields = new Map<string, unknown>();
  for (let index = 0; index + 1 < reply.length; index += 2) {
    fields.set(String(reply[index]), reply[index + 1]);
  }
  const status = String(fields.get('status'));
  if (status === 'unknown') return { status };
  if (status !== 'committed' && status !== 'aborted' && status !== 'pending') {
    throw new Error(`STATUS reply ${JSON.stringify(reply)}`);
  }
  return { status, lsn: Number(fields.get('lsn')) };
}

export interface Committed {
  write: WriteRecord;
  lsn: number;
}

export interface StatusVerdict {
  problems: string[];
  /** Committed writes in LSN order. */
  committed: Committed[];
  resolved: { committed: number; aborted: number; unknown: number };
}

function describe(write: WriteRecord): string {
  const reply = write.outcome === 'ok' ? 'OK' : `${write.outcome} (${write.detail.slice(0, 80)})`;
  return `${write.rid} SET ${write.key} [primary life ${write.life}] replied ${reply}`;
}

/**
 * The primary's STATUS of every write against its reply: OK writes committed, NOREPLICAS writes
 * never committed, indeterminate ones resolved (committed, aborted, or unknown: never logged),
 * nothing still pending, no two writes at one LSN.
 */
export function checkStatuses(
  writes: readonly WriteRecord[],
  statuses: ReadonlyMap<string, RequestStatus>,
): StatusVerdict {
  const problems: string[] = [];
  const committed: Committed[] = [];
  const resolved = { committed: 0, aborted: 0, unknown: 0 };
  for (const write of writes) {
    const status = statuses.get(write.rid);
    if (status === undefined || write.outcome === null) {
      problems.push(`${describe(write)}: no status or no reply`);
      continue;
    }
    if (status.status === 'pending') {
      problems.push(`${describe(write)}: still pending at lsn ${status.lsn} after quiescing`);
      continue;
    }
    if (status.status === 'committed') committed.push({ write, lsn: status.lsn });
    if (write.outcome === 'ok' && status.status !== 'committed') {
      problems.push(`${describe(write)}: LOST, the primary says ${JSON.stringify(status)}`);
    }
    if (write.outcome === 'noreplicas' && status.status === 'committed') {
      problems.push(`${describe(write)}: NOREPLICAS but committed at lsn ${status.lsn}`);
    }
    if (write.outcome === 'indeterminate') resolved[status.status] += 1;
  }
  committed.sort((left, right) => left.lsn - right.lsn);
  for (let index = 1; index < committed.length; index++) {
    if (committed[index]!.lsn === committed[index - 1]!.lsn) {
      problems.push(`two writes committed at lsn ${committed[index]!.lsn}`);
    }
  }
  problems.push(...checkRealTimeOrder(committed));
  return { problems, committed, resolved };
}

/**
 * Log order respects real time: a write invoked after another write's OK reply commits at a
 * higher LSN.
 */
export function checkRealTimeOrder(committed: readonly Committed[]): string[] {
  const problems: string[] = [];
  let latest: Committed | null = null;
  for (const entry of committed) {
    const replied = entry.write.repliedMs;
    if (entry.write.outcome === 'ok' && latest !== null && replied !== null) {
      if (latest.write.invokedMs > replied) {
        problems.push(
          `${describe(entry.write)} at lsn ${entry.lsn}, but ${latest.write.rid} at lower ` +
            `lsn ${latest.lsn} was invoked after that OK`,
        );
      }
    }
    if (latest === null || entry.write.invokedMs > latest.write.invokedMs) latest = entry;
  }
  return problems;
}

/** The committed writes applied in LSN order. */
export function expectedState(committed: readonly Committed[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const { write } of committed) state.set(write.key, write.value);
  return state;
}

/**
 * What the client history alone allows as a key's final value (no STATUS): absent only if no
 * write to it was OK; else the value of a write that was not NOREPLICAS and that no OK write to
 * the key definitely followed. A write ends at its OK reply, or, if its outcome was unknown,
 * when the primary life it was sent to ended (only that process could log it; a later life
 * logs later writes at higher LSNs), or never if that life did not end.
 */
export class FinalValueModel {
  readonly #byValue = new Map<string, WriteRecord>();
  readonly #lastOkInvoked = new Map<string, number>();
  readonly #keys = new Set<string>();
  readonly #lifeEndMs: (life: number) => number;

  constructor(writes: readonly WriteRecord[], lifeEndMs: (life: number) => number) {
    this.#lifeEndMs = lifeEndMs;
    for (const write of writes) {
      this.#byValue.set(write.value, write);
      this.#keys.add(write.key);
      if (write.outcome === 'ok') {
        const last = this.#lastOkInvoked.get(write.key) ?? Number.NEGATIVE_INFINITY;
        this.#lastOkInvoked.set(write.key, Math.max(last, write.invokedMs));
      }
    }
  }

  #end(write: WriteRecord): number {
    if (write.outcome === 'ok') return write.repliedMs ?? Number.POSITIVE_INFINITY;
    return this.#lifeEndMs(write.life);
  }

  /** Null if `value` (undefined: absent) is allowed for `key`, else why not. */
  problem(key: string, value: string | undefined): string | null {
    const lastOk = this.#lastOkInvoked.get(key);
    if (value === undefined) {
      return lastOk === undefined ? null : `absent, but OK writes to it exist`;
    }
    const write = this.#byValue.get(value);
    if (write === undefined) return `holds a value no client wrote: ${value.slice(0, 40)}`;
    if (write.key !== key) return `holds the value of ${write.rid}, a write to ${write.key}`;
    if (write.outcome === 'noreplicas') return `holds the value of NOREPLICAS ${describe(write)}`;
    if (write.outcome === null) return `holds the value of ${write.rid}, which got no reply`;
    if (lastOk !== undefined && lastOk > this.#end(write)) {
      return `holds ${describe(write)}, but a later OK write to it was invoked after that ended`;
    }
    return null;
  }

  keys(): string[] {
    return [...this.#keys];
  }

  /** True if some write of the history went to `key` (the model says nothing of others). */
  covers(key: string): boolean {
    return this.#keys.has(key);
  }
}

/** A node's key-value state against the expected state and the client-only model. */
export function checkState(
  node: string,
  state: ReadonlyMap<string, string>,
  expected: ReadonlyMap<string, string>,
  model: FinalValueModel | null,
): string[] {
  const problems: string[] = [];
  const keys = new Set([...expected.keys(), ...state.keys(), ...(model?.keys() ?? [])]);
  for (const key of [...keys].sort()) {
    const have = state.get(key);
    const want = expected.get(key);
    const modelProblem = model?.covers(key) === true ? model.problem(key, have) : null;
    if (modelProblem !== null) problems.push(`${node} ${key}: ${modelProblem}`);
    if (have !== want) {
      const show = (value: string | undefined) =>
        value === undefined ? 'absent' : value.slice(0, 24);
      problems.push(`${node} ${key}: ${show(have)}, the committed writes give ${show(want)}`);
    }
  }
  return problems;
}

/** A replica's STATUS answers: committed exactly where the primary's are, at the same LSN. */
export function checkReplicaStatuses(
  node: string,
  writes: readonly WriteRecord[],
  primary: ReadonlyMap<string, RequestStatus>,
  replica: ReadonlyMap<string, RequestStatus>,
): string[] {
  const problems: string[] = [];
  for (const write of writes) {
    const want = primary.get(write.rid);
    const have = replica.get(write.rid);
    const wantLsn = want?.status === 'committed' ? want.lsn : null;
    const haveLsn = have?.status === 'committed' ? have.lsn : null;
    if (wantLsn !== haveLsn) {
      problems.push(
        `${node}: ${describe(write)}: the replica says ${JSON.stringify(have)}, ` +
          `the primary ${JSON.stringify(want)}`,
      );
    }
  }
  return problems;
}

/** One record of `wal-inspect dump --json` (the fields these checks read). */
export interface DumpedRecord {
  lsn: number;
  type: string;
  payload: {
    requestId?: string | null;
    commitLsn?: number;
    lsnFirst?: number;
    lsnLast?: number;
  };
}

/**
 * STATUS against the primary's own log (after a clean stop, so its last COMMIT is written):
 * each request id is in at most one INTENT; an intent is committed when a COMMIT's point
 * covers it and no ABORT does, aborted when an ABORT covers it; STATUS must say the same at
 * the same LSN; a write STATUS calls unknown (never logged) must have no intent; a write it
 * calls committed or aborted must have its intent in the log unless a checkpoint removed that
 * part of the log.
 */
export function checkLog(
  records: readonly DumpedRecord[],
  writes: readonly WriteRecord[],
  statuses: ReadonlyMap<string, RequestStatus>,
): string[] {
  const problems: string[] = [];
  const intents = new Map<string, number>();
  const aborts: [number, number][] = [];
  let commitLsn = 0;
  for (const record of records) {
    const rid = record.payload.requestId;
    if (record.type === 'INTENT' && typeof rid === 'string') {
      if (intents.has(rid))
        problems.push(`${rid} logged twice: lsn ${intents.get(rid)}, ${record.lsn}`);
      intents.set(rid, record.lsn);
    }
    if (record.type === 'COMMIT') commitLsn = Math.max(commitLsn, record.payload.commitLsn ?? 0);
    if (record.type === 'ABORT')
      aborts.push([record.payload.lsnFirst ?? 0, record.payload.lsnLast ?? 0]);
  }
  const firstLsn = records[0]?.lsn ?? 1;
  for (const write of writes) {
    const status = statuses.get(write.rid);
    const lsn = intents.get(write.rid);
    if (status === undefined) continue;
    if (lsn === undefined) {
      const removed = status.status !== 'unknown' && status.lsn < firstLsn;
      if (status.status !== 'unknown' && !removed) {
        problems.push(
          `${describe(write)}: STATUS ${JSON.stringify(status)}, but no intent in the log`,
        );
      }
      continue;
    }
    const aborted = aborts.some(([first, last]) => first <= lsn && lsn <= last);
    const logged = aborted ? 'aborted' : lsn <= commitLsn ? 'committed' : 'in doubt';
    if (status.status === 'unknown' || status.status !== logged || status.lsn !== lsn) {
      problems.push(
        `${describe(write)}: STATUS ${JSON.stringify(status)}, the log: ${logged} at lsn ${lsn}`,
      );
    }
  }
  return problems;
}
