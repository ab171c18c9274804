/**
 * The load generator of the `replication` suite: ioredis (the client a Node.js user would
 * pick) keeping exactly C commands in flight against one server, and the CPU each process
 * used meanwhile.
 *
 * Shape: min(C, 16) connections; C workers share them round-robin, so C=1 is one connection
 * with one command in flight, C=16 is 16 connections with one each, and C=256 is 16
 * connections with about 16 pipelined commands each. Past 16 the extra concurrency is
 * pipelined rather than spread over more sockets: 256 sockets with one command each would make
 * both sides pay a read and a write syscall per command per socket, which on a 2-core machine
 * measures TCP fan-in rather than the engine and its replication. The server runs a
 * connection's pipelined writes concurrently (src/server/connection.ts), so C in flight on the
 * client is C in flight in the engine. ioredis's auto-pipelining is off: it cost more client
 * CPU per command than it saved (20-27 against 13 us per SET at C=256, measured here). The
 * PING and GET rows run the same client against the same server with no log write and no
 * replication: the ceiling of client + RESP, to show whether the client limits the SET rows;
 * the CPU columns show it too.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { type Budget, type Measurement, runConcurrent } from './lib.js';
import { cpuSecondsOf, type Target } from './server-procs.js';

export type Operation = 'set' | 'get' | 'ping';

export const connectionsMax = 16;
/** SET keys cycle through this many keys; GET reads the first `readKeys` of them. */
const keySpace = 100_000;
const readKeys = 1_000;

export interface LoadRun {
  operation: Operation;
  concurrency: number;
  budget: Budget;
  valueBytes: number;
}

export interface LoadMeasurement extends Measurement {
  connections: number;
  /** Cores used during the measured window: the bench process (the client), then each child. */
  clientCores: number;
  childCores: number[];
}

async function connect(port: number, count: number): Promise<Redis[]> {
  const clients = Array.from(
    { length: count },
    () =>
      new Redis({
        host: '127.0.0.1',
        port,
        lazyConnect: true,
        enableAutoPipelining: false,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
      }),
  );
  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (error: unknown) {
    for (const client of clients) client.disconnect();
    throw error;
  }
  return clients;
}

function operationOf(run: LoadRun, clients: readonly Redis[]): (index: number) => Promise<unknown> {
  const value = Buffer.alloc(run.valueBytes, 0x78);
  const pick = (index: number): Redis => clients[index % clients.length]!;
  switch (run.operation) {
    case 'set':
      return (index) => pick(index).set(`key:${index % keySpace}`, value);
    case 'get':
      return (index) => pick(index).getBuffer(`key:${index % readKeys}`);
    case 'ping':
      return (index) => pick(index).ping();
  }
}

/** Runs one row: `run.operation` with `run.concurrency` in flight against `target`. */
export async function runLoad(target: Target, run: LoadRun): Promise<LoadMeasurement> {
  const connections = Math.min(run.concurrency, connectionsMax);
  const clients = await connect(target.port, connections);
  try {
    let clientBefore = process.cpuUsage();
    let childBefore: number[] = [];
    let startedMs = 0;
    const measurement = await runConcurrent({
      concurrency: run.concurrency,
      budget: run.budget,
      operation: operationOf(run, clients),
      onMeasureStart: () => {
        clientBefore = process.cpuUsage();
        childBefore = target.children.map((child) => cpuSecondsOf(child.pid));
        startedMs = performance.now();
      },
    });
    const seconds = (performance.now() - startedMs) / 1000;
    const client = process.cpuUsage(clientBefore);
    return {
      ...measurement,
      connections,
      clientCores: (client.user + client.system) / 1e6 / seconds,
      childCores: target.children.map(
        (child, index) => (cpuSecondsOf(child.pid) - childBefore[index]!) / seconds,
      ),
    };
  } finally {
    for (const client of clients) client.disconnect();
  }
}
