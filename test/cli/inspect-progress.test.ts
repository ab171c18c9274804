/**
 * Progress bars: drawn only into a sink that stands for a terminal, never into the command's
 * output. The golden tests (wal-inspect.test.ts) check that a piped stderr gets none.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProgressBar, renderProgress, type ProgressSink } from '../../src/cli/inspect-progress.js';
import { main } from '../../src/cli/wal-inspect.js';

function capture() {
  const lines = { out: [] as string[], err: [] as string[] };
  const output = {
    out: (line: string) => lines.out.push(line),
    err: (line: string) => lines.err.push(line),
  };
  return { lines, output };
}

function fakeTerminal(columns: number) {
  const writes: string[] = [];
  const sink: ProgressSink = { write: (text) => writes.push(text), columns };
  return { sink, writes };
}

describe('progress bar rendering', () => {
  it('fits the terminal width, so `\\r` can redraw it', () => {
    for (const columns of [20, 40, 80, 200]) {
      const line = renderProgress('verify', 512 * 1024, 3 * 1024 * 1024, columns);
      expect([...line].length).toBeLessThan(columns);
    }
    expect(renderProgress('stats', 50, 100, 80)).toBe(
      'stats [####################--------------------]  50.0% 50 B/100 B',
    );
  });

  it('redraws only when the shown value changes, and clears its line when done', () => {
    const { sink, writes } = fakeTerminal(80);
    const bar = new ProgressBar(sink, 'dump', 10_000);
    for (let done = 0; done <= 10_000; done++) bar.update(done);
    expect(writes).toHaveLength(1001);
    expect(writes.every((text) => text.startsWith('\r'))).toBe(true);
    bar.finish();
    expect(writes.at(-1)).toBe('\r\u001b[K');
  });
});

describe('wal-inspect with a terminal on stderr', () => {
  const commands: readonly (readonly string[])[] = [
    ['verify', 'fixtures/clean'],
    ['stats', 'fixtures/clean'],
    ['dump', 'fixtures/clean'],
    ['diff', 'fixtures/clean', 'fixtures/state-checkpoint'],
    ['state', 'fixtures/state-checkpoint'],
  ];
  for (const args of commands) {
    it(`${args.join(' ')} draws a bar on the terminal and leaves the output alone`, async () => {
      const { sink, writes } = fakeTerminal(72);
      const withBar = capture();
      const code = await main(args, withBar.output, { progress: sink });
      const plain = capture();
      expect(await main(args, plain.output, { progress: null })).toBe(code);
      expect(withBar.lines).toEqual(plain.lines);
      expect(writes.length).toBeGreaterThan(1);
      // Each bar (diff draws one per log) only moves forward, and is cleared when it is done.
      const bars = writes.join('').split('\r\u001b[K').slice(0, -1);
      expect(bars).toHaveLength(args[0] === 'diff' ? 2 : 1);
      for (const bar of bars) {
        const percents = [...bar.matchAll(/(\d+\.\d)%/g)].map((match) => Number(match[1]));
        expect(percents.length).toBeGreaterThan(1);
        expect(percents).toEqual([...percents].sort((left, right) => left - right));
        expect(percents.at(-1)).toBeGreaterThan(30);
      }
      expect(writes.at(-1)).toBe('\r\u001b[K');
      for (const text of writes) expect([...text].length).toBeLessThanOrEqual(72);
    });
  }

  it('matches the golden output when run in-process', async () => {
    const run = capture();
    expect(await main(['verify', 'fixtures/clean'], run.output, { progress: null })).toBe(0);
    expect(`${run.lines.out.join('\n')}\n`).toBe(
      readFileSync('fixtures/clean.verify.expected', 'utf8'),
    );
  });
});
