/**
 * `syncwal` child processes for the server tests: spawned on 127.0.0.1 through tsx, their
 * output collected line by line, waits driven by their output (never by sleeping), and every
 * process a test started stopped by pid afterwards (`stopStarted`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { removeTemporary, temporaryDirectory } from './helpers.js';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const entry = join(repositoryRoot, 'src', 'cli', 'syncwal.ts');
export const startupMs = 60_000;

export interface Started {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
  /** Resolves with the first stdout line (past or future) that matches. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const started: Started[] = [];
const directories: string[] = [];

/** Starts `syncwal <args>` with `env` on top of this environment (minus SYNCWAL_*). */
export function syncwal(args: readonly string[], env: NodeJS.ProcessEnv = {}): Started {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('SYNCWAL_')),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: repositoryRoot,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout.push(line);
    for (const waiter of waiters.filter((each) => each.pattern.test(line))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = (pattern: RegExp, timeoutMs = startupMs): Promise<string> => {
    const seen = stdout.find((each) => pattern.test(each));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`no line ${pattern} in ${timeoutMs} ms:\n${[...stdout, ...stderr].join('\n')}`),
        );
      }, timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`exited before ${pattern}:\n${[...stdout, ...stderr].join('\n')}`));
      };
      void exited.then(onExit);
      waiters.push({
        pattern,
        resolve: (found) => {
          clearTimeout(timer);
          resolve(found);
        },
      });
    });
  };
  const result = { child, stdout, stderr, exited, line };
  started.push(result);
  return result;
}

/** The JSON log line of the first `event` the process logs (with --log-format json). */
export async function logged(process: Started, event: string): Promise<Record<string, unknown>> {
  const escaped = event.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const line = await process.line(new RegExp(`"event":"${escaped}"`));
  return JSON.parse(line) as Record<string, unknown>;
}

/** Waits for exit (bounded); SIGKILLs it on timeout. */
export async function exitCode(process: Started, timeoutMs = startupMs): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([process.exited, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    process.child.kill('SIGKILL');
    throw new Error(`still running after ${timeoutMs} ms`);
  }
  return outcome;
}

/** A temporary directory removed by `removeDirectories`. */
export function directory(prefix: string): string {
  const dir = temporaryDirectory(prefix);
  directories.push(dir);
  return dir;
}

/** SIGKILLs (by pid) every process started since the last call that still runs. */
export async function stopStarted(): Promise<void> {
  for (const each of started.splice(0)) {
    if (each.child.exitCode === null && each.child.signalCode === null) {
      each.child.kill('SIGKILL');
      await each.exited;
    }
  }
}

export function removeDirectories(): void {
  for (const dir of directories.splice(0)) removeTemporary(dir);
}

/** An ioredis client connected to 127.0.0.1:`port` that does not reconnect. */
export async function redisOn(port: number): Promise<Redis> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  await redis.connect();
  return redis;
}
