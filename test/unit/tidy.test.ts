import { describe, expect, it } from 'vitest';
import {
  checkAbsolutePaths,
  checkCorePurity,
  checkFile,
  checkFocusedTests,
  checkFunctionLength,
  checkImports,
  checkLineLength,
  checkNondeterminism,
  classifyImport,
  functionBodyLinesMax,
  layerOf,
  lineColumnsMax,
  rules,
  rulesFor,
} from '../../tools/tidy.js';

/** The rule names reported for `text` at `file`, with their lines, in order. */
function fired(file: string, text: string): string[] {
  return checkFile(file, text).map((violation) => `${violation.rule}@${violation.line}`);
}

/** A function whose body spans `lines` lines, braces included. */
function functionWithBody(lines: number): string {
  const statements = Array.from({ length: lines - 2 }, (_, index) => `  const a${index} = 1;`);
  return ['export function long(): void {', ...statements, '}', ''].join('\n');
}

describe('tidy rule table', () => {
  it('gives every rule a name, a reason and a scope', () => {
    const names = new Set(rules.map((rule) => rule.name));
    expect(names.size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.reason.length).toBeGreaterThan(10);
      expect(rule.include.length).toBeGreaterThan(0);
      expect(rule.suffixes.length).toBeGreaterThan(0);
    }
  });

  it('scopes rules by path', () => {
    const names = (file: string): string[] => rulesFor(file).map((rule) => rule.name);
    expect(names('src/core/a.ts')).toContain('core-purity');
    expect(names('src/storage/a.ts')).not.toContain('core-purity');
    expect(names('src/node/disk.ts')).not.toContain('ambient-nondeterminism');
    expect(names('test/unit/a.test.ts')).toEqual(
      expect.arrayContaining(['line-length', 'no-focused-tests']),
    );
    expect(names('test/unit/a.test.ts')).not.toContain('function-length');
    expect(names('fixtures/clean.expected')).toEqual(['no-absolute-paths']);
    expect(names('fixtures/clean/00000001.seg')).toEqual([]);
    expect(names('README.md')).toEqual(['no-absolute-paths']);
    expect(names('package.json')).toEqual([]);
  });
});

describe('line-length', () => {
  it('fires past the limit and not at it', () => {
    const atLimit = 'x'.repeat(lineColumnsMax);
    const overLimit = 'y'.repeat(lineColumnsMax + 1);
    const violations = checkLineLength('tools/a.ts', `${atLimit}\n${overLimit}\n`);
    expect(violations.map((violation) => violation.line)).toEqual([2]);
    expect(violations[0]!.message).toContain(`${lineColumnsMax + 1} columns`);
  });

  it('counts characters, not UTF-16 code units or a trailing CR', () => {
    const text = `${'─'.repeat(lineColumnsMax)}\r\n${'😀'.repeat(lineColumnsMax)}\n`;
    expect(checkLineLength('src/a.ts', text)).toEqual([]);
  });

  it('lets a URL overflow', () => {
    const text = `// See https://example.com/${'a'.repeat(lineColumnsMax)}\n`;
    expect(checkLineLength('src/a.ts', text)).toEqual([]);
  });

  it('applies to bench/ but not to docs/', () => {
    const long = `${'z'.repeat(lineColumnsMax + 1)}\n`;
    expect(fired('bench/lib.ts', long)).toEqual(['line-length@1']);
    expect(fired('docs/format.md', long)).toEqual([]);
  });
});

