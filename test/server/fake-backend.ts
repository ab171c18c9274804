/**
 * An in-memory ServerBackend for tests of what a real single node cannot show: every engine
 * error code (a put of a key named after the code fails with it), slow writes (a put of
 * `slow:*` waits until released), and the replication hooks a replicated node will provide.
 */
import { ClosedError, IoError, NoSpaceError, SyncwalError } from '../../src/core/errors.js';
import { NoReplicasError, UnknownOutcomeError } from '../../src/engine/errors.js';
import type {
  BackendInfo,
  BackendKey,
  BackendOperation,
  BackendValue,
  DurabilityPolicy,
  FailoverRequest,
  ReplicationState,
  ServerBackend,
} from '../../src/server/backend.js';

const failures: Record<string, () => Error> = {
  noreplicas: () => new NoReplicasError('the policy needs 2 eligible replicas, 1 connected'),
  unknown: () => new UnknownOutcomeError('commit timed out; STATUS <request-id> resolves it'),
  notprimary: () => new SyncwalError('NOTPRIMARY', 'n2 is the primary'),
  ioerr: () => new IoError('fdatasync', 'EIO'),
  nospace: () => new NoSpaceError('no space left on device'),
  closed: () => new ClosedError('node is closed'),
  corrupt: () => new SyncwalError('CORRUPT', 'bad frame'),
  invalid: () => new SyncwalError('INVALID', 'value too large'),
  bug: () => new Error('boom'),
};

function name(key: BackendKey): string {
  return typeof key === 'string' ? key : Buffer.from(key).toString();
}

export class FakeBackend implements ServerBackend {
  readonly data = new Map<string, Buffer>();
  readonly released: (() => void)[] = [];
  lsn = 0;
  fakeReplication: ReplicationState | null = null;
  policy: DurabilityPolicy = {
    acks: 'quorum',
    minReplicas: 1,
    commitTimeoutMs: 1000,
    replicaTimeoutMs: 500,
  };
  failovers: FailoverRequest[] = [];

  async #write(key: BackendKey): Promise<number> {
    const failure = failures[name(key)];
    if (failure !== undefined) throw failure();
    if (name(key).startsWith('slow:')) {
      await new Promise<void>((resolve) => this.released.push(resolve));
    }
    return ++this.lsn;
  }

  async put(key: BackendKey, value: BackendValue) {
    const lsn = await this.#write(key);
    this.data.set(name(key), Buffer.from(value));
    return { lsn, duplicate: false };
  }

  async delete(key: BackendKey) {
    const lsn = await this.#write(key);
    return { lsn, duplicate: false, deleted: this.data.delete(name(key)) };
  }

  async batch(operations: readonly BackendOperation[]) {
    for (const operation of operations) await this.#write(operation.key);
    for (const operation of operations) {
      if (operation.op === 'put') this.data.set(name(operation.key), Buffer.from(operation.value));
      else this.data.delete(name(operation.key));
    }
    return { lsn: this.lsn, duplicate: false };
  }

  async incrBy(key: BackendKey, delta: bigint) {
    const lsn = await this.#write(key);
    const value = BigInt(this.data.get(name(key))?.toString() ?? '0') + delta;
    this.data.set(name(key), Buffer.from(String(value)));
    return { lsn, duplicate: false, value };
  }

  async compareAndSet(key: BackendKey, expected: BackendValue | null, next: BackendValue | null) {
    const current = this.data.get(name(key)) ?? null;
    const matches =
      expected === null ? current === null : current?.equals(Buffer.from(expected)) === true;
    if (!matches) return { lsn: this.lsn, duplicate: false, ok: false };
    if (next === null) return { ...(await this.delete(key)), ok: true };
    return { ...(await this.put(key, next)), ok: true };
  }

  async get(key: BackendKey) {
    const failure = failures[name(key)];
    if (failure !== undefined) throw failure();
    return this.data.get(name(key)) ?? null;
  }

  async scan() {
    return { entries: [], next: null };
  }

  status() {
    return { status: 'unknown' as const };
  }

  async checkpoint() {
    return { lsn: this.lsn };
  }

  info(): BackendInfo {
    return {
      nodeId: 'n1',
      term: 3,
      firstLsn: 1,
      lastLsn: this.lsn,
      commitLsn: this.lsn,
      appliedLsn: this.lsn,
      keys: this.data.size,
      pending: 0,
      fenced: null,
      checkpointLsn: 0,
    };
  }

  async close() {}

  replicationState(): ReplicationState {
    return (
      this.fakeReplication ?? {
        role: 'primary',
        term: 3,
        primaryId: 'n1',
        primaryAddress: '127.0.0.1:7001',
        linkUp: true,
        eligible: true,
        commitLsn: this.lsn,
        lastLsn: this.lsn,
        appliedLsn: this.lsn,
        replicas: [],
      }
    );
  }

  durability(): DurabilityPolicy {
    return this.policy;
  }

  async setDurability(change: Partial<DurabilityPolicy>): Promise<DurabilityPolicy> {
    if (change.minReplicas !== undefined && change.minReplicas > 2) {
      throw new SyncwalError('INVALID', 'option minReplicas: the shard has 2 replicas');
    }
    this.policy = { ...this.policy, ...change };
    return this.policy;
  }

  async failover(request: FailoverRequest): Promise<void> {
    this.failovers.push(request);
  }

  persistenceStats() {
    return { log_segments: 2, 'Bad Name': 1, fsync_latency_p99_usec: 1200 };
  }
}
