import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errnoCode } from '../core/errors.js';

/** Where a command writes its lines; tests pass their own to capture them. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/**
 * Runs `main` with the process's arguments when the module at `moduleUrl` is the script node
 * was started with (not when a test imports it), and sets the exit code it returns.
 */
export async function runIfEntryPoint(
  moduleUrl: string,
  main: (argv: readonly string[], output: Output) => Promise<number>,
): Promise<void> {
  const script = process.argv[1];
  if (script === undefined) return;
  let isEntry: boolean;
  try {
    isEntry = realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    isEntry = false;
  }
  if (!isEntry) return;
  // A closed pipe (`wal-inspect dump dir | head`) is not an error worth a stack trace.
  process.stdout.on('error', (error: unknown) => {
    if (errnoCode(error) === 'EPIPE') process.exit(0);
    throw error;
  });
  const output: Output = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  process.exitCode = await main(process.argv.slice(2), output);
}
