import { replicationOf, type DurabilityPolicy } from '../backend.js';
import type { CommandContext, CommandSpec, ServerContext } from '../context.js';
import { errors } from '../errors.js';
import { globMatchText } from '../glob.js';
import { renderInfo } from '../info.js';
import { reply, type Reply } from '../resp/reply.js';
import { count, keyword, text } from './args.js';

/**
 * Server and shard commands: INFO, ROLE, WAIT, CONFIG, STATUS, CHECKPOINT, FAILOVER. The
 * replication answers come from the backend's optional hooks; without them the node answers
 * as a lone primary (DESIGN §6).
 */

function info(context: CommandContext, args: readonly Buffer[]): Reply {
  const sections = args.slice(1).map((arg) => text(arg).toLowerCase());
  return reply.verbatim(renderInfo(context.server, sections));
}

/** ROLE as in Redis: `master offset [[ip port offset]...]` or `slave host port state offset`. */
function role(context: CommandContext): Reply {
  const state = replicationOf(context.server.backend);
  if (state.role === 'primary') {
    const replicas = state.replicas.map((replica) => {
      const address = replica.address ?? '';
      const colon = address.lastIndexOf(':');
      return reply.array([
        reply.bulk(colon < 0 ? address : address.slice(0, colon)),
        reply.bulk(colon < 0 ? '' : address.slice(colon + 1)),
        reply.bulk(String(replica.ackedLsn)),
      ]);
    });
    return reply.array([reply.bulk('master'), reply.integer(state.lastLsn), reply.array(replicas)]);
  }
  const address = state.primaryAddress ?? '';
  const colon = address.lastIndexOf(':');
  return reply.array([
    reply.bulk('slave'),
    reply.bulk(colon < 0 ? address : address.slice(0, colon)),
    reply.integer(colon < 0 ? -1 : Number(address.slice(colon + 1))),
    reply.bulk(state.linkUp ? 'connected' : 'connect'),
    reply.integer(state.lastLsn),
  ]);
}

/**
 * WAIT numreplicas timeout: a write is answered OK only once the durability policy holds, so
 * there is nothing to wait for. The answer is the number of replicas that hold this client's
 * last write (0 on a single node), at once; the timeout is validated and otherwise unused.
 */
function wait(context: CommandContext, args: readonly Buffer[]): Reply {
  if (count(args[1]) === null || count(args[2]) === null) return errors.notInteger();
  const state = replicationOf(context.server.backend);
  const lsn = context.client.lastWriteLsn;
  return reply.integer(state.replicas.filter((replica) => replica.ackedLsn >= lsn).length);
}

function policyOf(server: ServerContext): DurabilityPolicy {
  return server.backend.durability?.() ?? server.policy;
}

interface Parameter {
  get(server: ServerContext): string;
  /** The policy field this parameter sets, if it is settable. */
  policy?: keyof DurabilityPolicy;
}

const parameters: Record<string, Parameter> = {
  acks: { get: (server) => policyOf(server).acks, policy: 'acks' },
  'min-replicas': { get: (server) => String(policyOf(server).minReplicas), policy: 'minReplicas' },
  'commit-timeout-ms': {
    get: (server) => String(policyOf(server).commitTimeoutMs),
    policy: 'commitTimeoutMs',
  },
  'replica-timeout-ms': {
    get: (server) => String(policyOf(server).replicaTimeoutMs),
    policy: 'replicaTimeoutMs',
  },
  'node-id': { get: (server) => server.nodeId },
  appendonly: { get: () => 'yes' },
  appendfsync: { get: () => 'always' },
  save: { get: () => '' },
  databases: { get: () => '1' },
  timeout: { get: () => '0' },
  port: { get: (server) => String(server.address.port) },
  bind: { get: (server) => server.address.host },
  maxclients: { get: (server) => String(server.limits.clientsMax) },
  'proto-max-bulk-len': { get: (server) => String(server.limits.bulkBytesMax) },
};

function configGet(context: CommandContext, args: readonly Buffer[]): Reply {
  const patterns = args.slice(2).map((arg) => text(arg));
  const names = Object.keys(parameters).filter((name) =>
    patterns.some((pattern) => globMatchText(pattern, name)),
  );
  return reply.map(names.map((name) => [name, reply.bulk(parameters[name]!.get(context.server))]));
}

function policyValue(
  field: keyof DurabilityPolicy,
  value: string,
): DurabilityPolicy[typeof field] | null {
  if (field === 'acks') return value === 'quorum' || value === 'all' ? value : null;
  const number = count(Buffer.from(value));
  return number;
}

