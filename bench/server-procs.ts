/**
 * Server processes for the `replication` and `server` suites: `syncwal serve` as one node or
 * as a 3-node shard with a fixed primary, and Redis with `appendfsync always`, each a child
 * process listening on 127.0.0.1 only, with data in a directory the caller owns.
 *
 * `syncwal serve` runs from the working tree's sources under tsx (`node --import tsx
 * src/cli/syncwal.ts serve ...`), so the bench never measures a stale dist/. tsx only
 * transpiles at load time; the running code is the same as the compiled one.
 *
 * Every child is stopped by its pid (SIGTERM, then SIGKILL after a grace period); if the
 * bench process exits early, an exit hook SIGKILLs whatever is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const host = '127.0.0.1';
const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
const syncwalScript = join(repositoryRoot, 'src', 'cli', 'syncwal.ts');
const startTimeoutMs = 60_000;
const stopGraceMs = 15_000;

/** One child process: its pid, for CPU accounting and for stopping it. */
export interface Child {
  label: string;
  pid: number;
}

/** A running server (one process or a shard) that clients talk to on `port`. */
export interface Target {
  name: string;
  /** The client port of the node clients write to (the primary of a shard). */
  port: number;
  /** Every process of the target, the one clients talk to first. */
  children: readonly Child[];
  stop: () => Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const leftover of running) {
      if (leftover.pid !== undefined) leftover.kill('SIGKILL');
    }
  });
}

/** Ports that were free on 127.0.0.1 a moment ago (the OS picks them; then they are closed). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let index = 0; index < count; index++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, resolve);
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

/** Stops a child by its pid: SIGTERM, then SIGKILL if it has not exited after the grace. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(timer);
}

interface Started {
  child: ChildProcess;
  /** Resolves with the client port once the process says it listens. */
  listening: Promise<number>;
  /** The last lines the process wrote, for an error message. */
  tail: string[];
}

/**
 * Spawns a process and watches its output (read continuously, so a chatty child never blocks
 * on a full pipe) for `isReady`, which returns the client port from a line, or null.
 */
function startProcess(
  label: string,
  command: { file: string; args: readonly string[] },
  isReady: (line: string) => number | null,
): Started {
  const child = spawn(command.file, command.args, {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const tail: string[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${label} not ready after ${startTimeoutMs} ms: ${tail.join(' | ')}`));
    }, startTimeoutMs);
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 5) tail.shift();
      const port = isReady(line);
      if (port === null) return;
      clearTimeout(timer);
      resolve(port);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code ?? signal}) while starting: ${tail.join(' | ')}`));
    });
  });
  listening.catch(() => undefined); // Observed by the caller; never an unhandled rejection.
  return { child, listening, tail };
}

/** The client port from syncwal's `server.listening` JSON log line. */
function syncwalListening(line: string): number | null {
  if (!line.includes('"server.listening"')) return null;
  try {
    const record = JSON.parse(line) as { event?: unknown; port?: unknown };
    return record.event === 'server.listening' && typeof record.port === 'number'
      ? record.port
      : null;
  } catch {
    return null;
  }
}

function serveCommand(args: readonly string[]): { file: string; args: string[] } {
  const common = ['--host', host, '--port', '0', '--log-format', 'json'];
  return {
    file: process.execPath,
    args: ['--import', 'tsx', syncwalScript, 'serve', ...common, ...args],
  };
}

function childOf(label: string, started: Started): Child {
  return { label, pid: started.child.pid ?? -1 };
}

/** One `syncwal serve` process without peers (the single-node engine behind RESP). */
export async function startSingleNode(dir: string): Promise<Target> {
  const args = ['--node-id', 'n1', '--data-dir', join(dir, 'single')];
  const started = startProcess('single node', serveCommand(args), syncwalListening);
  try {
    const port = await started.listening;
    const stop = () => stopChild(started.child);
    return { name: 'single', port, children: [childOf('n1', started)], stop };
  } catch (error: unknown) {
    await stopChild(started.child);
    throw error;
  }
}

export type Acks = 'quorum' | 'all';

/**
 * Three `syncwal serve` processes forming one shard with n1 the primary, ready once the
 * primary reports both replicas eligible (so `acks=all` really waits for both).
 */
export async function startShard(dir: string, acks: Acks): Promise<Target> {
  const ids = ['n1', 'n2', 'n3'];
  const peerPorts = await freePorts(ids.length);
  const secret = randomBytes(18).toString('base64url');
  const nodes = ids.map((id, index) => {
    const peers = ids
      .map((peer, peerIndex) => `${peer}=${host}:${peerPorts[peerIndex]!}`)
      .filter((_, peerIndex) => peerIndex !== index);
    const args = ['--node-id', id, '--data-dir', join(dir, id)];
    args.push('--peer-port', String(peerPorts[index]!), '--peers', peers.join(','));
    args.push('--primary-id', 'n1', '--shard-id', 'bench', '--shard-secret', secret);
    args.push('--acks', acks);
    return startProcess(id, serveCommand(args), syncwalListening);
  });
  const stop = async () => {
    await Promise.all(nodes.map((node) => stopChild(node.child)));
  };
  try {
    const ports = await Promise.all(nodes.map((node) => node.listening));
    await waitForEligibleReplicas(ports[0]!, ids.length - 1);
    const children = nodes.map((node, index) => childOf(ids[index]!, node));
    return { name: `3node-${acks}`, port: ports[0]!, children, stop };
  } catch (error: unknown) {
    await stop();
    throw error;
  }
}

async function waitForEligibleReplicas(port: number, wanted: number): Promise<void> {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const info = await client.info('replication');
      const eligible = Number(/eligible_replicas:(\d+)/.exec(info)?.[1] ?? 0);
      if (eligible >= wanted) return;
      if (Date.now() > deadline) {
        throw new Error(`the primary has ${eligible} eligible replicas, wanted ${wanted}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    client.disconnect();
  }
}

/** The command to run `redis-server`, or null when it is not installed. */
export async function findExecutable(name: string): Promise<string | null> {
  const child = spawn('which', [name], { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(1));
    child.once('exit', resolve);
  });
  const path = output.trim();
  return code === 0 && path !== '' ? path : null;
}

/**
 * Redis as a user would run it for durability: AOF on, `appendfsync always` (fsync before
 * replying, batched across the clients of one event-loop turn), no RDB snapshots.
 */
export async function startRedisAof(dir: string, executable: string): Promise<Target> {
  const [port] = await freePorts(1);
  const args = ['--port', String(port!), '--bind', host, '--dir', dir, '--save', ''];
  args.push('--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no');
  const ready = (line: string): number | null =>
    line.includes('Ready to accept connections') ? port! : null;
  const started = startProcess('redis-server', { file: executable, args }, ready);
  try {
    await started.listening;
    const stop = () => stopChild(started.child);
    return { name: 'redis-aof-always', port: port!, children: [childOf('redis', started)], stop };
  } catch (error: unknown) {
    await stopChild(started.child);
    throw error;
  }
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

/** User + system CPU seconds a process has used so far, or NaN if it cannot be read. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    return (userTicks + systemTicks) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}
