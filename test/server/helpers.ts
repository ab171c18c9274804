/**
 * Shared parts of the server tests: a RESP server over a real node in a temporary directory
 * (or over any backend), raw sockets with bounded waits, and removal of what a test started.
 * Everything listens on 127.0.0.1 with a port the OS picks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openNode } from '../../src/index.js';
import type { ServerBackend } from '../../src/server/backend.js';
import type { ServerClock, ServerLimits } from '../../src/server/context.js';
import { RespClient } from '../../src/server/resp/client.js';
import { RespServer, type RespServerOptions } from '../../src/server/server.js';
import type { SyncwalNode } from '../../src/engine/node.js';

export const testClock: ServerClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

export function temporaryDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `syncwal-${prefix}-`));
}

/** Removes a temporary directory this process created (never anything else). */
export function removeTemporary(path: string): void {
  if (relative(tmpdir(), path).startsWith('..')) throw new Error(`not a temp dir: ${path}`);
  rmSync(path, { recursive: true, force: true });
}

export interface Running {
  server: RespServer;
  port: number;
  stop(): Promise<void>;
}

export interface RunningNode extends Running {
  node: SyncwalNode;
  dir: string;
}

export async function startBackendServer(
  backend: ServerBackend,
  options: Partial<RespServerOptions> = {},
): Promise<Running> {
  const server = new RespServer({
    backend,
    host: '127.0.0.1',
    port: 0,
    clock: testClock,
    version: 'test',
    ...options,
  });
  const { port } = await server.listen();
  return { server, port, stop: () => server.close({ timeoutMs: 5_000 }) };
}

/** A server over a real node in a fresh temporary directory. */
export async function startNodeServer(
  options: Partial<RespServerOptions> & { limits?: Partial<ServerLimits> } = {},
): Promise<RunningNode> {
  const dir = temporaryDirectory('server');
  const node = await openNode({ dir: join(dir, 'n1'), segmentSizeBytes: 1024 * 1024 });
  const running = await startBackendServer(node, options);
  return {
    ...running,
    node,
    dir,
    stop: async () => {
      await running.stop();
      await node.close();
      removeTemporary(dir);
    },
  };
}

export function client(port: number): Promise<RespClient> {
  return RespClient.connect({ host: '127.0.0.1', port, timeoutMs: 20_000 });
}

/** A raw socket, connected. */
export function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('error', reject);
    socket.once('connect', () => resolve(socket));
  });
}

/** Everything the server sends until it closes the connection (bounded wait). */
export function readUntilClosed(socket: Socket, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** Reads from `socket` until `bytes` have arrived (bounded wait). */
export function readBytes(socket: Socket, bytes: number, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`got ${total} of ${bytes} bytes in ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total < bytes) return;
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`closed after ${total} of ${bytes} bytes`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Waits until `predicate` holds, checking on each turn of the event loop (bounded). */
export async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
