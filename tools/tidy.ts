/**
 * Style checks that the compiler does not make (after tigerbeetle's src/tidy.zig). Run by
 * `npm run lint` after `tsc --noEmit`; prints `file:line: message (rule)` for each violation
 * and exits 1 if there is any.
 *
 * Every rule is a row in `rules` below with the reason it exists; the import rules are a second
 * table, `layers`, one row per directory of src/. To add a rule, add a row and a test in
 * test/unit/tidy.test.ts showing it fires (and does not fire where it should not).
 *
 * The check functions are pure (path + text in, violations out) so they can be unit tested on
 * in-memory snippets; only `tidyRepository` and `main` touch the file system.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface Violation {
  /** Repository-relative path with '/' separators. */
  file: string;
  /** 1-based line number. */
  line: number;
  message: string;
  /** Name of the rule that produced it. */
  rule: string;
}

export interface Rule {
  name: string;
  /** Why the rule exists; printed once under the violations it produced. */
  reason: string;
  /** Repository-relative path prefixes the rule applies to ('src/' is everything in src). */
  include: readonly string[];
  /** Path prefixes (or exact paths) excluded from `include`. */
  exclude: readonly string[];
  /** File name endings the rule reads. */
  suffixes: readonly string[];
  check: (file: string, text: string) => Violation[];
}

export const lineColumnsMax = 100;
export const functionBodyLinesMax = 70;

// ---------------------------------------------------------------------------------------------
// Parsing helpers.

const parsed = new Map<string, ts.SourceFile>();

/** Parses TypeScript once per (path, text); the rules share the tree. */
function parse(file: string, text: string): ts.SourceFile {
  const key = `${file}\u0000${text}`;
  let sourceFile = parsed.get(key);
  if (sourceFile === undefined) {
    sourceFile = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    if (parsed.size > 4096) parsed.clear();
    parsed.set(key, sourceFile);
  }
  return sourceFile;
}

function lineOf(sourceFile: ts.SourceFile, position: number): number {
  return sourceFile.getLineAndCharacterOfPosition(position).line + 1;
}

/** Calls `visit` on every node of the tree, parents before children (no recursion). */
function walk(sourceFile: ts.SourceFile, visit: (node: ts.Node) => void): void {
  const stack: ts.Node[] = [sourceFile];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    visit(node);
    const children: ts.Node[] = [];
    ts.forEachChild(node, (child) => {
      children.push(child);
    });
    for (let index = children.length - 1; index >= 0; index--) stack.push(children[index]!);
  }
}

// ---------------------------------------------------------------------------------------------
// line-length

export function checkLineLength(file: string, text: string): Violation[] {
  const violations: Violation[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/\r$/, '');
    const columns = [...line].length;
    // A URL cannot be wrapped; a line is allowed to overflow because of one.
    if (columns <= lineColumnsMax || /https?:\/\/\S+/.test(line)) continue;
    violations.push({
      file,
      line: index + 1,
      message: `line is ${columns} columns (max ${lineColumnsMax})`,
      rule: 'line-length',
    });
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// function-length

type FunctionLike =
  | ts.FunctionDeclaration
  | ts.FunctionExpression
  | ts.ArrowFunction
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration;

function isFunctionLike(node: ts.Node): node is FunctionLike {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node)
  );
}

function functionName(node: FunctionLike, sourceFile: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (node.name !== undefined) return node.name.getText(sourceFile);
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) {
    return parent.name.getText(sourceFile);
  }
  if (ts.isPropertyDeclaration(parent)) return parent.name.getText(sourceFile);
  return '<anonymous>';
}

/**
 * A body's length is the number of lines it spans, from the line of its opening brace to the
 * line of its closing brace (an expression body of an arrow function counts its own lines).
 * Nested functions count towards the function around them, and are also checked on their own.
 */
export function checkFunctionLength(file: string, text: string): Violation[] {
  const sourceFile = parse(file, text);
  const violations: Violation[] = [];
  walk(sourceFile, (node) => {
    if (!isFunctionLike(node) || node.body === undefined) return;
    const lineFirst = lineOf(sourceFile, node.body.getStart(sourceFile));
    const lineLast = lineOf(sourceFile, node.body.getEnd());
    const lines = lineLast - lineFirst + 1;
    if (lines <= functionBodyLinesMax) return;
    violations.push({
      file,
      line: lineOf(sourceFile, node.getStart(sourceFile)),
      message:
        `function '${functionName(node, sourceFile)}' body is ${lines} lines ` +
        `(max ${functionBodyLinesMax})`,
      rule: 'function-length',
    });
  });
  return violations;
}

