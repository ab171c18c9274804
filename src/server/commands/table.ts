import type { CommandContext, CommandSpec } from '../context.js';
import { reply, type Reply } from '../resp/reply.js';
import { adminCommands } from './admin.js';
import { keyword, text } from './args.js';
import { connectionCommands } from './connection.js';
import { keyCommands } from './keys.js';

/**
 * The command table: every command the server knows, by lower-case name, plus COMMAND itself
 * (COUNT, LIST, INFO, DOCS: enough for redis-cli's hints and redis-benchmark).
 */

function commandInfo(spec: CommandSpec): Reply {
  return reply.array([
    reply.bulk(spec.name),
    reply.integer(spec.arity),
    reply.array(spec.flags.map((flag) => reply.simple(flag))),
    reply.integer(spec.keys[0]),
    reply.integer(spec.keys[1]),
    reply.integer(spec.keys[2]),
    reply.array([]),
    reply.array([]),
    reply.array([]),
    reply.array([]),
  ]);
}

function commandDocs(spec: CommandSpec): Reply {
  return reply.map([
    ['summary', reply.bulk(spec.summary)],
    ['since', reply.bulk('1.0.0')],
    [
      'group',
      reply.bulk(spec.order === 'write' || spec.flags.includes('readonly') ? 'string' : 'server'),
    ],
  ]);
}

function commandCommand(table: ReadonlyMap<string, CommandSpec>) {
  const all = (): CommandSpec[] => [...table.values()];
  const named = (args: readonly Buffer[]): (CommandSpec | undefined)[] =>
    args.slice(2).map((arg) => table.get(text(arg).toLowerCase()));
  return (_context: CommandContext, args: readonly Buffer[]): Reply => {
    if (args.length === 1) return reply.array(all().map(commandInfo));
    const subcommand = keyword(args[1]);
    switch (subcommand) {
      case 'COUNT':
        return reply.integer(table.size);
      case 'LIST':
        return reply.array(all().map((spec) => reply.bulk(spec.name)));
      case 'INFO': {
        const specs = args.length === 2 ? all() : named(args);
        return reply.array(
          specs.map((spec) => (spec === undefined ? reply.nil() : commandInfo(spec))),
        );
      }
      case 'DOCS': {
        const specs = args.length === 2 ? all() : named(args).filter((spec) => spec !== undefined);
        return reply.map(specs.map((spec) => [spec!.name, commandDocs(spec!)]));
      }
      default:
        return reply.error(
          `ERR unknown subcommand '${text(args[1]).slice(0, 64)}'. Try COMMAND HELP.`,
        );
    }
  };
}

export function commandTable(): ReadonlyMap<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of [...keyCommands, ...connectionCommands, ...adminCommands]) {
    table.set(spec.name, spec);
  }
  table.set('command', {
    name: 'command',
    arity: -1,
    order: 'free',
    flags: [],
    keys: [0, 0, 0],
    summary: 'COMMAND [COUNT|LIST|INFO|DOCS]',
    run: commandCommand(table),
  });
  return table;
}
