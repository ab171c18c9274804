import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

/**
 * A small RESP client: a reply parser for RESP2 and RESP3 and a connection that sends
 * commands and matches replies in order. `syncwal status` and `syncwal cluster` use it to ask
 * a node about itself; tests use it to speak raw RESP. Not a general-purpose Redis client.
 */

export class RespErrorReply {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
  /** The error prefix: `ERR`, `NOAUTH`, `READONLY`, ... */
  get prefix(): string {
    return this.message.split(' ', 1)[0] ?? '';
  }
}

export type RespValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | RespErrorReply
  | RespValue[]
  | Map<string, RespValue>;

interface Frame {
  kind: 'array' | 'map';
  remaining: number;
  items: RespValue[];
}

/** Text of a reply that is a string or bulk string; null otherwise. */
export function replyText(value: RespValue): string | null {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return null;
}

function finish(frame: Frame): RespValue {
  if (frame.kind === 'array') return frame.items;
  const map = new Map<string, RespValue>();
  for (let index = 0; index + 1 < frame.items.length; index += 2) {
    map.set(replyText(frame.items[index]!) ?? String(frame.items[index]), frame.items[index + 1]!);
  }
  return map;
}

/**
 * Parses one reply starting at `offset`: the value and the offset after it, or null if the
 * buffer ends first. Throws on a malformed reply. Aggregates use an explicit stack (no
 * recursion), bounded by `depthMax`.
 */
export function parseReply(
  buffer: Buffer,
  offset: number,
  limits: { bulkBytesMax: number; depthMax: number } = { bulkBytesMax: 1 << 29, depthMax: 32 },
): { value: RespValue; next: number } | null {
  const stack: Frame[] = [];
  let position = offset;
  for (;;) {
    const end = buffer.indexOf('\r\n', position);
    if (end < 0) return null;
    const type = String.fromCharCode(buffer[position]!);
    const line = buffer.toString('utf8', position + 1, end);
    position = end + 2;
    let value: RespValue;
    if (type === '*' || type === '%' || type === '~' || type === '>') {
      const count = Number(line);
      if (!Number.isSafeInteger(count) || count < -1) throw new Error(`bad aggregate ${line}`);
      if (count === -1) value = null;
      else if (count === 0) value = type === '%' ? new Map() : [];
      else {
        if (stack.length >= limits.depthMax) throw new Error('reply nested too deeply');
        const kind = type === '%' ? 'map' : 'array';
        stack.push({ kind, remaining: kind === 'map' ? count * 2 : count, items: [] });
        continue;
      }
    } else if (type === '$' || type === '=' || type === '!') {
      const length = Number(line);
      if (!Number.isSafeInteger(length) || length < -1 || length > limits.bulkBytesMax) {
        throw new Error(`bad bulk length ${line}`);
      }
      if (length === -1) value = null;
      else {
        if (buffer.length < position + length + 2) return null;
        const bytes = buffer.subarray(position, position + length);
        position += length + 2;
        if (type === '$') value = Buffer.from(bytes);
        else if (type === '=') value = bytes.toString('utf8', 4);
        else value = new RespErrorReply(bytes.toString('utf8'));
      }
    } else {
      value = parseSimple(type, line);
    }
    for (;;) {
      const top = stack.at(-1);
      if (top === undefined) return { value, next: position };
      top.items.push(value);
      top.remaining--;
      if (top.remaining > 0) break;
      stack.pop();
      value = finish(top);
    }
  }
}

function parseSimple(type: string, line: string): RespValue {
  switch (type) {
    case '+':
      return line;
    case '-':
      return new RespErrorReply(line);
    case ':':
    case '(':
      return BigInt(line);
    case '_':
      return null;
    case '#':
      return line === 't';
    case ',':
      return Number(line);
    default:
      throw new Error(`unknown reply type '${type}'`);
  }
}

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export interface RespClientOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Reject a call that has no reply after this long (default 10 s). */
  timeoutMs?: number;
}

interface Waiter {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
}

export class RespClient {
  readonly #socket: Socket;
  readonly #waiters: Waiter[] = [];
  readonly #timeoutMs: number;
  #buffer: Buffer = Buffer.alloc(0);
  #failure: Error | null = null;

  private constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error: Error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  static connect(options: RespClientOptions): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 10_000;
      const socket =
        options.tls === true
          ? connectTls({ host: options.host, port: options.port, rejectUnauthorized: false })
          : connectTcp({ host: options.host, port: options.port });
      const ready = options.tls === true ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to ${options.host}:${options.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new RespClient(socket, timeoutMs));
      });
    });
  }

  /** Sends one command; resolves with its reply (an error reply resolves as RespErrorReply). */
  call(...args: (string | Buffer)[]): Promise<RespValue> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new Error(`no reply to ${String(args[0])} in ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiters.push({
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    try {
      for (let parsed = parseReply(this.#buffer, offset); parsed !== null;) {
        offset = parsed.next;
        this.#waiters.shift()?.resolve(parsed.value);
        parsed = offset < this.#buffer.length ? parseReply(this.#buffer, offset) : null;
      }
    } catch (error: unknown) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#buffer = this.#buffer.subarray(offset);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#socket.destroy();
  }
}