// ---------------------------------------------------------------------------------------------
// import-direction

/**
 * What each directory of src/ may import. A file may always import files of its own layer.
 * `srcLayers` names other directories of src/ ('(root)' is a file directly in src/, such as
 * index.ts); `packages` and `builtins` are npm packages and node: modules ('any' = no limit).
 */
export interface Layer {
  layer: string;
  srcLayers: readonly string[] | 'any';
  packages: readonly string[] | 'any';
  builtins: readonly string[] | 'any';
  /** Extra node: modules allowed for single files, by repository path. */
  builtinsByFile?: Readonly<Record<string, readonly string[]>>;
  reason: string;
}

const nodeAdaptersReason = 'only src/index.ts and src/cli/** may import src/node/** (real IO)';

export const layers: readonly Layer[] = [
  {
    layer: 'core',
    srcLayers: [],
    packages: ['crc-32'],
    builtins: [],
    builtinsByFile: { 'src/core/checksum.ts': ['node:zlib'] },
    reason:
      'src/core is pure: deterministic, synchronous, testable without IO; node:zlib only ' +
      'for its crc32 in checksum.ts',
  },
  {
    layer: 'ports',
    srcLayers: ['core'],
    packages: [],
    builtins: [],
    reason: 'ports are IO contracts (interfaces) and depend only on core types',
  },
  {
    layer: 'storage',
    srcLayers: ['core', 'ports'],
    packages: 'any',
    builtins: 'any',
    reason: 'storage sits on ports.Disk; it never knows the adapters, replication or engine',
  },
  {
    layer: 'replication',
    srcLayers: ['core', 'ports'],
    packages: 'any',
    builtins: 'any',
    reason: 'replication sits on ports.Transport; storage and replication meet only in engine',
  },
  {
    layer: 'engine',
    srcLayers: ['core', 'ports', 'storage', 'replication'],
    packages: 'any',
    builtins: 'any',
    reason: `the engine receives adapters as arguments; ${nodeAdaptersReason}`,
  },
  {
    layer: 'node',
    srcLayers: ['core', 'ports'],
    packages: 'any',
    builtins: 'any',
    reason: 'real adapters implement ports and import only ports and core',
  },
  {
    layer: 'sim',
    srcLayers: ['core', 'ports'],
    packages: 'any',
    builtins: 'any',
    reason: 'simulated adapters implement ports and import only ports and core',
  },
  {
    layer: 'server',
    srcLayers: ['core', 'ports'],
    packages: 'any',
    builtins: 'any',
    reason:
      'the RESP server runs on its ServerBackend port (a node satisfies it structurally); ' +
      `it never opens a node itself; ${nodeAdaptersReason}`,
  },
  {
    layer: 'cli',
    srcLayers: ['core', 'ports', 'storage', 'node', 'server', '(root)'],
    packages: 'any',
    builtins: 'any',
    reason:
      'the CLI is thin: flags and output over storage, core and the real disk; serve composes ' +
      'a node (openNode from src/index.ts) with the server',
  },
  {
    layer: '(root)',
    srcLayers: 'any',
    packages: 'any',
    builtins: 'any',
    reason: 'src/index.ts is the composition root',
  },
];

/** Applies to a directory of src/ that has no row in `layers`. */
const layerDefault: Layer = {
  layer: '(other)',
  srcLayers: layers.map((row) => row.layer).filter((name) => name !== 'node'),
  packages: 'any',
  builtins: 'any',
  reason: nodeAdaptersReason,
};

/** The layer of a repository path: 'core' for src/core/a/b.ts, '(root)' for src/index.ts. */
export function layerOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] !== 'src') return null;
  return parts.length > 2 ? parts[1]! : '(root)';
}

interface ImportSite {
  specifier: string;
  line: number;
}

