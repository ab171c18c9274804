import { replicationOf } from './backend.js';
import { text } from './commands/args.js';
import { CommandLookup, namedAs } from './commands/lookup.js';
import type { ClientState, CommandOrder, CommandSpec, ServerContext } from './context.js';
import { errorReply, errors, unknownCommand } from './errors.js';
import type { Reply } from './resp/reply.js';

/**
 * From parsed arguments to a reply: find the command, check arity and authentication, run it,
 * and turn whatever it throws into a RESP error. A command never throws out of here.
 *
 * Request ids: `SET key value RID <id>` (SET's own option), or the prefix form for any write
 * that takes one, `RID <id> <command> [args...]` (for example `RID req-7 INCR visits`). A
 * retry with the same id is not applied twice, and `STATUS <id>` says what became of it.
 */

export type Prepared =
  | {
      kind: 'run';
      spec: CommandSpec;
      args: Buffer[];
      requestId: string | null;
      order: CommandOrder;
    }
  | { kind: 'reply'; reply: Reply; order: 'free' };

const requestIdBytesMax = 256;

const noName = Buffer.alloc(0);

export class Dispatcher {
  readonly #lookup: CommandLookup;
  readonly #server: ServerContext;

  constructor(table: ReadonlyMap<string, CommandSpec>, server: ServerContext) {
    this.#lookup = new CommandLookup(table);
    this.#server = server;
  }

  /** Looks the command up; an unknown command or a wrong arity becomes its error reply. */
  prepare(args: Buffer[]): Prepared {
    const name = args[0] ?? noName;
    if (namedAs(name, 'rid')) return this.#prepareWithRequestId(args);
    const spec = this.#lookup.find(name);
    if (spec === undefined) return { kind: 'reply', reply: unknownCommand(args), order: 'free' };
    if (!arityMatches(spec.arity, args.length)) {
      return { kind: 'reply', reply: errors.wrongArguments(spec.name), order: 'free' };
    }
    return { kind: 'run', spec, args, requestId: null, order: spec.order };
  }

  #prepareWithRequestId(args: Buffer[]): Prepared {
    if (args.length < 4)
      return { kind: 'reply', reply: errors.wrongArguments('rid'), order: 'free' };
    const requestId = text(args[1]);
    if (requestId.length === 0 || Buffer.byteLength(requestId) > requestIdBytesMax) {
      const message = `ERR a request id is 1 to ${requestIdBytesMax} bytes`;
      return { kind: 'reply', reply: { type: 'error', value: message }, order: 'free' };
    }
    const inner = this.prepare(args.slice(2));
    if (inner.kind === 'reply') return inner;
    if (inner.spec.requestId !== true) {
      const message = `ERR RID does not apply to '${inner.spec.name}' (only to writes)`;
      return { kind: 'reply', reply: { type: 'error', value: message }, order: 'free' };
    }
    return { ...inner, requestId };
  }

  /**
   * Runs a prepared command for `client`. Never throws: what the command throws becomes its
   * error reply. A promise it returns may reject: the caller answers `failure(spec, error)`
   * (one handler where the caller attaches its own, rather than a promise more per command).
   */
  run(prepared: Prepared, client: ClientState): Reply | Promise<Reply> {
    if (prepared.kind === 'reply') return prepared.reply;
    const spec = prepared.spec;
    if (!client.authenticated && spec.noAuth !== true) return errors.noAuth();
    client.commands++;
    const context = { server: this.#server, client, requestId: prepared.requestId };
    try {
      return spec.run(context, prepared.args);
    } catch (error: unknown) {
      return this.failure(spec, error);
    }
  }

  /** The reply to `spec` failing with `error` (a typed node error's RESP form, or a bug's). */
  failure(spec: CommandSpec, error: unknown): Reply {
    let hint: string | null = null;
    if ((error as { code?: unknown } | null)?.code === 'NOTPRIMARY') {
      hint = replicationOf(this.#server.backend).primaryAddress;
    }
    const mapped = errorReply(error, hint);
    if (mapped !== null) return mapped;
    this.#server.logger.error('command.failed', {
      command: spec.name,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    return errors.internal();
  }
}

export function arityMatches(arity: number, count: number): boolean {
  return arity >= 0 ? count === arity : count >= -arity;
}
