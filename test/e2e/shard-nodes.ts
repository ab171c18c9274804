/**
 * A shard of real `syncwal serve` processes on 127.0.0.1 for the e2e tests, with every peer
 * link through its own FaultProxy (test/support/fault-proxy.ts), one per directed link: node
 * A dials peer B at the proxy `A->B`, which forwards to B's peer port. A fault on the links of
 * one node is a fault on the proxies that name it.
 *
 * Every port is picked by the kernel (port 0), so parallel runs never collide. The proxies keep
 * their listening ports for the whole run (the nodes' `--peers` name them); when a node
 * restarts on a new peer port, the proxies towards it are restarted on their own ports with the
 * new target (`ShardLink.retarget`). Until a node first listens, its proxies point at a parking
 * listener that closes every connection, so the dialers back off and try again.
 *
 * Processes run the transpiled sources with plain `node` (harness.ts `prepareWriter`); each one
 * is signalled by its own pid, and everything started is stopped by `Shard.close`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import {
  FaultProxy,
  type ProxyAcceptMode,
  type ProxyDirection,
  type ProxyFault,
} from '../support/fault-proxy.js';

const host = '127.0.0.1';

/** One JSON log line of a node (`--log-format json`). */
export type LogLine = { event: string } & Record<string, unknown>;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface LineWaiter {
  from: number;
  match: (line: LogLine) => boolean;
  resolve: (line: LogLine) => void;
  reject: (error: Error) => void;
}

/** One life of one node: a child process and what it logged. */
export class NodeProcess {
  /** Every process started and not yet exited, so a failed test can stop them by pid. */
  static readonly running = new Set<NodeProcess>();
  readonly id: string;
  readonly life: number;
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<ExitStatus>;
  #other: string[] = [];
  #waiters: LineWaiter[] = [];
  #exit: ExitStatus | null = null;

  constructor(id: string, life: number, command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.id = id;
    this.life = life;
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    NodeProcess.running.add(this);
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.#onLine(line));
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.#keep(`! ${line}`));
    this.child.on('error', (error) => this.#keep(`spawn error: ${String(error)}`));
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.on('close', (code, signal) => {
        NodeProcess.running.delete(this);
        this.#exit = { code, signal };
        resolve(this.#exit);
        for (const waiter of this.#waiters.splice(0)) {
          waiter.reject(new Error(`${this.id} exited (${JSON.stringify(this.#exit)})`));
        }
      });
    });
  }

  get exitStatus(): ExitStatus | null {
    return this.#exit;
  }

  #keep(text: string): void {
    this.#other.push(text);
    if (this.#other.length > 200) this.#other.splice(0, 100);
  }

