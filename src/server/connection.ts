import type { Socket } from 'node:net';
import type { ClientState, ServerContext } from './context.js';
import type { Dispatcher, Prepared } from './dispatch.js';
import { RequestParser } from './resp/parser.js';
import { encodeReply, type Reply } from './resp/reply.js';

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
  data: Buffer | null;
  closeAfter: boolean;
}

export class Connection {
  readonly client: ClientState;
  readonly #socket: Socket;
  readonly #server: ServerContext;
  readonly #dispatcher: Dispatcher;
  readonly #parser: RequestParser;
  readonly #slots: Slot[] = [];
  #head = 0;
  #held: Prepared | null = null;
  #writesInFlight = 0;
  #othersInFlight = 0;
  #outputBlocked = false;
  #corked = false;
  #stopped = false;
  #ending = false;
  #closed = false;
  #pumping = false;
  #pumpAgain = false;
  #yielding = false;
  #paused = false;
  readonly #closedPromise: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(socket: Socket, server: ServerContext, dispatcher: Dispatcher, client: ClientState) {
    this.#socket = socket;
    this.#server = server;
    this.#dispatcher = dispatcher;
    this.client = client;
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

  #pending(): number {
    return this.#slots.length - this.#head;
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

  /** Parses and starts commands until one must wait, input runs out, or the turn is over. */
  #pumpTurn(): void {
    const limits = this.#server.limits;
    for (let started = 0; !this.#stopped && !this.#outputBlocked && !this.#yielding;) {
      if (this.#held === null) {
        if (this.#pending() >= limits.pipelineRepliesMax) return;
        const parsed = this.#parser.next();
        if (parsed.kind === 'incomplete') return;
        if (parsed.kind === 'error') {
          this.#protocolError(parsed.message);
          return;
        }
        this.#held = this.#dispatcher.prepare(parsed.args);
      }
      const next = this.#held;
      const mayStart =
        next.order === 'free' ||
        (this.#othersInFlight === 0 && (next.order === 'write' || this.#writesInFlight === 0));
      if (!mayStart) return;
      this.#held = null;
      this.#execute(next);
      if (++started >= limits.commandsPerTurnMax) this.#yieldTurn();
    }
  }

  /** Lets other connections run; this one continues on the next turn of the event loop. */
  #yieldTurn(): void {
    this.#yielding = true;
    setImmediate(() => {
      this.#yielding = false;
      this.#pump();
    });
  }

  #execute(prepared: Prepared): void {
    const slot: Slot = { data: null, closeAfter: false };
    this.#slots.push(slot);
    const clock = this.#server.clock;
    const startedMs = clock.monotonicMs();
    const name = prepared.kind === 'run' ? prepared.spec.name : null;
    this.#server.stats.recordCommand(startedMs, name);
    const result = this.#dispatcher.run(prepared, this.client);
    if (this.client.closeAfterReply) {
      slot.closeAfter = true;
      this.#stopped = true;
    }
    if (!(result instanceof Promise)) {
      this.#settle(slot, result);
      return;
    }
    const write = prepared.order === 'write';
    if (write) this.#writesInFlight++;
    else this.#othersInFlight++;
    void result.then((value) => {
      if (write) {
        this.#writesInFlight--;
        const nowMs = clock.monotonicMs();
        if (value.type !== 'error') this.#server.stats.recordWrite(nowMs, nowMs - startedMs);
      } else {
        this.#othersInFlight--;
      }
      this.#settle(slot, value);
      this.#pump();
    });
  }

  #settle(slot: Slot, value: Reply): void {
    if (value.type === 'error') this.#server.stats.errorReplies++;
    slot.data = encodeReply(value, this.client.protocol);
    this.#flush();
  }

  /** Writes every settled reply at the head of the queue, in order. */
  #flush(): void {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head]!;
      if (slot.data === null) break;
      this.#head++;
      if (this.#closed) continue;
      this.#write(slot.data);
      if (slot.closeAfter) {
        this.#stopped = true;
        this.#end();
      }
    }
    if (this.#head === this.#slots.length) {
      this.#slots.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#slots.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Writes, coalescing everything written in one tick into one syscall (cork/uncork). */
  #write(data: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#server.stats.netOutputBytes += data.length;
    if (!this.#socket.write(data)) this.#outputBlocked = true;
  }

  #protocolError(message: string): void {
    this.#server.stats.protocolErrors++;
    this.#server.logger.info('client.protocol-error', { client: this.client.id, message });
    this.#stopped = true;
    this.#held = null;
    const slot: Slot = { data: null, closeAfter: true };
    this.#slots.push(slot);
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
