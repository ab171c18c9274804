/**
 * The Redis command-line tools against the server: redis-cli scripted (every command a shell
 * user would type, `--scan`, `-3` for RESP3) and redis-benchmark with pipelining. Skipped, with
 * a printed notice, when the tools are not installed (Debian: redis-tools; .ci/run installs it).
 */
import { execFile, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeServer, type RunningNode } from './helpers.js';

function installed(tool: string): boolean {
  const found = spawnSync(tool, ['--version'], { encoding: 'utf8' }).status === 0;
  if (!found) console.log(`notice: ${tool} is not installed; its tests are skipped`);
  return found;
}

const hasRedisCli = installed('redis-cli');
const hasRedisBenchmark = installed('redis-benchmark');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool with a bounded time, optionally feeding `input` on stdin. */
function run(tool: string, args: readonly string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool,
      [...args],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        if (error !== null && status === null) {
          reject(error);
          return;
        }
        resolve({ status, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

let running: RunningNode;

beforeAll(async () => {
  running = await startNodeServer();
});

afterAll(async () => {
  await running.stop();
});

describe.skipIf(!hasRedisCli)('redis-cli', () => {
  const cli = (...args: string[]) =>
    run('redis-cli', ['-h', '127.0.0.1', '-p', String(running.port), ...args]);

  it('runs a script of commands', async () => {
    const script = [
      'PING',
      'SET greeting "hello world"',
      'GET greeting',
      'MSET a 1 b 2',
      'MGET a b nope',
      'INCR counter',
      'INCRBY counter 41',
      'DECR counter',
      'EXISTS a b nope',
      'DEL a',
      'DBSIZE',
      'SET once x RID cli-1',
      'STATUS cli-1',
      'RID cli-2 INCR counter',
      'WAIT 0 0',
      'ROLE',
      'CONFIG GET acks',
      'FAILOVER',
      'NOSUCH',
    ].join('\n');
    const scripted = await run(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(running.port)],
      `${script}\n`,
    );
    expect(scripted.status).toBe(0);
    const lines = scripted.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 14)).toEqual([
      'PONG',
      'OK',
      'hello world',
      'OK',
      '1',
      '2',
      '',
      '1',
      '42',
      '41',
      '2',
      '1',
      '3',
      'OK',
    ]);
    expect(lines.slice(14, 18)).toEqual([
      'status',
      'committed',
      'lsn',
      expect.stringMatching(/^\d+$/),
    ]);
    expect(lines[18]).toBe('42');
    expect(lines[19]).toBe('0');
    expect(lines[20]).toBe('master');
    expect(scripted.stdout).toContain('acks\nquorum\n');
    expect(scripted.stdout).toContain('ERR FAILOVER is not supported on a single node');
    expect(scripted.stdout).toContain("ERR unknown command 'NOSUCH'");
  });

  it('scans with --scan and speaks RESP3 with -3', async () => {
    await cli('MSET', 'scan:1', 'a', 'scan:2', 'b', 'other', 'c');
    const scan = await cli('--scan', '--pattern', 'scan:*');
    expect(scan.stdout.trim().split('\n').sort()).toEqual(['scan:1', 'scan:2']);
    const resp3 = await cli('-3', 'HELLO', '3');
    expect(resp3.stdout).toContain('proto');
    const info = await cli('INFO', 'replication');
    expect(info.stdout).toMatch(/role:master/);
    const missing = await cli('-3', 'GET', 'nope');
    expect(missing.status).toBe(0);
    expect(missing.stdout.trim()).toBe(''); // RESP3 null, printed empty when not on a TTY
  });
});

describe.skipIf(!hasRedisBenchmark)('redis-benchmark', () => {
  it('completes set, get, incr and mset with -P 16 and no error', async () => {
    const before = running.server.context.stats.errorReplies;
    const result = await run('redis-benchmark', [
      '-h',
      '127.0.0.1',
      '-p',
      String(running.port),
      '-t',
      'set,get,incr,mset',
      '-P',
      '16',
      '-n',
      '2000',
      '-q',
    ]);
    expect(result.status).toBe(0);
    const output = result.stdout + result.stderr;
    expect(output).not.toMatch(/error/i);
    for (const test of ['SET', 'GET', 'INCR', 'MSET']) {
      expect(output).toMatch(new RegExp(`${test}[^\\n]*: [\\d.]+ requests per second`));
    }
    expect(running.server.context.stats.errorReplies).toBe(before);
  });
});