describe('function-length', () => {
  it('fires when a body is longer than the limit', () => {
    const violations = checkFunctionLength('src/a.ts', functionWithBody(functionBodyLinesMax + 1));
    expect(violations).toHaveLength(1);
    expect(violations[0]!.line).toBe(1);
    expect(violations[0]!.message).toContain(`'long' body is ${functionBodyLinesMax + 1} lines`);
  });

  it('does not fire at the limit', () => {
    expect(checkFunctionLength('src/a.ts', functionWithBody(functionBodyLinesMax))).toEqual([]);
  });

  it('checks methods, constructors and arrow functions, and names them', () => {
    const body = Array.from({ length: functionBodyLinesMax }, () => '    void 0;').join('\n');
    const text = [
      'class Log {',
      `  constructor() {\n${body}\n  }`,
      `  append(): void {\n${body}\n  }`,
      '}',
      `const scan = () => {\n${body}\n};`,
    ].join('\n');
    const messages = checkFunctionLength('src/a.ts', text).map((violation) => violation.message);
    expect(messages).toHaveLength(3);
    expect(messages[0]).toContain("'constructor'");
    expect(messages[1]).toContain("'append'");
    expect(messages[2]).toContain("'scan'");
  });

  it('applies to src/ only', () => {
    const text = functionWithBody(functionBodyLinesMax + 10);
    expect(fired('test/unit/a.test.ts', text)).toEqual([]);
    expect(fired('src/storage/a.ts', text)).toEqual(['function-length@1']);
  });
});