  #onLine(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      this.#keep(text);
      return;
    }
    this.lines.push(line);
    const index = this.lines.length - 1;
    const ready = this.#waiters.filter((waiter) => index >= waiter.from && waiter.match(line));
    this.#waiters = this.#waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve(line);
  }

  /**
   * The first log line at index `from` or later that matches (already logged or still to
   * come). Rejects after `timeoutMs`, or when the process exits first.
   */
  line(match: (line: LogLine) => boolean, from = 0, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.slice(from).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.#exit !== null) {
      return Promise.reject(new Error(`${this.id} exited (${JSON.stringify(this.#exit)})`));
    }
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== entry);
        reject(new Error(`${this.id}: no such log line in ${timeoutMs} ms`));
      }, timeoutMs);
      const entry: LineWaiter = {
        from,
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.push(entry);
    });
  }

  /** The next line with one of these events (from now on), or null after `timeoutMs`. */
  async nextEvent(events: readonly string[], timeoutMs: number): Promise<LogLine | null> {
    const from = this.lines.length;
    return this.line((line) => events.includes(line.event), from, timeoutMs).catch(() => null);
  }

  /** Sends a signal by pid and waits (bounded) for the exit. */
  async signal(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 30_000): Promise<ExitStatus> {
    const pid = this.child.pid;
    if (this.#exit === null && pid !== undefined) {
      try {
        process.kill(pid, signal);
      } catch (error: unknown) {
        if ((error as { code?: unknown }).code !== 'ESRCH') throw error;
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const status = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (status !== null) return status;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    await this.exited;
    throw new Error(`${this.id} did not exit within ${timeoutMs} ms of ${signal}`);
  }

  /** The last log lines and any other output, for failure messages. */
  diagnostics(count = 25): string {
    const lines = this.lines.slice(-count).map((line) => JSON.stringify(line).slice(0, 300));
    const other = this.#other.slice(-20);
    return [
      `--- ${this.id} life ${this.life} pid ${this.child.pid} exit ${JSON.stringify(this.#exit)}`,
      ...lines,
      ...other,
    ].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Links.

/** One directed peer link: node `from` dials node `to` through this proxy. */
export class ShardLink {
  readonly from: string;
  readonly to: string;
  #proxy: FaultProxy;
  #targetPort: number;
  readonly #faults: Record<ProxyDirection, ProxyFault> = {
    toTarget: { kind: 'pass' },
    toClient: { kind: 'pass' },
  };
  #accept: ProxyAcceptMode = 'forward';

  private constructor(from: string, to: string, proxy: FaultProxy, targetPort: number) {
    this.from = from;
    this.to = to;
    this.#proxy = proxy;
    this.#targetPort = targetPort;
  }

  static async start(from: string, to: string, targetPort: number): Promise<ShardLink> {
    const proxy = await FaultProxy.start({ host, port: targetPort });
    return new ShardLink(from, to, proxy, targetPort);
  }

  get port(): number {
    return this.#proxy.port;
  }

  /** Points the link at a new peer port: a new proxy on the same port, same faults. */
  async retarget(targetPort: number): Promise<void> {
    if (targetPort === this.#targetPort) return;
    const port = this.#proxy.port;
    await this.#proxy.close();
    this.#proxy = await FaultProxy.start({ host, port: targetPort }, port);
    this.#targetPort = targetPort;
    for (const direction of ['toTarget', 'toClient'] as const) {
      this.#proxy.set(direction, this.#faults[direction]);
    }
    await this.#proxy.setAccept(this.#accept);
  }

  /** `toTarget` carries what `from` sends to `to`; `toClient` the other way. */
  set(direction: ProxyDirection, fault: ProxyFault): void {
    this.#faults[direction] = fault;
    this.#proxy.set(direction, fault);
  }

  async setAccept(mode: ProxyAcceptMode): Promise<void> {
    this.#accept = mode;
    await this.#proxy.setAccept(mode);
  }

  reset(): void {
    this.#proxy.reset();
  }

  async heal(): Promise<void> {
    this.set('toTarget', { kind: 'pass' });
    this.set('toClient', { kind: 'pass' });
    await this.setAccept('forward');
  }

  close(): Promise<void> {
    return this.#proxy.close();
  }
}

/** A listener that closes every connection at once: where links point before a node is up. */
async function startParking(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

// ---------------------------------------------------------------------------------------------
// The shard.

export interface ShardOptions {
  /** The transpiled `syncwal` entry point, run with plain node. */
  script: string;
  dataRoot: string;
  ids: readonly string[];
  primary: string;
  secret: string;
  /** Extra `serve` flags for every node (policy, segment size, ...). */
  serveArgs: readonly string[];
  startupMs?: number;
}

interface Member {
  id: string;
  dataDir: string;
  process: NodeProcess | null;
  lives: number;
  clientPort: number;
  peerPort: number;
  /** Resolved while the node is up; replaced by a pending one when it goes down. */
  up: Deferred;
  /** Ends (performance.now()) of each life, by life number. */
  lifeEndsMs: number[];
  /** Every life's process, for the log checks at the end. */
  history: NodeProcess[];
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  resolved: boolean;
}

function deferred(): Deferred {
  const entry: Deferred = { promise: Promise.resolve(), resolve: () => undefined, resolved: false };
  entry.promise = new Promise<void>((done) => {
    entry.resolve = () => {
      entry.resolved = true;
      done();
    };
  });
  return entry;
}

/** A node going down: later `whenUp` calls wait for its next start. */
function markDown(member: Member): void {
  if (member.up.resolved) member.up = deferred();
}

export class Shard {
  readonly options: ShardOptions;
  readonly links: ShardLink[];
  readonly #members = new Map<string, Member>();
  readonly #parking: net.Server;
  /** Exit statuses of lives that did not end by our SIGKILL or SIGTERM. */
  readonly unexpectedExits: string[] = [];

  private constructor(options: ShardOptions, links: ShardLink[], parking: net.Server) {
    this.options = options;
    this.links = links;
    this.#parking = parking;
    for (const id of options.ids) {
      this.#members.set(id, {
        id,
        dataDir: `${options.dataRoot}/${id}`,
        process: null,
        lives: 0,
        clientPort: 0,
        peerPort: 0,
        up: deferred(),
        lifeEndsMs: [],
        history: [],
      });
    }
  }

  static async create(options: ShardOptions): Promise<Shard> {
    const parking = await startParking();
    const parkingPort = (parking.address() as net.AddressInfo).port;
    const links: ShardLink[] = [];
    for (const from of options.ids) {
      for (const to of options.ids) {
        if (from !== to) links.push(await ShardLink.start(from, to, parkingPort));
      }
    }
    return new Shard(options, links, parking);
  }

  get ids(): readonly string[] {
    return this.options.ids;
  }

  get primary(): string {
    return this.options.primary;
  }

  get replicas(): string[] {
    return this.options.ids.filter((id) => id !== this.options.primary);
  }

  #member(id: string): Member {
    const member = this.#members.get(id);
    if (member === undefined) throw new Error(`no node ${id}`);
    return member;
  }

  dataDir(id: string): string {
    return this.#member(id).dataDir;
  }

  clientPort(id: string): number {
    return this.#member(id).clientPort;
  }

  process(id: string): NodeProcess {
    const running = this.#member(id).process;
    if (running === null) throw new Error(`${id} is not running`);
    return running;
  }

  isUp(id: string): boolean {
    return this.#member(id).process?.exitStatus === null;
  }

  /** The life (start count, from 1) of the node's current or last process. */
  life(id: string): number {
    return this.#member(id).lives;
  }

  /** When life `life` of the node ended (performance.now()), or Infinity if it has not. */
  lifeEndMs(id: string, life: number): number {
    return this.#member(id).lifeEndsMs[life] ?? Number.POSITIVE_INFINITY;
  }

  /** Resolves once the node is up (listening for clients). */
  whenUp(id: string): Promise<void> {
    return this.#member(id).up.promise;
  }

  /** Every process any node ran, in start order per node. */
  allLives(): NodeProcess[] {
    return [...this.#members.values()].flatMap((member) => member.history);
  }

  linksOf(id: string): ShardLink[] {
    return this.links.filter((link) => link.from === id || link.to === id);
  }

  link(from: string, to: string): ShardLink {
    const found = this.links.find((link) => link.from === from && link.to === to);
    if (found === undefined) throw new Error(`no link ${from}->${to}`);
    return found;
  }

  #args(member: Member): string[] {
    const peers = this.links
      .filter((link) => link.from === member.id)
      .map((link) => `${link.to}=${host}:${link.port}`)
      .join(',');
    return [
      this.options.script,
      'serve',
      ...['--node-id', member.id, '--data-dir', member.dataDir],
      ...['--host', host, '--port', '0', '--peer-port', '0', '--peers', peers],
      ...['--primary-id', this.options.primary, '--shard-id', 'shard-e2e'],
      ...['--log-format', 'json'],
      ...this.options.serveArgs,
    ];
  }

  #env(): NodeJS.ProcessEnv {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('SYNCWAL_')),
    );
    return { ...env, SYNCWAL_SHARD_SECRET: this.options.secret };
  }

  /** Starts the node; resolves once it listens for clients and its links lead to it. */
  async start(id: string): Promise<NodeProcess> {
    const member = this.#member(id);
    if (member.process !== null && member.process.exitStatus === null) {
      throw new Error(`${id} is already running`);
    }
    member.lives += 1;
    const child = new NodeProcess(id, member.lives, process.execPath, this.#args(member), {
      ...this.#env(),
    });
    member.process = child;
    member.history.push(child);
    void child.exited.then((status) => this.#onExit(member, child, status));
    const startupMs = this.options.startupMs ?? 60_000;
    const failed = (error: unknown) => {
      throw new Error(`${id} did not start: ${String(error)}\n${child.diagnostics()}`);
    };
    const peer = await child
      .line((line) => line.event === 'transport.listening', 0, startupMs)
      .catch(failed);
    const listening = await child
      .line((line) => line.event === 'server.listening', 0, startupMs)
      .catch(failed);
    member.peerPort = Number(peer.port);
    member.clientPort = Number(listening.port);
    for (const link of this.links) if (link.to === id) await link.retarget(member.peerPort);
    member.up.resolve();
    return child;
  }

  #onExit(member: Member, child: NodeProcess, status: ExitStatus): void {
    member.lifeEndsMs[child.life] = performance.now();
    if (member.process === child) markDown(member);
    if (status.signal !== 'SIGKILL' && status.code !== 0) {
      this.unexpectedExits.push(`${child.id} life ${child.life}: ${JSON.stringify(status)}`);
    }
  }

  /** SIGKILL by pid; resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const member = this.#member(id);
    const child = this.process(id);
    markDown(member);
    const status = await child.signal('SIGKILL');
    member.lifeEndsMs[child.life] ??= performance.now();
    if (status.signal !== 'SIGKILL') {
      throw new Error(`${id} was gone before the kill: ${JSON.stringify(status)}`);
    }
  }

  /** SIGTERM by pid: a graceful stop that must exit 0. */
  async stop(id: string): Promise<ExitStatus> {
    const member = this.#member(id);
    const child = this.process(id);
    markDown(member);
    return child.signal('SIGTERM', 60_000);
  }

  async healAll(): Promise<void> {
    for (const link of this.links) await link.heal();
  }

  /** Writes every life's log lines to `dir/<id>-<life>.jsonl` (for a post-mortem). */
  writeLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const life of this.allLives()) {
      const text = life.lines.map((line) => JSON.stringify(line)).join('\n');
      writeFileSync(join(dir, `${life.id}-${life.life}.jsonl`), `${text}\n`);
    }
  }

  diagnostics(): string {
    const parts: string[] = [];
    for (const member of this.#members.values()) {
      if (member.process !== null) parts.push(member.process.diagnostics());
    }
    return parts.join('\n');
  }

  /** Kills every process still running (by pid) and closes the proxies. */
  async close(): Promise<void> {
    for (const member of this.#members.values()) {
      if (member.process !== null && member.process.exitStatus === null) {
        await member.process.signal('SIGKILL').catch(() => undefined);
      }
    }
    for (const link of this.links) await link.close();
    await new Promise<void>((resolve) => this.#parking.close(() => resolve()));
  }
}

/** SIGKILLs every node process still running (after a failed test), each by its own pid. */
export async function killAllNodes(): Promise<void> {
  await Promise.all([...NodeProcess.running].map((node) => node.signal('SIGKILL')));
}