async function configSet(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  if (args.length < 4 || args.length % 2 !== 0) return errors.wrongArguments('config|set');
  const change: Partial<Record<keyof DurabilityPolicy, unknown>> = {};
  for (let index = 2; index < args.length; index += 2) {
    const name = text(args[index]).toLowerCase();
    const parameter = parameters[name];
    if (parameter === undefined) {
      return reply.error(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
    }
    if (parameter.policy === undefined) return reply.error(`ERR CONFIG SET ${name} is read-only`);
    const value = policyValue(parameter.policy, text(args[index + 1]));
    if (value === null) {
      return reply.error(
        `ERR Invalid argument '${text(args[index + 1])}' for CONFIG SET '${name}'`,
      );
    }
    change[parameter.policy] = value;
  }
  const setter = context.server.backend.setDurability;
  if (setter === undefined) return errors.singleNode('CONFIG SET of the durability policy');
  await setter.call(context.server.backend, change as Partial<DurabilityPolicy>);
  return reply.ok();
}

function config(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const subcommand = keyword(args[1]);
  if (subcommand === 'GET') {
    return args.length < 3 ? errors.wrongArguments('config|get') : configGet(context, args);
  }
  if (subcommand === 'SET') return configSet(context, args);
  if (subcommand === 'RESETSTAT') {
    context.server.stats.reset();
    return reply.ok();
  }
  if (subcommand === 'REWRITE') return errors.unsupported('CONFIG REWRITE');
  return reply.error(`ERR unknown subcommand '${text(args[1]).slice(0, 64)}'. Try CONFIG HELP.`);
}

/** STATUS requestId: what became of the write that carried it (DESIGN §4 "Request ids"). */
function status(context: CommandContext, args: readonly Buffer[]): Reply {
  const requestId = text(args[1]);
  if (requestId.length === 0 || requestId.length > 256) {
    return reply.error('ERR a request id is 1 to 256 characters');
  }
  const result = context.server.backend.status(requestId);
  const entries: [string, Reply][] = [['status', reply.bulk(result.status)]];
  if (result.status !== 'unknown') entries.push(['lsn', reply.integer(result.lsn)]);
  return reply.map(entries);
}

async function checkpoint(context: CommandContext): Promise<Reply> {
  const result = await context.server.backend.checkpoint();
  context.server.lastCheckpoint = { lsn: result.lsn, wallMs: context.server.clock.wallMs() };
  return reply.integer(result.lsn);
}

/** FAILOVER [TO node-id] [FORCE] [TIMEOUT ms]. */
async function failover(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  let target: string | null = null;
  let force = false;
  let timeoutMs = 10_000;
  for (let index = 1; index < args.length; index++) {
    const option = keyword(args[index]);
    if (option === 'TO' && index + 1 < args.length) target = text(args[++index]);
    else if (option === 'FORCE') force = true;
    else if (option === 'TIMEOUT' && index + 1 < args.length) {
      const value = count(args[++index]);
      if (value === null || value < 1) return errors.notInteger();
      timeoutMs = value;
    } else if (option === 'ABORT') return errors.unsupported('FAILOVER ABORT');
    else return errors.syntax();
  }
  const backend = context.server.backend;
  if (backend.failover === undefined) return errors.singleNode('FAILOVER');
  await backend.failover({ target, force, timeoutMs });
  return reply.ok();
}

const admin = ['admin'] as const;
const none = [0, 0, 0] as const;

export const adminCommands: readonly CommandSpec[] = [
  {
    name: 'info',
    arity: -1,
    order: 'read',
    flags: [],
    keys: none,
    summary: 'INFO [section ...]',
    run: info,
  },
  {
    name: 'role',
    arity: 1,
    order: 'read',
    flags: ['fast'],
    keys: none,
    summary: 'replication role',
    run: role,
  },
  {
    name: 'wait',
    arity: 3,
    order: 'read',
    flags: [],
    keys: none,
    summary: 'WAIT numreplicas timeout',
    run: wait,
  },
  {
    name: 'config',
    arity: -2,
    order: 'read',
    flags: admin,
    keys: none,
    summary: 'CONFIG GET|SET|RESETSTAT',
    run: config,
  },
  {
    name: 'status',
    arity: 2,
    order: 'read',
    flags: ['readonly', 'fast'],
    keys: none,
    summary: 'STATUS request-id',
    run: status,
  },
  {
    name: 'checkpoint',
    arity: 1,
    order: 'read',
    flags: admin,
    keys: none,
    summary: 'write a checkpoint now',
    run: checkpoint,
  },
  {
    name: 'failover',
    arity: -1,
    order: 'read',
    flags: admin,
    keys: none,
    summary: 'FAILOVER [TO node-id] [FORCE] [TIMEOUT ms]',
    run: failover,
  },
];
