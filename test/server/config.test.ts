/**
 * The pure parts of `syncwal serve`, `status` and `cluster`: configuration resolution
 * (flags > env > file > defaults, every error naming its source), the log line formats, the
 * status table, the cluster's node plan, and startup error exit codes.
 */
import { describe, expect, it } from 'vitest';
import { planNodes, clusterOptionsOf } from '../../src/cli/cluster.js';
import { exitCodeOf, serveExitCodes, ServeError } from '../../src/cli/serve.js';
import { formatTable, parseInfo, statusRows } from '../../src/cli/status.js';
import { resolveServeConfig, type ConfigSources } from '../../src/server/config.js';
import { createLogger, formatLine } from '../../src/server/logger.js';

function sources(partial: Partial<ConfigSources>): ConfigSources {
  return { flags: {}, env: {}, file: null, ...partial };
}

describe('resolveServeConfig', () => {
  it('has defaults for a first run', () => {
    const config = resolveServeConfig(sources({}));
    expect(config).toMatchObject({
      nodeId: 'n1',
      dataDir: 'data/n1',
      host: '127.0.0.1',
      port: 7001,
      peerPort: 17001,
      peers: [],
      primaryId: 'n1',
      durability: { acks: 'quorum', minReplicas: 0, commitTimeoutMs: 5000 },
      password: null,
      tls: null,
      logFormat: 'text',
      metricsPort: null,
    });
  });

  it('takes flags over env over file', () => {
    const file = { path: 'node.json', values: { port: 7100, nodeId: 'from-file', acks: 'all' } };
    const env = { SYNCWAL_PORT: '7200', SYNCWAL_NODE_ID: 'from-env' };
    expect(resolveServeConfig(sources({ file })).port).toBe(7100);
    expect(resolveServeConfig(sources({ file, env })).port).toBe(7200);
    const config = resolveServeConfig(sources({ file, env, flags: { port: '7300' } }));
    expect(config.port).toBe(7300);
    expect(config.nodeId).toBe('from-env');
    expect(config.dataDir).toBe('data/from-env');
    expect(config.durability.acks).toBe('all');
    // An empty environment variable counts as unset.
    expect(resolveServeConfig(sources({ file, env: { SYNCWAL_PORT: '' } })).port).toBe(7100);
  });

  it('names the source of a bad value', () => {
    const bad: [Partial<ConfigSources>, RegExp][] = [
      [{ flags: { port: 'abc' } }, /--port 'abc': must be an integer/],
      [{ env: { SYNCWAL_PORT: '70000' } }, /SYNCWAL_PORT '70000': must be in \[0, 65535\]/],
      [{ file: { path: 'c.json', values: { port: -1 } } }, /port in c\.json -1/],
      [{ file: { path: 'c.json', values: { colour: 1 } } }, /c\.json: unknown key 'colour'/],
      [{ file: { path: 'c.json', values: [1] } }, /c\.json: must be a JSON object/],
      [{ flags: { acks: 'some' } }, /--acks 'some': must be one of quorum, all/],
      [{ flags: { nodeId: 'a b' } }, /--node-id 'a b'/],
      [{ flags: { peers: 'n2' } }, /--peers 'n2': a peer is id=host:port/],
      [{ flags: { tlsCert: 'c.pem' } }, /--tls-cert and --tls-key go together/],
      [{ flags: { port: '7001', peerPort: '7001' } }, /--port and --peer-port are both 7001/],
      [{ flags: { minReplicas: '1' } }, /--min-replicas 1: the shard has 0 other node/],
    ];
    for (const [partial, message] of bad) {
      expect(() => resolveServeConfig(sources(partial)), message.source).toThrow(message);
      try {
        resolveServeConfig(sources(partial));
      } catch (error: unknown) {
        expect((error as { code?: string }).code).toBe('INVALID');
      }
    }
  });

  it('checks the shard: peers, primary and secret', () => {
    const peers = 'n2=127.0.0.1:17002, n3=[::1]:17003';
    expect(() => resolveServeConfig(sources({ flags: { peers } }))).toThrow(
      /--primary-id is required with --peers/,
    );
    expect(() => resolveServeConfig(sources({ flags: { peers, primaryId: 'n1' } }))).toThrow(
      /--shard-secret of at least 16 characters/,
    );
    expect(() =>
      resolveServeConfig(
        sources({ flags: { peers, primaryId: 'n9', shardSecret: 'x'.repeat(16) } }),
      ),
    ).toThrow(/--primary-id 'n9' is neither this node nor a peer/);
    expect(() => resolveServeConfig(sources({ flags: { peers: 'n1=h:1' } }))).toThrow(
      /node id 'n1' appears twice/,
    );
    const config = resolveServeConfig(
      sources({
        flags: { peers, primaryId: 'n2' },
        env: { SYNCWAL_SHARD_SECRET: 's'.repeat(16) },
      }),
    );
    expect(config.peers).toEqual([
      { id: 'n2', host: '127.0.0.1', port: 17002 },
      { id: 'n3', host: '::1', port: 17003 },
    ]);
    expect(config.primaryId).toBe('n2');
    expect(config.shardSecret).toBe('s'.repeat(16));
    const fromFile = resolveServeConfig(
      sources({
        file: {
          path: 'c.json',
          values: {
            peers: [{ id: 'n2', host: 'h', port: 1 }],
            primaryId: 'n1',
            shardSecret: 's'.repeat(16),
          },
        },
      }),
    );
    expect(fromFile.peers).toEqual([{ id: 'n2', host: 'h', port: 1 }]);
  });
});

