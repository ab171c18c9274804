/**
 * The replica end of the `fullsync` bench in a process of its own (bench/fullsync.ts starts
 * it): `tsx bench/fullsync-replica.ts '{"dir":...,"store":"sqlite","primaryPort":N}'`. Prints
 * `{"port":N}` once listening, then `{"installed":true,"cpuMs":N}` once the snapshot is
 * installed, and keeps running (the receiver still has to report the install to the primary)
 * until the bench stops it.
 */
import { startReplica, type ReplicaStore } from './fullsync-endpoints.js';

interface Arguments {
  dir: string;
  store: ReplicaStore;
  primaryPort: number;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as Arguments;
  const replica = await startReplica(options);
  process.stdout.write(`${JSON.stringify({ port: replica.port })}\n`);
  const cpu = process.cpuUsage();
  await replica.installed;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  process.stdout.write(`${JSON.stringify({ installed: true, cpuMs })}\n`);
}

await main();