function importSites(file: string, text: string): ImportSite[] {
  const sourceFile = parse(file, text);
  const sites: ImportSite[] = [];
  const add = (literal: ts.Node): void => {
    if (!ts.isStringLiteralLike(literal)) return;
    sites.push({ specifier: literal.text, line: lineOf(sourceFile, literal.getStart(sourceFile)) });
  };
  walk(sourceFile, (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier !== undefined) add(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node)) {
      const reference = node.moduleReference;
      if (ts.isExternalModuleReference(reference)) add(reference.expression);
    } else if (ts.isCallExpression(node) && node.arguments[0] !== undefined) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isImport || isRequire) add(node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal);
    }
  });
  return sites;
}

type ImportTarget =
  | { kind: 'src'; path: string; layer: string }
  | { kind: 'outside'; path: string }
  | { kind: 'builtin'; name: string }
  | { kind: 'package'; name: string };

const builtinNames = new Set(builtinModules);

export function classifyImport(file: string, specifier: string): ImportTarget {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const path = posix.normalize(posix.join(posix.dirname(file), specifier));
    const layer = layerOf(path);
    return layer === null ? { kind: 'outside', path } : { kind: 'src', path, layer };
  }
  if (specifier.startsWith('node:')) return { kind: 'builtin', name: specifier };
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (builtinNames.has(name)) return { kind: 'builtin', name: `node:${specifier}` };
  return { kind: 'package', name };
}

function allows(list: readonly string[] | 'any', name: string): boolean {
  return list === 'any' || list.includes(name);
}

/** Why `file` (in `layer`) may not import `target`, or null if it may. */
function importRefusal(file: string, layer: Layer, target: ImportTarget): string | null {
  switch (target.kind) {
    case 'outside':
      return `imports ${target.path}, outside src/`;
    case 'src': {
      if (target.layer === layer.layer || allows(layer.srcLayers, target.layer)) return null;
      return `imports ${target.path}: src/${layer.layer} may not import src/${target.layer}`;
    }
    case 'builtin': {
      const extra = layer.builtinsByFile?.[file] ?? [];
      if (allows(layer.builtins, target.name) || extra.includes(target.name)) return null;
      return `imports ${target.name}: src/${layer.layer} may not import node built-ins`;
    }
    case 'package':
      if (allows(layer.packages, target.name)) return null;
      return `imports package '${target.name}': not allowed in src/${layer.layer}`;
  }
}

