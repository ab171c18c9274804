/**
 * The durability policy (DESIGN §4) as pure arithmetic over acknowledged LSNs.
 *
 * The commit point is the highest LSN durable on the primary AND on a majority of the shard AND
 * (acks=all) on every eligible replica, with at least `minReplicas` replicas holding it. The
 * primary further advances it only to records of its own term (Raft's Figure 8 rule): that
 * part lives in the primary, which knows where its term starts.
 */
export type AcksMode = 'quorum' | 'all';

export interface DurabilityPolicy {
  acks: AcksMode;
  /** At least this many replicas must hold a write before it commits. */
  minReplicas: number;
  /** A write not committed by then is aborted (NOREPLICAS once the ABORT is safe). */
  commitTimeoutMs: number;
  /** A replica without an ack for this long loses its eligibility. */
  replicaTimeoutMs: number;
}

export const durabilityPolicyDefault: Readonly<DurabilityPolicy> = Object.freeze({
  acks: 'quorum',
  minReplicas: 0,
  commitTimeoutMs: 5_000,
  replicaTimeoutMs: 10_000,
});

export interface ReplicaAck {
  id: string;
  /** Durable on the replica and known to match the primary's log. */
  ackLsn: number;
  eligible: boolean;
}

export interface QuorumInput {
  /** Members of the shard that vote, the primary included. */
  voters: number;
  primaryDurableLsn: number;
  replicas: readonly ReplicaAck[];
}

/** Nodes needed for a majority of `voters`. */
export function majorityOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The `rank`-th highest value (1-based), or 0 when there are fewer values. */
function rankedLsn(values: number[], rank: number): number {
  if (rank <= 0) return Number.MAX_SAFE_INTEGER;
  if (values.length < rank) return 0;
  values.sort((a, b) => b - a);
  return values[rank - 1] ?? 0;
}

/** Highest LSN durable on the primary and on a majority of voters that includes it. */
export function majorityLsn(input: QuorumInput): number {
  const others = input.replicas.map((replica) => Math.min(replica.ackLsn, input.primaryDurableLsn));
  // The primary is one of the majority: the rest must come from replicas.
  const needed = majorityOf(input.voters) - 1;
  return Math.min(input.primaryDurableLsn, rankedLsn(others, needed));
}

/** Highest LSN that satisfies `policy` (before the own-term rule). */
export function policyLsn(input: QuorumInput, policy: DurabilityPolicy): number {
  let lsn = majorityLsn(input);
  const acks = input.replicas.map((replica) => replica.ackLsn);
  lsn = Math.min(lsn, rankedLsn(acks, policy.minReplicas));
  if (policy.acks === 'all') {
    for (const replica of input.replicas) {
      if (replica.eligible) lsn = Math.min(lsn, replica.ackLsn);
    }
  }
  return lsn;
}

/**
 * Why a write cannot possibly meet the policy now (answer NOREPLICAS before logging), or null.
 * Only connected replicas can ever ack.
 */
export function policyUnmeetable(
  voters: number,
  connectedReplicas: number,
  policy: DurabilityPolicy,
): string | null {
  const needed = majorityOf(voters) - 1;
  if (connectedReplicas < needed) {
    return `${connectedReplicas} of ${voters - 1} replicas connected, a majority needs ${needed}`;
  }
  if (connectedReplicas < policy.minReplicas) {
    return `${connectedReplicas} replicas connected, minReplicas is ${policy.minReplicas}`;
  }
  return null;
}

/** Checks a policy's fields; returns the first problem (naming the field) or null. */
export function policyProblem(policy: DurabilityPolicy): string | null {
  if (policy.acks !== 'quorum' && policy.acks !== 'all') return "acks must be 'quorum' or 'all'";
  if (!Number.isSafeInteger(policy.minReplicas) || policy.minReplicas < 0) {
    return 'minReplicas must be a non-negative integer';
  }
  for (const field of ['commitTimeoutMs', 'replicaTimeoutMs'] as const) {
    const value = policy[field];
    if (!Number.isSafeInteger(value) || value < 1) return `${field} must be a positive integer`;
  }
  return null;
}
