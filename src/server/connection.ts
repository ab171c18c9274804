import type { Socket } from 'node:net';
import type { BackendOperation, BackendWriteResult } from './backend.js';
import { isPlainSet, plainSet } from './commands/keys.js';
import type { ClientState, CommandContext, ServerContext } from './context.js';
import type { Dispatcher, Prepared } from './dispatch.js';
import type { ReplyEncoder } from './resp/output.js';
import { RequestParser } from './resp/parser.js';
import { reply, type ProtocolVersion, type Reply } from './resp/reply.js';

/**
 * One client connection: parse, run in order, reply in order.
 *
 * Ordering (as Redis clients expect from a pipeline): replies go out in the order the commands
 * arrived, each in its slot, even though writes complete asynchronously. When a command may
 * start is its `order` (context.ts): a write starts once no earlier read is in flight (writes
 * do not wait for each other: the engine orders them, and INCR sees earlier pending writes); a
 * read waits until every earlier command completed, so a GET after a SET in the same pipeline
 * sees the SET; a command that touches no data (PING, CLIENT, AUTH) starts at once.
 *
 * Plain SETs (no option, no request id) that arrive together reach the engine together: the
 * consecutive ones of one turn (usually one socket read of a pipeline) go out as one batch,
 * one intent and one promise instead of one per SET. Each still gets its own reply, and its own
 * outcome: if the engine refuses the batch as a whole (INVALID: one value too large, say), every
 * SET of it runs again on its own, in order. Any other error (NOREPLICAS, IOERR, READONLY ...)
 * is one every SET of the batch would have had on its own, and each answers it. A batch of
 * several SETs holds back every later command of the connection except those touching no data
 * until it completes, so that those retries still come before anything sent after them. A
 * batch is atomic, which is more than each SET needs and costs nothing: none of them was
 * acknowledged before all of them were durable.
 *
 * When: a connection's gathered SETs start at the end of the event loop's current phase (one
 * `setImmediate` for all connections, `BatchStarter`), so that every client's SETs read in one
 * poll reach the engine in one go and share one log write and fsync; the log starts writing as
 * soon as it is given something, and a first write carrying one client's SETs would leave the
 * others waiting a whole fsync for the next. They start at once when anything else of the same
 * connection is about to start, so nothing overtakes them.
 *
 * Output: replies are encoded in order into the server's shared encoder and written once per
 * turn of the event loop (a process.nextTick after the first reply is due), one socket write
 * for all of them; at once when a lot is due (large values), so back-pressure works per reply.
 *
 * Bounds and back-pressure: at most `pipelineRepliesMax` replies may be outstanding; past that,
 * or while a command waits its turn, or while the socket's send buffer is full, the connection
 * stops reading (TCP pushes back on the client) and resumes when that clears. At most one
 * parsed command is held, so unparsed bytes are bounded by the parser's limits plus one chunk.
 * After `commandsPerTurnMax` commands in one go the connection yields to the event loop.
 *
 * A protocol error (malformed frame, a bulk length over the limit) is answered with
 * `-ERR Protocol error: ...` after the replies already due, and then this connection closes;
 * nothing of the malformed command ran.
 */

interface Slot {
  /** The reply, once the command completed. */
  reply: Reply | null;
  /** The protocol of the reply: the client's once the command started (HELLO's, after it). */
  protocol: ProtocolVersion;
  closeAfter: boolean;
}

type RunPrepared = Extract<Prepared, { kind: 'run' }>;

/**
 * Runs the connections' deferred batch starts together, once per turn of the event loop: in
 * the check phase right after the poll that read their commands. One per server.
 */
export class BatchStarter {
  #waiting: (() => void)[] = [];

  defer(start: () => void): void {
    this.#waiting.push(start);
    if (this.#waiting.length === 1) setImmediate(() => this.#run());
  }

  #run(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const start of waiting) start();
  }
}

/** What a server's connections share. */
export interface ConnectionShared {
  dispatcher: Dispatcher;
  /** Shared by the connections: each flush encodes into it and hands its bytes over at once. */
  encoder: ReplyEncoder;
  starter: BatchStarter;
}

/** Most SETs in one batch (well under the engine's batchOpsMax default of 10,000). */
const setBatchMax = 256;
/** Most key and value bytes in one batch (well under what one log write may carry). */
const setBatchBytesMax = 1024 * 1024;
/** Reply bytes due at which they are written at once rather than at the end of the turn. */
const outputEarlyBytes = 64 * 1024;

