/**
 * What the shard e2e test asks the nodes: a control connection per node life, INFO parsed into
 * fields, waits for a replica's eligibility and for the whole shard to converge, STATUS of
 * every request id, each node's keys and values (SCAN + MGET), and the `wal-inspect` runs on
 * the data directories of stopped nodes (state, diff, verify).
 *
 * Waits are bounded loops where every iteration is a round trip to a node or a wait for one of
 * its log lines; none sleeps.
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { connectOptions, parseStatus, type RequestStatus } from './shard-history.js';
import type { Shard } from './shard-nodes.js';

export type Info = Map<string, string>;

export function parseInfo(text: string): Info {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

export interface ReplicaRow {
  id: string;
  state: string;
  offset: number;
  eligible: boolean;
  lagLsn: number;
}

/** The primary's `slaveN:id=..,state=..,offset=..,eligible=..,lag_lsn=..` lines, by id. */
export function replicaRows(info: Info): Map<string, ReplicaRow> {
  const rows = new Map<string, ReplicaRow>();
  for (const [name, value] of info) {
    if (!/^slave\d+$/.test(name)) continue;
    const fields = new Map(value.split(',').map((pair) => pair.split('=', 2) as [string, string]));
    const id = fields.get('id') ?? '';
    rows.set(id, {
      id,
      state: fields.get('state') ?? '',
      offset: Number(fields.get('offset')),
      eligible: fields.get('eligible') === '1',
      lagLsn: Number(fields.get('lag_lsn')),
    });
  }
  return rows;
}

/** One connection per node life, made on first use. */
export class ControlClients {
  readonly #shard: Shard;
  readonly #clients = new Map<string, { life: number; redis: Redis }>();

  constructor(shard: Shard) {
    this.#shard = shard;
  }

  async get(id: string): Promise<Redis> {
    const life = this.#shard.life(id);
    const known = this.#clients.get(id);
    if (known !== undefined && known.life === life && known.redis.status === 'ready') {
      return known.redis;
    }
    known?.redis.disconnect();
    const redis = new Redis(connectOptions(this.#shard.clientPort(id)));
    redis.on('error', () => undefined);
    await redis.connect();
    this.#clients.set(id, { life, redis });
    return redis;
  }

  async info(id: string, sections: string[] = ['replication', 'persistence']): Promise<Info> {
    const redis = await this.get(id);
    return parseInfo(String(await redis.call('INFO', ...sections)));
  }

  close(): void {
    for (const { redis } of this.#clients.values()) redis.disconnect();
    this.#clients.clear();
  }
}

/**
 * Waits until the primary lists `id` as connected and eligible: INFO, and between two looks
 * the primary's next eligibility log line (at most a second).
 */
export async function untilEligible(
  shard: Shard,
  clients: ControlClients,
  id: string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let row: ReplicaRow | undefined;
  while (performance.now() < deadline) {
    row = replicaRows(await clients.info(shard.primary, ['replication'])).get(id);
    if (row?.eligible === true && row.state === 'online') return;
    const events = ['eligibility-granted', 'peer.up'];
    await shard.process(shard.primary).nextEvent(events, 1_000);
  }
  const primary = shard.process(shard.primary);
  const fullSync = primary.lines.filter(
    (line) => line.event === 'full-sync-needed' && line.peer === id,
  );
  const why = fullSync.length > 0 ? `; the primary logged full-sync-needed for ${id}` : '';
  throw new Error(`${id} not eligible within ${timeoutMs} ms (last: ${JSON.stringify(row)})${why}`);
}

export interface Converged {
  lastLsn: number;
  commitLsn: number;
  appliedLsn: number;
}

function lsnsOf(info: Info): Converged & { pending: number } {
  return {
    lastLsn: Number(info.get('last_lsn')),
    commitLsn: Number(info.get('commit_lsn')),
    appliedLsn: Number(info.get('applied_lsn')),
    pending: Number(info.get('pending_intents')),
  };
}

/**
 * Waits (bounded; each look is a round trip to every node) until the primary has nothing
 * pending, every replica is eligible, and every replica's last, commit and applied LSN equal
 * the primary's.
 */
export async function untilConverged(
  shard: Shard,
  clients: ControlClients,
  timeoutMs = 60_000,
): Promise<Converged> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    const primaryInfo = await clients.info(shard.primary);
    const primary = lsnsOf(primaryInfo);
    const rows = replicaRows(primaryInfo);
    const views = [`${shard.primary} ${JSON.stringify(primary)}`];
    let same = primary.pending === 0;
    for (const id of shard.replicas) {
      const replica = lsnsOf(await clients.info(id));
      views.push(`${id} ${JSON.stringify(replica)} ${JSON.stringify(rows.get(id))}`);
      same &&= rows.get(id)?.eligible === true;
      same &&= replica.lastLsn === primary.lastLsn && replica.commitLsn === primary.commitLsn;
      same &&= replica.appliedLsn === primary.appliedLsn;
    }
    if (same) return primary;
    last = views.join('; ');
  }
  throw new Error(`the shard did not converge within ${timeoutMs} ms: ${last}`);
}

/** STATUS of every request id on one node, pipelined. */
export async function statusesOf(
  redis: Redis,
  rids: readonly string[],
): Promise<Map<string, RequestStatus>> {
  const statuses = new Map<string, RequestStatus>();
  for (let start = 0; start < rids.length; start += 500) {
    const batch = rids.slice(start, start + 500);
    const pipeline = redis.pipeline();
    for (const rid of batch) pipeline.call('STATUS', rid);
    const results = (await pipeline.exec()) ?? [];
    batch.forEach((rid, index) => {
      const [error, reply] = results[index] ?? [new Error('no reply'), null];
      if (error !== null) throw new Error(`STATUS ${rid}: ${String(error)}`);
      statuses.set(rid, parseStatus(reply));
    });
  }
  return statuses;
}

/** Every key and value a node serves (SCAN, then MGET), as a map. */
export async function stateOf(redis: Redis): Promise<Map<string, string>> {
  const keys: string[] = [];
  let cursor = '0';
  for (let page = 0; page < 100_000; page++) {
    const [next, found] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
    if (cursor === '0') break;
  }
  const state = new Map<string, string>();
  for (let start = 0; start < keys.length; start += 500) {
    const batch = keys.slice(start, start + 500);
    const values = await redis.mget(...batch);
    batch.forEach((key, index) => {
      const value = values[index];
      if (value !== null && value !== undefined) state.set(key, value);
    });
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// wal-inspect on stopped nodes.

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the transpiled wal-inspect with plain node (bounded). */
export function walInspect(script: string, args: readonly string[]): Promise<Run> {
  return new Promise<Run>((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `wal-inspect state <dir>`: the committed state in the data directory. */
export async function inspectState(
  script: string,
  dir: string,
): Promise<{ state: Map<string, string>; run: Run }> {
  const run = await walInspect(script, ['state', '--json', dir]);
  const state = new Map<string, string>();
  for (const line of run.stdout.split('\n')) {
    if (line.length === 0) continue;
    const entry = JSON.parse(line) as { key: unknown; value: unknown };
    if (typeof entry.key !== 'string' || typeof entry.value !== 'string') {
      throw new Error(`wal-inspect state: a key or value that is not text: ${line}`);
    }
    state.set(entry.key, entry.value);
  }
  return { state, run };
}