export function checkImports(file: string, text: string): Violation[] {
  const layerName = layerOf(file);
  if (layerName === null) return [];
  const layer = layers.find((row) => row.layer === layerName) ?? {
    ...layerDefault,
    layer: layerName,
  };
  const violations: Violation[] = [];
  for (const site of importSites(file, text)) {
    const refusal = importRefusal(file, layer, classifyImport(file, site.specifier));
    if (refusal === null) continue;
    violations.push({
      file,
      line: site.line,
      message: `${refusal} (${layer.reason})`,
      rule: 'import-direction',
    });
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// core-purity and ambient-nondeterminism

/** `object.property` accesses that are forbidden; property '*' means any property. */
interface ForbiddenAccess {
  object: string;
  property: string;
}

/** Bare globals that are forbidden when referenced (called or passed around). */
const coreForbiddenGlobals = ['setTimeout', 'setInterval', 'setImmediate'];
const coreForbiddenAccesses: readonly ForbiddenAccess[] = [
  { object: 'process', property: '*' },
  { object: 'performance', property: '*' },
  { object: 'globalThis', property: 'setTimeout' },
  { object: 'globalThis', property: 'setInterval' },
  { object: 'globalThis', property: 'setImmediate' },
];
const nondeterministicAccesses: readonly ForbiddenAccess[] = [
  { object: 'Date', property: 'now' },
  { object: 'Math', property: 'random' },
];

function accessViolation(node: ts.Node, forbidden: readonly ForbiddenAccess[]): string | null {
  if (!ts.isPropertyAccessExpression(node) || !ts.isIdentifier(node.expression)) return null;
  const object = node.expression.text;
  const property = node.name.text;
  const hit = forbidden.find(
    (row) => row.object === object && (row.property === '*' || row.property === property),
  );
  if (hit === undefined) return null;
  return hit.property === '*' ? `${object}.` : `${object}.${property}`;
}

/** True if `node` is an identifier used as a value, not as a property or declaration name. */
function isValueReference(node: ts.Identifier): boolean {
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false;
  if (ts.isQualifiedName(parent) && parent.right === node) return false;
  if (ts.isPropertyAssignment(parent) && parent.name === node) return false;
  if (ts.isMethodDeclaration(parent) && parent.name === node) return false;
  if (ts.isPropertyDeclaration(parent) && parent.name === node) return false;
  if (ts.isPropertySignature(parent) && parent.name === node) return false;
  if (ts.isMethodSignature(parent) && parent.name === node) return false;
  return true;
}

function coreNodeViolation(node: ts.Node): string | null {
  if (ts.isAwaitExpression(node)) return "'await'";
  if (ts.isForOfStatement(node) && node.awaitModifier !== undefined) return "'for await'";
  if (node.kind === ts.SyntaxKind.AsyncKeyword) return "'async'";
  if (ts.isIdentifier(node) && coreForbiddenGlobals.includes(node.text)) {
    return isValueReference(node) ? `'${node.text}'` : null;
  }
  const access = accessViolation(node, coreForbiddenAccesses);
  return access === null ? null : `'${access}'`;
}

export function checkCorePurity(file: string, text: string): Violation[] {
  const sourceFile = parse(file, text);
  const violations: Violation[] = [];
  walk(sourceFile, (node) => {
    const what = coreNodeViolation(node);
    if (what === null) return;
    violations.push({
      file,
      line: lineOf(sourceFile, node.getStart(sourceFile)),
      message: `${what} in src/core`,
      rule: 'core-purity',
    });
  });
  return violations;
}

export function checkNondeterminism(file: string, text: string): Violation[] {
  const sourceFile = parse(file, text);
  const violations: Violation[] = [];
  walk(sourceFile, (node) => {
    let what = accessViolation(node, nondeterministicAccesses);
    // `new Date()` with no arguments reads the wall clock just like Date.now().
    const isNewDate =
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'Date' &&
      (node.arguments === undefined || node.arguments.length === 0);
    if (isNewDate) what = 'new Date()';
    if (what === null) return;
    violations.push({
      file,
      line: lineOf(sourceFile, node.getStart(sourceFile)),
      message: `'${what}' outside src/node: inject a Clock or a seeded Random instead`,
      rule: 'ambient-nondeterminism',
    });
  });
  return violations;
}

// ---------------------------------------------------------------------------------------------
// no-focused-tests

const testRoots = new Set(['it', 'test', 'describe', 'suite', 'bench']);

/** The identifier at the start of a property chain: `describe` for `describe.skip.only`. */
function chainRoot(node: ts.Expression): string | null {
  let current = node;
  while (ts.isPropertyAccessExpression(current)) current = current.expression;
  return ts.isIdentifier(current) ? current.text : null;
}

export function checkFocusedTests(file: string, text: string): Violation[] {
  const sourceFile = parse(file, text);
  const violations: Violation[] = [];
  walk(sourceFile, (node) => {
    if (!ts.isPropertyAccessExpression(node) || node.name.text !== 'only') return;
    const root = chainRoot(node.expression);
    if (root === null || !testRoots.has(root)) return;
    violations.push({
      file,
      line: lineOf(sourceFile, node.getStart(sourceFile)),
      message: `'${node.getText(sourceFile)}(' focuses tests and silently skips the rest`,
      rule: 'no-focused-tests',
    });
  });
  return violations;
}

// ---------------------------------------------------------------------------------------------
// no-absolute-paths

/**
 * Machine paths of this workplace. Written with escaped slashes so this file does not match
 * itself. A match must not follow a word character, '.', '~' or '-' so that relative paths
 * and URLs ending in the same words are not flagged.
 */
const machinePathPattern = /(?<![\w.~-])(?:\/work\/|\/tmp\/bash_jobs)/;

export function checkAbsolutePaths(file: string, text: string): Violation[] {
  const violations: Violation[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const match = machinePathPattern.exec(lines[index]!);
    if (match === null) continue;
    violations.push({
      file,
      line: index + 1,
      message: `machine-specific absolute path '${match[0]}...'`,
      rule: 'no-absolute-paths',
    });
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// The rule table.

const sourceRoots = ['src/', 'test/', 'tools/', 'bench/'];

export const rules: readonly Rule[] = [
  {
    name: 'line-length',
    reason: `lines of at most ${lineColumnsMax} columns read side by side and in diffs`,
    include: sourceRoots,
    exclude: [],
    suffixes: ['.ts'],
    check: checkLineLength,
  },
  {
    name: 'function-length',
    reason:
      `a function body fits on one screen (${functionBodyLinesMax} lines, TigerStyle); ` +
      'split by pushing ifs up and fors down',
    include: ['src/'],
    exclude: [],
    suffixes: ['.ts'],
    check: checkFunctionLength,
  },
  {
    name: 'import-direction',
    reason: 'dependencies point inwards (STYLE.md (c)): core <- ports <- storage <- engine',
    include: ['src/'],
    exclude: [],
    suffixes: ['.ts'],
    check: checkImports,
  },
  {
    name: 'core-purity',
    reason:
      'src/core runs to completion without suspending and reads no ambient state, so the ' +
      'same inputs always give the same outputs',
    include: ['src/core/'],
    exclude: [],
    suffixes: ['.ts'],
    check: checkCorePurity,
  },
  {
    name: 'ambient-nondeterminism',
    reason:
      'time and randomness are injected ports (Clock, seeded Random) so a simulation ' +
      'replays exactly from its seed; only the real adapters in src/node read them',
    include: ['src/'],
    exclude: ['src/node/'],
    suffixes: ['.ts'],
    check: checkNondeterminism,
  },
  {
    name: 'no-focused-tests',
    reason: 'a committed .only( makes CI run a fraction of the suite and still pass',
    include: ['test/'],
    exclude: [],
    suffixes: ['.ts'],
    check: checkFocusedTests,
  },
  {
    name: 'no-absolute-paths',
    reason: 'paths of one machine break on every other machine and in CI',
    include: [...sourceRoots, 'docs/', 'fixtures/', 'README.md', '.ci/'],
    exclude: [],
    suffixes: ['.ts', '.md', '.json', '.txt', '.expected', '.ci/run'],
    check: checkAbsolutePaths,
  },
];

function matches(prefixes: readonly string[], file: string): boolean {
  return prefixes.some((prefix) => file === prefix || file.startsWith(prefix));
}

export function rulesFor(file: string): Rule[] {
  return rules.filter(
    (rule) =>
      matches(rule.include, file) &&
      !matches(rule.exclude, file) &&
      rule.suffixes.some((suffix) => file.endsWith(suffix)),
  );
}

/** Runs every rule that applies to `file` (a repository-relative path) on its text. */
export function checkFile(file: string, text: string): Violation[] {
  return rulesFor(file).flatMap((rule) => rule.check(file, text));
}

// ---------------------------------------------------------------------------------------------
// File system and command line.

const skippedDirectories = new Set(['node_modules', 'dist', '.git', 'data']);
const scanRoots = [...sourceRoots, 'docs/', 'fixtures/', '.ci/', 'README.md'];

/** Repository-relative paths of the files under `scanRoots`, sorted. */
export function listFiles(root: string): string[] {
  const files: string[] = [];
  const pending = scanRoots.map((entry) => entry.replace(/\/$/, ''));
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(posix.join(root, path)).isDirectory();
    } catch {
      continue; // A root that does not exist (yet) has nothing to check.
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    for (const name of readdirSync(posix.join(root, path))) {
      if (!skippedDirectories.has(name)) pending.push(`${path}/${name}`);
    }
  }
  return files.sort();
}

export function tidyRepository(root: string): Violation[] {
  const violations: Violation[] = [];
  for (const file of listFiles(root)) {
    if (rulesFor(file).length === 0) continue;
    const text = readFileSync(posix.join(root, file), 'utf8');
    violations.push(...checkFile(file, text));
  }
  return violations;
}

function main(): number {
  const root = posix.join(posix.dirname(fileURLToPath(import.meta.url)), '..');
  const violations = tidyRepository(root);
  for (const violation of violations) {
    console.log(`${violation.file}:${violation.line}: ${violation.message} (${violation.rule})`);
  }
  if (violations.length === 0) return 0;
  const fired = new Set(violations.map((violation) => violation.rule));
  console.log('');
  for (const rule of rules) {
    if (fired.has(rule.name)) console.log(`${rule.name}: ${rule.reason}`);
  }
  console.log(`tidy: ${violations.length} violation(s)`);
  return 1;
}

/** True when this file is the program being run (not imported by a test). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
}

if (isEntryPoint()) process.exitCode = main();
