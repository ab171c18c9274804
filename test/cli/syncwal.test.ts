import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/syncwal.js';

function capture() {
  const lines = { out: [] as string[], err: [] as string[] };
  return {
    lines,
    output: {
      out: (line: string) => lines.out.push(line),
      err: (line: string) => lines.err.push(line),
    },
  };
}

describe('syncwal command', () => {
  it('runs wal-inspect as `syncwal inspect`, with its exit codes', async () => {
    const clean = capture();
    expect(await main(['inspect', 'verify', 'fixtures/clean'], clean.output)).toBe(0);
    expect(clean.lines.out.join('\n')).toMatch(/^clean: 3 segments/);
    const torn = capture();
    expect(await main(['inspect', 'verify', '--json', 'fixtures/torn-tail'], torn.output)).toBe(1);
    expect(JSON.parse(torn.lines.out.join('\n'))).toMatchObject({ status: 'torn' });
    const corrupt = capture();
    expect(await main(['inspect', 'verify', 'fixtures/bit-flip'], corrupt.output)).toBe(2);
  });

  it('prints its version, and exits 64 on usage errors', async () => {
    const version = capture();
    expect(await main(['--version'], version.output)).toBe(0);
    expect(version.lines.out.join('')).toMatch(/^\d+\.\d+\.\d+/);
    expect(await main(['no-such-command'], capture().output)).toBe(64);
    expect(await main([], capture().output)).toBe(64);
  });
});