describe('logger', () => {
  it('writes one text or JSON line per event, filtered by level', () => {
    const lines: string[] = [];
    const options = { level: 'info' as const, write: (line: string) => lines.push(line) };
    const wallMs = () => Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const text = createLogger({ ...options, format: 'text', wallMs, base: { node: 'n1' } });
    text.debug('hidden');
    text.info('server.listening', { port: 7001, dir: 'a b', ok: true, gone: undefined });
    const json = createLogger({ ...options, format: 'json', wallMs });
    json.error('node.fenced', { error: 'EIO\nstack', level: 'ignored' });
    expect(lines).toEqual([
      '2025-01-02T03:04:05.678Z INFO  server.listening node=n1 port=7001 dir="a b" ok=true\n',
      '{"time":"2025-01-02T03:04:05.678Z","level":"error","event":"node.fenced",' +
        '"error":"EIO\\nstack"}\n',
    ]);
    expect(formatLine('text', 't', 'warn', 'e', { quote: 'say "x"' })).toBe(
      't WARN  e quote="say \\"x\\""\n',
    );
  });
});

describe('syncwal status table', () => {
  it('shows the node and, on a primary, each replica', () => {
    const info = parseInfo(
      [
        '# Replication',
        'role:master',
        'syncwal_role:primary',
        'slave0:id=n2,ip=127.0.0.1,port=7002,state=online,offset=40,lag=0,eligible=1,lag_lsn=2',
        'node_id:n1',
        'term:3',
        'primary_id:n1',
        'commit_lsn:41',
        'last_lsn:42',
        '',
      ].join('\r\n'),
    );
    const rows = statusRows(info);
    expect(rows.map((row) => [row.node, row.role, row.ackedLsn, row.lag, row.eligible])).toEqual([
      ['n1', 'primary', '42', '0', '-'],
      ['n2', 'replica', '40', '2', 'yes'],
    ]);
    const table = formatTable(rows);
    expect(table[0]).toMatch(/^NODE\s+ROLE\s+TERM\s+COMMIT LSN\s+LAST LSN\s+ACKED LSN\s+LAG/);
    expect(table[1]).toMatch(/^n1\s+primary\s+3\s+41\s+42\s+42\s+0\s+-\s+self$/);
  });
});

describe('syncwal cluster plan', () => {
  it('gives each node its ports, data directory and peers', () => {
    const options = clusterOptionsOf({ nodes: '3', data: 'd' }, {});
    const plans = planNodes(options);
    expect(plans.map((plan) => [plan.id, plan.port, plan.peerPort, plan.dataDir])).toEqual([
      ['n1', 7001, 17001, 'd/n1'],
      ['n2', 7002, 17002, 'd/n2'],
      ['n3', 7003, 17003, 'd/n3'],
    ]);
    const args = plans[1]!.args.join(' ');
    expect(args).toContain('--peers n1=127.0.0.1:17001,n3=127.0.0.1:17003');
    expect(args).toContain('--primary-id n1');
    expect(args).not.toContain('secret');
    expect(planNodes(clusterOptionsOf({ nodes: '1' }, {}))[0]!.args).not.toContain('--peers');
    expect(() => clusterOptionsOf({ nodes: '0' }, {})).toThrow(/--nodes '0'/);
    expect(() => clusterOptionsOf({ logFormat: 'xml' }, {})).toThrow(/--log-format/);
  });
});

describe('serve exit codes', () => {
  it('maps startup failures to distinct codes', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    expect(exitCodeOf(coded('INVALID'))).toBe(serveExitCodes.usage);
    expect(exitCodeOf(coded('LOCKED'))).toBe(serveExitCodes.locked);
    expect(exitCodeOf(coded('CORRUPT'))).toBe(serveExitCodes.corrupt);
    expect(exitCodeOf(coded('IOERR'))).toBe(serveExitCodes.io);
    expect(exitCodeOf(coded('EADDRINUSE'))).toBe(serveExitCodes.portInUse);
    expect(exitCodeOf(new ServeError('x', 78))).toBe(78);
    expect(exitCodeOf(new Error('bug'))).toBe(serveExitCodes.internal);
  });
});