describe('import-direction', () => {
  const violations = (file: string, specifier: string): string[] =>
    checkImports(file, `import { x } from '${specifier}';\n`).map((v) => v.message);

  it('classifies import targets', () => {
    expect(layerOf('src/core/format/frame.ts')).toBe('core');
    expect(layerOf('src/index.ts')).toBe('(root)');
    expect(layerOf('test/unit/a.test.ts')).toBeNull();
    expect(classifyImport('src/core/format/frame.ts', '../assert.js')).toEqual({
      kind: 'src',
      path: 'src/core/assert.js',
      layer: 'core',
    });
    expect(classifyImport('src/core/a.ts', 'zlib')).toEqual({ kind: 'builtin', name: 'node:zlib' });
    expect(classifyImport('src/a.ts', '@types/node/fs')).toEqual({
      kind: 'package',
      name: '@types/node',
    });
  });

  it('keeps src/core pure', () => {
    expect(violations('src/core/format/frame.ts', '../assert.js')).toEqual([]);
    expect(violations('src/core/checksum.ts', 'crc-32')).toEqual([]);
    expect(violations('src/core/checksum.ts', 'node:zlib')).toEqual([]);
    expect(violations('src/core/limits.ts', 'node:zlib')).toHaveLength(1);
    expect(violations('src/core/limits.ts', 'node:fs')).toHaveLength(1);
    expect(violations('src/core/limits.ts', 'fs')).toHaveLength(1);
    expect(violations('src/core/limits.ts', 'commander')).toHaveLength(1);
    expect(violations('src/core/limits.ts', '../ports/disk.js')).toHaveLength(1);
    expect(violations('src/core/limits.ts', '../../test/helpers.js')).toHaveLength(1);
  });

  it('lets ports import only core', () => {
    expect(violations('src/ports/disk.ts', '../core/errors.js')).toEqual([]);
    expect(violations('src/ports/transport.ts', './disk.js')).toEqual([]);
    expect(violations('src/ports/disk.ts', '../storage/log.js')).toHaveLength(1);
    expect(violations('src/ports/disk.ts', 'node:fs')).toHaveLength(1);
  });

  it('keeps storage off adapters, replication and the engine', () => {
    expect(violations('src/storage/log.ts', '../core/format/frame.js')).toEqual([]);
    expect(violations('src/storage/log.ts', '../ports/disk.js')).toEqual([]);
    expect(violations('src/storage/log.ts', './segment-name.js')).toEqual([]);
    for (const layer of ['node', 'sim', 'replication', 'engine']) {
      expect(violations('src/storage/log.ts', `../${layer}/x.js`)).toHaveLength(1);
    }
  });

  it('lets adapters import only core and ports (and their own layer)', () => {
    expect(violations('src/node/disk.ts', '../ports/disk.js')).toEqual([]);
    expect(violations('src/node/disk.ts', 'fs-ext')).toEqual([]);
    expect(violations('src/sim/cluster.ts', './disk.js')).toEqual([]);
    expect(violations('src/sim/disk.ts', '../storage/log.js')).toHaveLength(1);
    expect(violations('src/node/disk.ts', '../sim/disk.js')).toHaveLength(1);
  });

  it('allows src/node only from the composition root and the CLI', () => {
    expect(violations('src/index.ts', './node/disk.js')).toEqual([]);
    expect(violations('src/cli/wal-inspect.ts', '../node/disk.js')).toEqual([]);
    expect(violations('src/cli/wal-inspect.ts', '../storage/scan-log.js')).toEqual([]);
    expect(violations('src/cli/wal-inspect.ts', '../engine/engine.js')).toHaveLength(1);
    expect(violations('src/engine/engine.ts', '../node/disk.js')).toHaveLength(1);
    expect(violations('src/engine/engine.ts', '../replication/peer.js')).toEqual([]);
    expect(violations('src/engine/engine.ts', '../sim/disk.js')).toHaveLength(1);
    // A directory with no row in the layer table still may not reach the real adapters.
    expect(violations('src/tools/x.ts', '../node/transport.js')).toHaveLength(1);
    expect(violations('src/tools/x.ts', '../engine/engine.js')).toEqual([]);
  });

  it('keeps the server on its backend port, and lets the CLI compose it', () => {
    expect(violations('src/server/server.ts', '../ports/logger.js')).toEqual([]);
    expect(violations('src/server/server.ts', '../core/errors.js')).toEqual([]);
    expect(violations('src/server/server.ts', 'hdr-histogram-js')).toEqual([]);
    expect(violations('src/server/server.ts', '../node/transport.js')).toHaveLength(1);
    expect(violations('src/server/server.ts', '../engine/node.js')).toHaveLength(1);
    expect(violations('src/server/server.ts', '../index.js')).toHaveLength(1);
    expect(violations('src/cli/serve.ts', '../server/server.js')).toEqual([]);
    expect(violations('src/cli/serve.ts', '../index.js')).toEqual([]);
  });

  it('sees every form of import', () => {
    const text = [
      "import type { Disk } from '../node/a.js';",
      "export { x } from '../node/b.js';",
      "export * from '../node/c.js';",
      "const lazy = await import('../node/d.js');",
      "type T = import('../node/e.js').T;",
      "import f = require('../node/f.js');",
    ].join('\n');
    const lines = checkImports('src/storage/a.ts', text).map((violation) => violation.line);
    expect(lines).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('does not apply outside src/', () => {
    expect(
      fired('test/unit/a.test.ts', "import { NodeDisk } from '../../src/node/disk.js';\n"),
    ).toEqual([]);
  });
});

describe('core-purity', () => {
  const what = (text: string): string[] =>
    checkCorePurity('src/core/a.ts', text).map((violation) => violation.message);

  it('fires on timers, process, performance, async and await', () => {
    expect(what('setTimeout(f, 1);')).toEqual(["'setTimeout' in src/core"]);
    expect(what('const t = setInterval;')).toEqual(["'setInterval' in src/core"]);
    expect(what('globalThis.setImmediate(f);')).toEqual(["'globalThis.setImmediate' in src/core"]);
    expect(what('const e = process.env.X;')).toEqual(["'process.' in src/core"]);
    expect(what('const t = performance.now();')).toEqual(["'performance.' in src/core"]);
    expect(what('export async function f() {}')).toEqual(["'async' in src/core"]);
    expect(what('const f = async () => 1;')).toEqual(["'async' in src/core"]);
    expect(what('await x;')).toEqual(["'await' in src/core"]);
    expect(what('for await (const x of y) {}')).toEqual(["'for await' in src/core"]);
  });

  it('does not fire on names that only look alike', () => {
    const text = [
      'const timers = { setTimeout: 1 };',
      'timers.setTimeout = 2;',
      'interface Clock { setInterval(): void; processed: number }',
      'const processed = 1;',
      "const label = 'process.exit, await, async, setTimeout';",
      '// setTimeout(f) in a comment is fine; so is performance.now()',
    ].join('\n');
    expect(what(text)).toEqual([]);
  });

  it('applies to src/core only', () => {
    const text = 'export async function f(): Promise<void> { await g(); }\n';
    expect(fired('src/storage/a.ts', text)).toEqual([]);
    expect(fired('src/core/recovery/a.ts', text)).toEqual(['core-purity@1', 'core-purity@1']);
  });
});

describe('ambient-nondeterminism', () => {
  it('fires on Date.now, Math.random and new Date()', () => {
    const text = ['const a = Date.now();', 'const b = Math.random();', 'const c = new Date();'];
    const lines = checkNondeterminism('src/sim/a.ts', text.join('\n')).map((v) => v.line);
    expect(lines).toEqual([1, 2, 3]);
  });

  it('does not fire on deterministic uses', () => {
    const text = [
      'const a = new Date(0).toISOString();',
      'const b = Math.floor(1.5);',
      'const c = clock.now();',
      "const d = 'Date.now()';",
    ].join('\n');
    expect(checkNondeterminism('src/sim/a.ts', text)).toEqual([]);
  });

  it('applies to all of src/ except the real adapters', () => {
    const text = 'export const now = () => Date.now();\n';
    expect(fired('src/core/a.ts', text)).toEqual(['ambient-nondeterminism@1']);
    expect(fired('src/engine/a.ts', text)).toEqual(['ambient-nondeterminism@1']);
    expect(fired('src/node/clock.ts', text)).toEqual([]);
    expect(fired('test/unit/a.test.ts', text)).toEqual([]);
  });
});

describe('no-focused-tests', () => {
  it('fires on .only in any test chain', () => {
    const text = [
      "it.only('a', () => {});",
      "describe.only('b', () => {});",
      "test.concurrent.only('c', async () => {});",
      "it.only.each([1])('d', () => {});",
    ].join('\n');
    const lines = checkFocusedTests('test/unit/a.test.ts', text).map((v) => v.line);
    expect(lines).toEqual([1, 2, 3, 4]);
  });

  it('does not fire on other .only properties or on text', () => {
    const text = [
      'const options = { only: true };',
      'filter.only(x);',
      "const note = 'it.only( is not allowed';",
      "it('plain', () => {});",
    ].join('\n');
    expect(checkFocusedTests('test/unit/a.test.ts', text)).toEqual([]);
  });

  it('applies to test/ only', () => {
    expect(fired('test/sim/a.test.ts', "it.only('a', () => {});\n")).toEqual([
      'no-focused-tests@1',
    ]);
    expect(fired('tools/a.ts', "it.only('a', () => {});\n")).toEqual([]);
  });
});

describe('no-absolute-paths', () => {
  // Built from pieces so that this file does not contain the paths it tests for.
  const work = ['', 'work', 'main', 'src'].join('/');
  const jobs = ['', 'tmp', 'bash_jobs.0', '12', 'stdout'].join('/');

  it('fires on machine paths in any checked file', () => {
    const text = `a\nconst dir = '${work}';\nsee ${jobs}\n`;
    expect(checkAbsolutePaths('README.md', text).map((violation) => violation.line)).toEqual([
      2, 3,
    ]);
    expect(fired('fixtures/torn-tail.expected', `segment ${work}/x.seg\n`)).toEqual([
      'no-absolute-paths@1',
    ]);
    expect(fired('docs/format.md', `(${work})\n`)).toEqual(['no-absolute-paths@1']);
    expect(fired('src/cli/a.ts', `const p = "${work}";\n`)).toEqual(['no-absolute-paths@1']);
  });

  it('does not fire on relative paths, URLs or other absolute paths', () => {
    const text = [
      `const a = '..${work}';`,
      `const b = 'https://example.com${work}';`,
      `const c = 'my-${work.slice(1)}';`,
      "const d = '/tmp/syncwal-bench';",
      `const e = 'src${work}x';`,
    ].join('\n');
    expect(checkAbsolutePaths('src/a.ts', text)).toEqual([]);
  });
});
