/**
 * How both simulation harnesses run a workload command against a node (the single-node engine
 * harness and the cluster harness share the command shapes of cluster-model.ts).
 */
import type { BatchItem, Command } from './cluster-model.js';

/** What a harness needs of a node to write to it. */
export interface WritableNode {
  put(
    key: string,
    value: string,
    options: { requestId: string },
  ): Promise<{ lsn: number; duplicate: boolean }>;
  delete(
    key: string,
    options: { requestId: string },
  ): Promise<{ lsn: number; duplicate: boolean; deleted: boolean }>;
  batch(
    operations: BatchItem[],
    options: { requestId: string },
  ): Promise<{ lsn: number; duplicate: boolean }>;
  incrBy(
    key: string,
    delta: number,
    options: { requestId: string },
  ): Promise<{ lsn: number; duplicate: boolean; value: bigint }>;
  compareAndSet(
    key: string,
    expected: string | null,
    next: string | null,
    options: { requestId: string },
  ): Promise<{ lsn: number; duplicate: boolean; ok: boolean }>;
}

export interface Answer {
  lsn: number;
  duplicate: boolean;
  /** False when the write logged nothing (its result says so). */
  effect: boolean;
  value: bigint | null;
}

/** Runs `command` with `requestId` on `node`; what it answered, or its error thrown. */
export async function invoke(
  node: WritableNode,
  command: Command,
  requestId: string,
): Promise<Answer> {
  const options = { requestId };
  switch (command.kind) {
    case 'put': {
      const result = await node.put(command.key, command.value, options);
      return { lsn: result.lsn, duplicate: result.duplicate, effect: true, value: null };
    }
    case 'delete': {
      const result = await node.delete(command.key, options);
      return { lsn: result.lsn, duplicate: result.duplicate, effect: result.deleted, value: null };
    }
    case 'batch': {
      const result = await node.batch(command.operations, options);
      return { lsn: result.lsn, duplicate: result.duplicate, effect: true, value: null };
    }
    case 'incr': {
      const result = await node.incrBy(command.key, command.delta, options);
      return { lsn: result.lsn, duplicate: result.duplicate, effect: true, value: result.value };
    }
    case 'cas': {
      const { key, expected, next } = command;
      const result = await node.compareAndSet(key, expected, next, options);
      const effect = result.ok && !(expected === null && next === null);
      return { lsn: result.lsn, duplicate: result.duplicate, effect, value: null };
    }
  }
}