export class Connection {
  readonly client: ClientState;
  readonly #socket: Socket;
  readonly #server: ServerContext;
  readonly #dispatcher: Dispatcher;
  readonly #encoder: ReplyEncoder;
  readonly #starter: BatchStarter;
  readonly #parser: RequestParser;
  /** What plain SETs run with (connection.ts calls `plainSet` itself). */
  readonly #context: CommandContext;
  readonly #slots: Slot[] = [];
  #head = 0;
  #held: Prepared | null = null;
  /** Plain SETs gathered and not started yet. */
  #batch: RunPrepared[] = [];
  #batchBytes = 0;
  /** When the first SET of `#batch` arrived (its commit latency counts from there). */
  #batchSinceMs = 0;
  /** `#batch` waits for the starter. */
  #batchDeferred = false;
  readonly #startDeferred = (): void => {
    this.#batchDeferred = false;
    this.#startBatch();
  };
  #writesInFlight = 0;
  #othersInFlight = 0;
  /** Approximate bytes of settled replies not written yet. */
  #outputDue = 0;
  #outputScheduled = false;
  #outputBlocked = false;
  #stopped = false;
  #ending = false;
  #closed = false;
  #pumping = false;
  #pumpAgain = false;
  #yielding = false;
  #paused = false;
  readonly #closedPromise: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(
    socket: Socket,
    server: ServerContext,
    shared: ConnectionShared,
    client: ClientState,
  ) {
    this.#socket = socket;
    this.#server = server;
    this.#dispatcher = shared.dispatcher;
    this.#encoder = shared.encoder;
    this.#starter = shared.starter;
    this.client = client;
    this.#context = { server, client, requestId: null };
    this.#parser = new RequestParser(server.limits);
    this.#closedPromise = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      this.#outputBlocked = false;
      this.#pump();
    });
    socket.on('error', (error: Error) => {
      server.logger.debug('client.error', { client: client.id, error: error.message });
    });
    socket.on('close', () => this.#onClose());
  }

  /** Resolves once the socket closed. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  /**
   * Graceful stop (server shutdown): run no new command, let started ones complete and their
   * replies go out, then close. Commands received but not started are dropped unanswered.
   */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#held = null;
    this.#updateReading();
    this.#finishIfIdle();
    return this.#closedPromise;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#server.stats.netInputBytes += chunk.length;
    if (this.#stopped) return;
    this.#parser.push(chunk);
    this.#pump();
  }

  #onClose(): void {
    this.#closed = true;
    this.#stopped = true;
    this.#held = null;
    this.#resolveClosed();
  }

  /** Replies owed: started or gathered commands whose reply is not written yet. */
  #pending(): number {
    return this.#slots.length - this.#head + this.#batch.length;
  }

  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#pumpTurn();
      } while (this.#pumpAgain && !this.#yielding);
    } finally {
      this.#pumping = false;
    }
    this.#updateReading();
    this.#finishIfIdle();
  }

  /**
   * Parses and starts commands until one must wait, input runs out, or the turn is over; plain
   * SETs are gathered and start together when something else comes or the turn ends.
   */
  #pumpTurn(): void {
    const limits = this.#server.limits;
    let nowMs = -1;
    for (let started = 0; !this.#stopped && !this.#outputBlocked && !this.#yielding;) {
      if (this.#held === null) {
        if (this.#pending() >= limits.pipelineRepliesMax) break;
        const args = this.#parser.nextCommand();
        if (args === null) {
          const failure = this.#parser.failure;
          if (failure !== null) this.#protocolError(failure);
          break;
        }
        this.#held = this.#dispatcher.prepare(args);
      }
      const next = this.#held;
      if (nowMs < 0) nowMs = this.#server.clock.monotonicMs();
      if (this.#batchable(next)) {
        this.#held = null;
        this.#gather(next, nowMs);
      } else {
        this.#startBatch();
        if (!this.#mayStart(next)) break;
        this.#held = null;
        this.#execute(next, nowMs);
      }
      if (++started >= limits.commandsPerTurnMax) this.#yieldTurn();
    }
    if (this.#batch.length > 0 && !this.#batchDeferred) {
      this.#batchDeferred = true;
      this.#starter.defer(this.#startDeferred);
    }
  }

  #mayStart(next: Prepared): boolean {
    if (next.order === 'free') return true;
    if (this.#othersInFlight > 0) return false;
    return next.order === 'write' || this.#writesInFlight === 0;
  }

  /** Lets other connections run; this one continues on the next turn of the event loop. */
  #yieldTurn(): void {
    this.#yielding = true;
    setImmediate(() => {
      this.#yielding = false;
      this.#pump();
    });
  }

  /** May `next` join the batch being gathered? (It may start as a write would.) */
  #batchable(next: Prepared): next is RunPrepared {
    if (next.kind !== 'run' || !isPlainSet(next.spec, next.args, next.requestId)) return false;
    if (!this.client.authenticated || this.#othersInFlight > 0) return false;
    if (this.#batch.length >= setBatchMax || this.#batchBytes >= setBatchBytesMax) return false;
    return true;
  }

  #gather(prepared: RunPrepared, nowMs: number): void {
    if (this.#batch.length === 0) this.#batchSinceMs = nowMs;
    this.#batch.push(prepared);
    this.#batchBytes += prepared.args[1]!.length + prepared.args[2]!.length;
    this.#server.stats.recordCommand(nowMs, prepared.spec.name);
    this.client.commands++;
  }

  /** Starts the gathered SETs (if any): one alone as a put, several as one batch. */
  #startBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    const nowMs = this.#batchSinceMs;
    this.#batch = [];
    this.#batchBytes = 0;
    const slots = batch.map(() => this.#newSlot());
    if (batch.length === 1) {
      const only = batch[0]!;
      this.#track(slots[0]!, this.#putAlone(only), only, nowMs);
      return;
    }
    const operations = batch.map((prepared): BackendOperation => ({
      op: 'put',
      key: prepared.args[1]!,
      value: prepared.args[2]!,
    }));
    let result: Promise<BackendWriteResult>;
    try {
      result = this.#server.backend.batch(operations);
    } catch (error: unknown) {
      result = Promise.reject(error);
    }
    this.#othersInFlight++;
    result.then(
      (written) => this.#batchDone(slots, written.lsn, nowMs),
      (error: unknown) => this.#batchFailed(batch, slots, error, nowMs),
    );
  }

  #putAlone(prepared: RunPrepared): Promise<Reply> {
    try {
      return plainSet(this.#context, prepared.args[1]!, prepared.args[2]!);
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  #batchDone(slots: readonly Slot[], lsn: number, startedMs: number): void {
    this.#othersInFlight--;
    if (lsn > this.client.lastWriteLsn) this.client.lastWriteLsn = lsn;
    const nowMs = this.#server.clock.monotonicMs();
    const ok = reply.ok();
    for (const slot of slots) {
      this.#server.stats.recordWrite(nowMs, nowMs - startedMs);
      this.#settle(slot, ok);
    }
    this.#pump();
  }

  /**
   * A refused batch: INVALID means one SET (or the batch's size) was refused and nothing was
   * logged, so each SET runs again on its own and gets its own outcome. Nothing sent after the
   * batch has started (it held them back), so they still run in order.
   */
  #batchFailed(
    batch: readonly RunPrepared[],
    slots: readonly Slot[],
    error: unknown,
    startedMs: number,
  ): void {
    this.#othersInFlight--;
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'INVALID') {
      for (let index = 0; index < batch.length; index++) {
        const prepared = batch[index]!;
        this.#track(slots[index]!, this.#putAlone(prepared), prepared, startedMs);
      }
    } else {
      const failure = this.#dispatcher.failure(batch[0]!.spec, error);
      for (const slot of slots) this.#settle(slot, failure);
    }
    this.#pump();
  }

  #newSlot(): Slot {
    const slot: Slot = { reply: null, protocol: this.client.protocol, closeAfter: false };
    this.#slots.push(slot);
    return slot;
  }

  #execute(prepared: Prepared, nowMs: number): void {
    const slot = this.#newSlot();
    this.#server.stats.recordCommand(nowMs, prepared.kind === 'run' ? prepared.spec.name : null);
    const result = this.#dispatcher.run(prepared, this.client);
    slot.protocol = this.client.protocol;
    if (this.client.closeAfterReply) {
      slot.closeAfter = true;
      this.#stopped = true;
    }
    if (!(result instanceof Promise)) {
      this.#settle(slot, result);
      return;
    }
    // Only a command that runs returns a promise.
    this.#track(slot, result, prepared as RunPrepared, nowMs);
  }

  /** Waits for a started command's reply; it counts as in flight until then. */
  #track(slot: Slot, result: Promise<Reply>, prepared: RunPrepared, startedMs: number): void {
    const write = prepared.order === 'write';
    if (write) this.#writesInFlight++;
    else this.#othersInFlight++;
    result.then(
      (value) => this.#completed(slot, value, write, startedMs),
      (error: unknown) =>
        this.#completed(slot, this.#dispatcher.failure(prepared.spec, error), write, startedMs),
    );
  }

  #completed(slot: Slot, value: Reply, write: boolean, startedMs: number): void {
    if (write) {
      this.#writesInFlight--;
      if (value.type !== 'error') {
        const nowMs = this.#server.clock.monotonicMs();
        this.#server.stats.recordWrite(nowMs, nowMs - startedMs);
      }
    } else {
      this.#othersInFlight--;
    }
    this.#settle(slot, value);
    this.#pump();
  }

  #settle(slot: Slot, value: Reply): void {
    if (value.type === 'error') this.#server.stats.errorReplies++;
    slot.reply = value;
    if (slot !== this.#slots[this.#head]) return;
    this.#outputDue += value.type === 'bulk' ? value.value.length : 16;
    if (this.#outputDue >= outputEarlyBytes) {
      this.#writeOutput();
    } else if (!this.#outputScheduled) {
      this.#outputScheduled = true;
      process.nextTick(this.#writeScheduled);
    }
  }

  readonly #writeScheduled = (): void => {
    this.#outputScheduled = false;
    this.#writeOutput();
    // Replies went out: commands held back by the bound on outstanding replies may start.
    this.#pump();
  };

  /** Encodes and writes every settled reply at the head of the queue, in order. */
  #writeOutput(): void {
    this.#outputDue = 0;
    const encoder = this.#encoder;
    let closeAfter = false;
    while (this.#head < this.#slots.length && !closeAfter) {
      const slot = this.#slots[this.#head]!;
      if (slot.reply === null) break;
      this.#head++;
      if (!this.#closed) encoder.add(slot.reply, slot.protocol);
      slot.reply = null;
      closeAfter = slot.closeAfter;
    }
    this.#compactSlots();
    const chunks = this.#closed ? [] : encoder.take();
    if (chunks.length > 1) this.#socket.cork();
    for (const chunk of chunks) {
      this.#server.stats.netOutputBytes += chunk.length;
      if (!this.#socket.write(chunk)) this.#outputBlocked = true;
    }
    if (chunks.length > 1) this.#socket.uncork();
    if (closeAfter) {
      this.#stopped = true;
      this.#end();
    }
  }

  #compactSlots(): void {
    if (this.#head === this.#slots.length) {
      this.#slots.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#slots.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #protocolError(message: string): void {
    this.#server.stats.protocolErrors++;
    this.#server.logger.info('client.protocol-error', { client: this.client.id, message });
    // The commands before the malformed one run, and are answered before the error.
    this.#startBatch();
    this.#stopped = true;
    this.#held = null;
    const slot = this.#newSlot();
    slot.closeAfter = true;
    this.#settle(slot, { type: 'error', value: `ERR ${message}` });
  }

  #updateReading(): void {
    const wanted =
      !this.#stopped &&
      !this.#outputBlocked &&
      !this.#yielding &&
      this.#held === null &&
      this.#pending() < this.#server.limits.pipelineRepliesMax;
    if (wanted && this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    } else if (!wanted && !this.#paused && !this.#closed) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  /** After a stop, closes the socket once nothing is in flight and every reply went out. */
  #finishIfIdle(): void {
    if (!this.#stopped || this.#closed) return;
    if (this.#writesInFlight > 0 || this.#othersInFlight > 0 || this.#pending() > 0) return;
    this.#end();
  }

  /**
   * Sends what is queued, then closes. The socket is destroyed once the data is handed to the
   * kernel, so a client that never closes its side cannot keep the connection half-open.
   */
  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#socket.end(() => this.#socket.destroy());
  }
}
