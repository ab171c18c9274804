import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { formatLine, type LogLevel } from '../server/logger.js';
import type { Output } from './entry.js';
import { serveExitCodes } from './serve.js';

/**
 * `syncwal cluster` (what `npm start` runs): a local shard for a first run. Starts N
 * `syncwal serve` child processes on loopback (client ports 7001.., peer ports 17001..,
 * data under ./data/<node-id>, node n1 the primary), prints where each listens and how to
 * connect, restarts a node that crashes (backoff 250 ms doubling to 10 s; a node that fails to
 * start 5 times in a row, or exits with a configuration error, is given up), and on Ctrl-C or
 * SIGTERM stops every child by its pid (SIGTERM, then SIGKILL after 15 s) and exits 0.
 *
 * Children log JSON lines; the cluster prints them prefixed with the node id, as text unless
 * `--log-format json`.
 */

export const clusterExitCodes = { ok: 0, usage: 64 } as const;

export interface ClusterOptions {
  nodes: number;
  data: string;
  host: string;
  port: number;
  peerPort: number;
  shardId: string;
  shardSecret: string | null;
  password: string | null;
  logFormat: 'text' | 'json';
}

export interface ClusterRuntime {
  output: Output;
  env: Readonly<Record<string, string | undefined>>;
  onSignal: (handler: (signal: string) => void) => () => void;
  /** How to start `syncwal`: an executable and the arguments before `serve`. */
  command: { file: string; args: readonly string[] };
}

interface NodePlan {
  id: string;
  port: number;
  peerPort: number;
  dataDir: string;
  args: string[];
}

const restartDelayMsFirst = 250;
const restartDelayMsMax = 10_000;
const startFailuresMax = 5;
const stableAfterMs = 30_000;
const killAfterMs = 15_000;
/** Exit codes that a restart cannot fix. */
const fatalExitCodes: ReadonlySet<number> = new Set([serveExitCodes.usage, serveExitCodes.corrupt]);

/** The command that runs this very program (compiled or under tsx). */
export function selfCommand(): { file: string; args: string[] } {
  const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const script = fileURLToPath(new URL(`./syncwal.${extension}`, import.meta.url));
  return { file: process.execPath, args: [...process.execArgv, script] };
}

export function planNodes(options: ClusterOptions): NodePlan[] {
  const ids = Array.from({ length: options.nodes }, (_, index) => `n${index + 1}`);
  return ids.map((id, index) => {
    const port = options.port === 0 ? 0 : options.port + index;
    const peerPort = options.peerPort === 0 ? 0 : options.peerPort + index;
    const dataDir = join(options.data, id);
    const args = ['serve', '--node-id', id, '--data-dir', dataDir, '--host', options.host];
    args.push('--port', String(port), '--peer-port', String(peerPort), '--log-format', 'json');
    if (options.nodes > 1) {
      const peers = ids
        .map((peer, peerIndex) => `${peer}=${options.host}:${options.peerPort + peerIndex}`)
        .filter((_, peerIndex) => peerIndex !== index);
      args.push('--peers', peers.join(','), '--primary-id', 'n1', '--shard-id', options.shardId);
    }
    return { id, port, peerPort, dataDir, args };
  });
}

interface NodeProcess {
  plan: NodePlan;
  child: ChildProcess | null;
  ready: boolean;
  listeningPort: number;
  startedAtMs: number;
  startFailures: number;
  restartTimer: NodeJS.Timeout | null;
  lastError: string | null;
  gaveUp: boolean;
}

/** The running shard: children, their output, restarts and the shutdown. */
class LocalShard {
  readonly #options: ClusterOptions;
  readonly #runtime: ClusterRuntime;
  readonly #secret: string;
  readonly #nodes: NodeProcess[];
  readonly #finish: (code: number) => void;
  #announced = false;
  #stopping = false;
  #exitCode: number = clusterExitCodes.ok;
  #removeSignals: () => void = () => undefined;
  #killTimer: NodeJS.Timeout | null = null;

