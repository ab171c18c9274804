import type { Logger } from '../ports/logger.js';
import type { DurabilityPolicy, ServerBackend } from './backend.js';
import type { ProtocolVersion, Reply } from './resp/reply.js';
import type { ServerStats } from './stats.js';

/**
 * The state commands see: the server's (shared by every connection) and one client's. The
 * server owns `ServerContext`, each connection owns its `ClientState`; commands read both and
 * change only the fields documented as theirs.
 */

export interface ServerLimits {
  /** Connected clients; one more is answered `-ERR max number of clients reached`. */
  clientsMax: number;
  /** Largest bulk argument in bytes (Redis: proto-max-bulk-len). */
  bulkBytesMax: number;
  /** Most arguments in one command, name included. */
  argumentsMax: number;
  /** Longest inline command (and header line) in bytes. */
  inlineBytesMax: number;
  /** Most argument bytes in one command. */
  commandBytesMax: number;
  /** Replies a client may have outstanding (started, not yet written); reading stops there. */
  pipelineRepliesMax: number;
  /** Largest SCAN COUNT (the engine's scan page bound). */
  scanCountMax: number;
  /** SCAN cursors remembered; the oldest is forgotten first. */
  scanCursorsMax: number;
  /** Commands one connection runs before letting other connections in (fairness). */
  commandsPerTurnMax: number;
}

export const serverLimitsDefault: ServerLimits = {
  clientsMax: 10_000,
  bulkBytesMax: 16 * 1024 * 1024,
  argumentsMax: 65_536,
  inlineBytesMax: 64 * 1024,
  commandBytesMax: 64 * 1024 * 1024,
  pipelineRepliesMax: 1_024,
  scanCountMax: 1_000,
  scanCursorsMax: 16_384,
  commandsPerTurnMax: 256,
};

/** Time as the server sees it: monotonic for durations, wall for timestamps (injected). */
export interface ServerClock {
  /** Monotonic milliseconds. */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch. */
  wallMs(): number;
}

export interface ClientState {
  readonly id: number;
  readonly address: string;
  readonly connectedAtMs: number;
  name: string | null;
  libraryName: string | null;
  libraryVersion: string | null;
  protocol: ProtocolVersion;
  authenticated: boolean;
  /** LSN of this client's last write that committed (WAIT counts replicas holding it). */
  lastWriteLsn: number;
  commands: number;
  /** Set by QUIT: the connection closes once this command's reply is written. */
  closeAfterReply: boolean;
}

export interface ScanCursorTable {
  /** A cursor for resuming at `next`; never 0. */
  save(next: Buffer): string;
  /** Where cursor `cursor` resumes, or null if it is unknown or forgotten. */
  load(cursor: string): Buffer | null;
}

export interface ServerContext {
  readonly backend: ServerBackend;
  readonly nodeId: string;
  readonly version: string;
  readonly limits: ServerLimits;
  readonly password: string | null;
  readonly stats: ServerStats;
  readonly logger: Logger;
  readonly clock: ServerClock;
  readonly clients: ReadonlyMap<number, ClientState>;
  readonly cursors: ScanCursorTable;
  readonly startedAtMs: number;
  readonly configFile: string | null;
  readonly tls: boolean;
  /** The address the server listens on (port 0 resolved), once listening. */
  address: { host: string; port: number };
  /** The policy reported (CONFIG GET) when the backend has no policy hook. */
  readonly policy: DurabilityPolicy;
  /** The last checkpoint this server saw complete. */
  lastCheckpoint: { lsn: number; wallMs: number } | null;
}

export interface CommandContext {
  readonly server: ServerContext;
  readonly client: ClientState;
  /** The request id a write carries (`SET ... RID id` or the `RID id <command>` prefix). */
  readonly requestId: string | null;
}

export type CommandOrder = 'write' | 'read' | 'free';

/** A command: its arity as in Redis (N exact, -N at least N, name included) and behaviour. */
export interface CommandSpec {
  name: string;
  arity: number;
  /**
   * When the command may start, relative to the connection's earlier commands (its reply
   * always goes out in order):
   *  - 'write': once no earlier non-write is in flight. Writes do not wait for each other: the
   *    engine orders them, and a write computed against pending state (INCR) sees them.
   *  - 'read': once every earlier command completed, so it sees their effects, as in Redis.
   *  - 'free': at once; it neither reads nor changes data (PING, CLIENT SETNAME, AUTH, ...).
   */
  order: CommandOrder;
  /** May run before AUTH. */
  noAuth?: boolean;
  /** Accepts a request id (the `RID id <command>` prefix). */
  requestId?: boolean;
  /** Redis command flags, for COMMAND INFO. */
  flags: readonly string[];
  /** First key, last key (-1: the last argument) and key step, for COMMAND INFO; 0 if none. */
  keys: readonly [number, number, number];
  summary: string;
  run(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply>;
}
