import { createHash, timingSafeEqual } from 'node:crypto';
import { replicationOf } from '../backend.js';
import type { ClientState, CommandContext, CommandSpec, ServerContext } from '../context.js';
import { errors } from '../errors.js';
import { reply, type Reply } from '../resp/reply.js';
import { keyword, text } from './args.js';

/**
 * Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT, TIME. With a password
 * configured (requirepass), a client must AUTH (or HELLO ... AUTH) before anything but AUTH,
 * HELLO and QUIT; the only user is `default`, as in Redis without ACLs.
 */

/** The Redis version syncwal answers as, for clients that check it (as Valkey does). */
export const redisCompatibleVersion = '7.2.0';

function digest(value: Buffer | string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares in constant time (hashes first, so the length does not leak either). */
export function passwordMatches(server: ServerContext, candidate: Buffer): boolean {
  if (server.password === null) return false;
  return timingSafeEqual(digest(candidate), digest(server.password));
}

function authenticate(context: CommandContext, user: Buffer | null, password: Buffer): Reply {
  if (context.server.password === null) {
    return reply.error(
      'ERR AUTH <password> called without any password configured for the default user. ' +
        'Are you sure your configuration is correct?',
    );
  }
  const userOk = user === null || text(user) === 'default';
  if (!passwordMatches(context.server, password) || !userOk) {
    context.server.logger.warn('client.auth-failed', { client: context.client.id });
    return errors.wrongPass();
  }
  context.client.authenticated = true;
  return reply.ok();
}

function auth(context: CommandContext, args: readonly Buffer[]): Reply {
  if (args.length > 3) return errors.syntax();
  return args.length === 3
    ? authenticate(context, args[1]!, args[2]!)
    : authenticate(context, null, args[1]!);
}

function validName(name: Buffer): boolean {
  return name.every((byte) => byte > 0x20 && byte < 0x7f);
}

const helloNoAuth =
  'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO ' +
  '<proto> AUTH <user> <pass> option can be used to authenticate the client and select the ' +
  'RESP protocol version at the same time';

function hello(context: CommandContext, args: readonly Buffer[]): Reply {
  let protocol = context.client.protocol;
  if (args.length > 1) {
    const version = text(args[1]);
    if (version !== '2' && version !== '3') {
      return reply.error('NOPROTO unsupported protocol version');
    }
    protocol = version === '3' ? 3 : 2;
  }
  let name: Buffer | null = null;
  for (let index = 2; index < args.length; index++) {
    const option = keyword(args[index]);
    if (option === 'AUTH' && index + 2 < args.length) {
      const result = authenticate(context, args[index + 1]!, args[index + 2]!);
      if (result.type === 'error') return result;
      index += 2;
    } else if (option === 'SETNAME' && index + 1 < args.length) {
      name = args[++index]!;
      if (!validName(name)) return invalidClientName();
    } else {
      return reply.error(`ERR Syntax error in HELLO option '${text(args[index])}'`);
    }
  }
  if (!context.client.authenticated) return reply.error(helloNoAuth);
  if (name !== null) context.client.name = text(name);
  context.client.protocol = protocol;
  const role = replicationOf(context.server.backend).role;
  return reply.map([
    ['server', reply.bulk('syncwal')],
    ['version', reply.bulk(redisCompatibleVersion)],
    ['proto', reply.integer(protocol)],
    ['id', reply.integer(context.client.id)],
    ['mode', reply.bulk('standalone')],
    ['role', reply.bulk(role === 'primary' ? 'master' : 'replica')],
    ['modules', reply.array([])],
  ]);
}

function invalidClientName(): Reply {
  return reply.error('ERR Client names cannot contain spaces, newlines or special characters.');
}

/** One line of CLIENT LIST / CLIENT INFO. */
export function clientLine(server: ServerContext, client: ClientState): string {
  const ageSeconds = Math.floor((server.clock.monotonicMs() - client.connectedAtMs) / 1000);
  return (
    `id=${client.id} addr=${client.address} name=${client.name ?? ''} age=${ageSeconds} ` +
    `db=0 resp=${client.protocol} cmds=${client.commands} ` +
    `lib-name=${client.libraryName ?? ''} lib-ver=${client.libraryVersion ?? ''}`
  );
}

function client(context: CommandContext, args: readonly Buffer[]): Reply {
  const subcommand = keyword(args[1]);
  const state = context.client;
  switch (subcommand) {
    case 'SETNAME':
      if (args.length !== 3) return errors.wrongArguments('client|setname');
      if (args[2]!.length > 0 && !validName(args[2]!)) return invalidClientName();
      state.name = args[2]!.length === 0 ? null : text(args[2]);
      return reply.ok();
    case 'GETNAME':
      return reply.bulkOrNil(state.name);
    case 'ID':
      return reply.integer(state.id);
    case 'SETINFO': {
      const attribute = keyword(args[2]);
      if (args.length !== 4) return errors.wrongArguments('client|setinfo');
      if (attribute === 'LIB-NAME') state.libraryName = text(args[3]);
      else if (attribute === 'LIB-VER') state.libraryVersion = text(args[3]);
      else return reply.error(`ERR Unrecognized option '${text(args[2])}'`);
      return reply.ok();
    }
    case 'INFO':
      return reply.verbatim(`${clientLine(context.server, state)}\n`);
    case 'LIST': {
      const lines = [...context.server.clients.values()].map((each) =>
        clientLine(context.server, each),
      );
      return reply.verbatim(lines.map((line) => `${line}\n`).join(''));
    }
    default:
      return reply.error(
        `ERR unknown subcommand '${text(args[1]).slice(0, 64)}'. Try CLIENT HELP.`,
      );
  }
}

function time(context: CommandContext): Reply {
  const micros = BigInt(Math.round(context.server.clock.wallMs() * 1000));
  return reply.array([
    reply.bulk(String(micros / 1_000_000n)),
    reply.bulk(String(micros % 1_000_000n)),
  ]);
}

const fast = ['fast'] as const;
const none = [0, 0, 0] as const;

export const connectionCommands: readonly CommandSpec[] = [
  {
    name: 'ping',
    arity: -1,
    order: 'free',
    flags: fast,
    keys: none,
    summary: 'PONG, or the message',
    run: (_, args) => (args.length > 1 ? reply.bulk(args[1]!) : reply.simple('PONG')),
  },
  {
    name: 'echo',
    arity: 2,
    order: 'free',
    flags: fast,
    keys: none,
    summary: 'the message',
    run: (_, args) => reply.bulk(args[1]!),
  },
  {
    name: 'hello',
    arity: -1,
    order: 'read',
    noAuth: true,
    flags: ['noauth', 'fast'],
    keys: none,
    summary: 'HELLO [2|3] [AUTH user pass] [SETNAME name]',
    run: hello,
  },
  {
    name: 'auth',
    arity: -2,
    order: 'free',
    noAuth: true,
    flags: ['noauth', 'fast'],
    keys: none,
    summary: 'AUTH [default] password',
    run: auth,
  },
  {
    name: 'select',
    arity: 2,
    order: 'free',
    flags: fast,
    keys: none,
    summary: 'only database 0 exists',
    run: (_, args) =>
      text(args[1]) === '0' ? reply.ok() : reply.error('ERR DB index is out of range'),
  },
  {
    name: 'client',
    arity: -2,
    order: 'free',
    flags: [],
    keys: none,
    summary: 'CLIENT SETNAME|GETNAME|ID|SETINFO|INFO|LIST',
    run: client,
  },
  {
    name: 'quit',
    arity: -1,
    order: 'free',
    noAuth: true,
    flags: ['noauth', 'fast'],
    keys: none,
    summary: 'close the connection',
    run: (context) => {
      context.client.closeAfterReply = true;
      return reply.ok();
    },
  },
  {
    name: 'time',
    arity: 1,
    order: 'free',
    flags: fast,
    keys: none,
    summary: 'server time',
    run: time,
  },
];