  constructor(
    options: ClusterOptions,
    runtime: ClusterRuntime,
    secret: string,
    finish: (code: number) => void,
  ) {
    this.#options = options;
    this.#runtime = runtime;
    this.#secret = secret;
    this.#finish = finish;
    this.#nodes = planNodes(options).map((plan) => ({
      plan,
      child: null,
      ready: false,
      listeningPort: plan.port,
      startedAtMs: 0,
      startFailures: 0,
      restartTimer: null,
      lastError: null,
      gaveUp: false,
    }));
  }

  start(): void {
    this.#removeSignals = this.#runtime.onSignal((signal) => {
      if (this.#stopping) return;
      this.#runtime.output.out(`syncwal cluster: ${signal}: stopping every node`);
      this.#stop(clusterExitCodes.ok);
    });
    for (const node of this.#nodes) this.#spawn(node);
  }

  #childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.#runtime.env };
    // The cluster decides every option itself: a config file in the environment would not apply.
    delete env['SYNCWAL_CONFIG'];
    env['SYNCWAL_SHARD_SECRET'] = this.#secret;
    if (this.#options.password !== null) env['SYNCWAL_PASSWORD'] = this.#options.password;
    else delete env['SYNCWAL_PASSWORD'];
    return env;
  }

  #spawn(node: NodeProcess): void {
    node.restartTimer = null;
    if (this.#stopping) return;
    const { file, args } = this.#runtime.command;
    const child = spawn(file, [...args, ...node.plan.args], {
      env: this.#childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    node.child = child;
    node.ready = false;
    node.startedAtMs = performance.now();
    createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(node, line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      node.lastError = line;
      this.#runtime.output.err(`${node.plan.id} | ${line}`);
    });
    child.on('error', (error) => {
      node.lastError = error.message;
      this.#runtime.output.err(`${node.plan.id} | cannot start: ${error.message}`);
    });
    child.on('exit', (code, signal) => this.#onExit(node, child, code, signal));
  }

  #onLine(node: NodeProcess, line: string): void {
    let record: Record<string, unknown> | null = null;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null) record = parsed as Record<string, unknown>;
    } catch {
      record = null;
    }
    if (record === null) {
      this.#runtime.output.out(`${node.plan.id} | ${line}`);
      return;
    }
    if (this.#options.logFormat === 'json') {
      this.#runtime.output.out(line);
    } else {
      const { time, level, event, node: _node, ...fields } = record;
      const text = formatLine(
        'text',
        String(time),
        level as LogLevel,
        String(event),
        fields as never,
      );
      this.#runtime.output.out(`${node.plan.id} | ${text.trimEnd()}`);
    }
    if (record['event'] === 'server.listening') this.#onListening(node, record['port']);
  }

  #onListening(node: NodeProcess, port: unknown): void {
    node.ready = true;
    if (typeof port === 'number') node.listeningPort = port;
    if (!this.#announced) {
      this.#announceIfReady();
      return;
    }
    const where = `${this.#options.host}:${node.listeningPort}`;
    const pid = node.child?.pid ?? '?';
    this.#runtime.output.out(
      `syncwal cluster: ${node.plan.id} is up again: client ${where}, pid ${pid}`,
    );
  }

  #announceIfReady(): void {
    if (this.#announced || !this.#nodes.every((node) => node.ready || node.gaveUp)) return;
    this.#announced = true;
    const out = this.#runtime.output.out;
    const options = this.#options;
    const up = this.#nodes.filter((node) => node.ready);
    out(
      `syncwal cluster: shard ${options.shardId} is up: ${up.length} node(s) on ` +
        `${options.host}, data under ${options.data}`,
    );
    for (const node of up) {
      const role = node.plan.id === 'n1' ? 'primary' : 'replica';
      const peer = options.nodes > 1 ? `  peer ${options.host}:${node.plan.peerPort}` : '';
      const client = `client ${options.host}:${node.listeningPort}`;
      const pid = node.child?.pid ?? '?';
      const data = `data ${node.plan.dataDir}`;
      out(`  ${node.plan.id}  ${role.padEnd(7)}  ${client}${peer}  ${data}  pid ${pid}`);
    }
    const first = up[0]?.listeningPort ?? options.port;
    const auth = options.password === null ? '' : ' -a <password>';
    out(`connect: redis-cli -p ${first}${auth}`);
    const statusAuth = options.password === null ? '' : ' --password <password>';
    out(`status:  syncwal status --port ${first}${statusAuth}`);
    out('stop:    Ctrl-C');
  }

  #onExit(
    node: NodeProcess,
    child: ChildProcess,
    code: number | null,
    signal: string | null,
  ): void {
    if (node.child === child) node.child = null;
    if (this.#stopping) {
      this.#finishIfStopped();
      return;
    }
    const how = code === null ? `signal ${signal}` : `code ${code}`;
    const ranMs = performance.now() - node.startedAtMs;
    if (code !== null && fatalExitCodes.has(code)) {
      this.#giveUp(node, `${node.plan.id} exited with ${how}: ${node.lastError ?? ''}`, code);
      return;
    }
    if (!node.ready) node.startFailures++;
    else if (ranMs >= stableAfterMs) node.startFailures = 0;
    node.ready = false;
    if (node.startFailures >= startFailuresMax) {
      this.#giveUp(
        node,
        `${node.plan.id} failed to start ${startFailuresMax} times (last: ${how})`,
        code ?? 1,
      );
      return;
    }
    const delayMs = Math.min(restartDelayMsFirst * 2 ** node.startFailures, restartDelayMsMax);
    this.#runtime.output.err(
      `syncwal cluster: ${node.plan.id} exited with ${how}; restarting in ${delayMs} ms`,
    );
    node.restartTimer = setTimeout(() => this.#spawn(node), delayMs);
  }

  #giveUp(node: NodeProcess, message: string, code: number): void {
    node.gaveUp = true;
    this.#runtime.output.err(`syncwal cluster: giving up on ${message}`);
    if (this.#nodes.every((each) => each.gaveUp)) {
      this.#stop(code === 0 ? 1 : code);
      return;
    }
    this.#announceIfReady();
  }

  #stop(code: number): void {
    this.#stopping = true;
    this.#exitCode = code;
    for (const node of this.#nodes) {
      if (node.restartTimer !== null) clearTimeout(node.restartTimer);
      node.restartTimer = null;
      node.child?.kill('SIGTERM');
    }
    this.#killTimer = setTimeout(() => {
      for (const node of this.#nodes) node.child?.kill('SIGKILL');
    }, killAfterMs);
    this.#finishIfStopped();
  }

  #finishIfStopped(): void {
    if (this.#nodes.some((node) => node.child !== null)) return;
    if (this.#killTimer !== null) clearTimeout(this.#killTimer);
    this.#removeSignals();
    this.#runtime.output.out('syncwal cluster: stopped');
    this.#finish(this.#exitCode);
  }
}

