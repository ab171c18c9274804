#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerCluster, selfCommand } from './cluster.js';
import { runIfEntryPoint, type Output } from './entry.js';
import { processRuntime, registerServe } from './serve.js';
import { registerStatus } from './status.js';
import { exitCodes, main as walInspectMain } from './wal-inspect.js';

/**
 * The `syncwal` command: `serve` (one node), `cluster` (a local shard, what `npm start` runs),
 * `status` (a node's view of the shard), and the log tools (`syncwal inspect ...` is the same
 * program as `wal-inspect ...`).
 */
function packageVersion(): string {
  const path = fileURLToPath(new URL('../../package.json', import.meta.url));
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown };
  return typeof parsed.version === 'string' ? parsed.version : 'unknown';
}

export async function main(argv: readonly string[], output: Output): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'inspect') return walInspectMain(rest, output);
  let code: number = exitCodes.clean;
  const program = new Command('syncwal')
    .description('syncwal: a replicated write-ahead-log storage engine')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
    });
  program
    .command('inspect')
    .description('inspect a log directory: dump, verify, stats (same as wal-inspect)')
    .argument('[args...]', 'wal-inspect arguments, e.g. verify ./data/n1')
    .allowUnknownOption();
  const setCode = (value: number): void => {
    code = value;
  };
  const runtime = () => processRuntime(output, packageVersion());
  registerServe(program, runtime, setCode);
  registerCluster(program, () => ({ ...runtime(), command: selfCommand() }), setCode);
  registerStatus(program, output, process.env, setCode);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (command === undefined) {
      program.outputHelp();
      code = exitCodes.usage;
    }
  } catch (error: unknown) {
    if (!(error instanceof CommanderError)) throw error;
    const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.version';
    code = ok ? exitCodes.clean : exitCodes.usage;
  }
  return code;
}

await runIfEntryPoint(import.meta.url, main);