/** Runs the shard until a signal (exit 0) or until every node was given up. */
export function runCluster(options: ClusterOptions, runtime: ClusterRuntime): Promise<number> {
  if (options.nodes > 1 && (options.port === 0 || options.peerPort === 0)) {
    runtime.output.err(
      'syncwal cluster: with more than one node, --port and --peer-port must not be 0',
    );
    return Promise.resolve(clusterExitCodes.usage);
  }
  const secret = options.shardSecret ?? randomBytes(24).toString('base64url');
  return new Promise((resolve) => {
    new LocalShard(options, runtime, secret, resolve).start();
  });
}

function integerOption(name: string, raw: unknown, minimum: number, maximum: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new Error(`--${name} '${String(raw)}': must be an integer in [${minimum}, ${maximum}]`);
  }
  return value;
}

export function clusterOptionsOf(
  flags: Record<string, unknown>,
  env: ClusterRuntime['env'],
): ClusterOptions {
  const logFormat = String(flags['logFormat'] ?? 'text');
  if (logFormat !== 'text' && logFormat !== 'json')
    throw new Error(`--log-format '${logFormat}': text or json`);
  const defaultNodes = 3;
  const password = (flags['password'] as string | undefined) ?? env['SYNCWAL_PASSWORD'] ?? null;
  const secret =
    (flags['shardSecret'] as string | undefined) ?? env['SYNCWAL_SHARD_SECRET'] ?? null;
  return {
    nodes: integerOption('nodes', flags['nodes'] ?? defaultNodes, 1, 9),
    data: String(flags['data'] ?? 'data'),
    host: String(flags['host'] ?? '127.0.0.1'),
    port: integerOption('port', flags['port'] ?? 7001, 0, 65535 - 9),
    peerPort: integerOption('peer-port', flags['peerPort'] ?? 17001, 0, 65535 - 9),
    shardId: String(flags['shardId'] ?? 'local'),
    shardSecret: secret === '' ? null : secret,
    password: password === '' ? null : password,
    logFormat,
  };
}

export function registerCluster(
  program: Command,
  runtime: () => ClusterRuntime,
  setCode: (code: number) => void,
): void {
  program
    .command('cluster')
    .description('start a local shard of `syncwal serve` processes on loopback (npm start)')
    .option('--nodes <n>', 'number of nodes (default 3)')
    .option('--data <dir>', 'data directory; node n lives in <dir>/n<n>', 'data')
    .option('--host <host>', 'address every node listens on', '127.0.0.1')
    .option('--port <port>', 'client port of n1; n2 gets the next, ...', '7001')
    .option('--peer-port <port>', 'peer port of n1; n2 gets the next, ...', '17001')
    .option('--shard-id <id>', 'shard id', 'local')
    .option('--shard-secret <secret>', 'peer secret (default: generated) [SYNCWAL_SHARD_SECRET]')
    .option('--password <password>', 'clients must AUTH with it [SYNCWAL_PASSWORD]')
    .option('--log-format <format>', 'text or json', 'text')
    .action(async (flags: Record<string, unknown>) => {
      const current = runtime();
      let options: ClusterOptions;
      try {
        options = clusterOptionsOf(flags, current.env);
      } catch (error: unknown) {
        current.output.err(`syncwal cluster: ${(error as Error).message}`);
        setCode(clusterExitCodes.usage);
        return;
      }
      setCode(await runCluster(options, current));
    });
}
