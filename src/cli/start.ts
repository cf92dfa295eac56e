/**
 * `keyspan start`: one member process. Without --initial-cluster it is the
 * embedded default (one node, one range); with it, a member of a static
 * cluster whose node ids are derived from the list (node/initial-cluster.ts).
 *
 * Lifecycle: open the node and the client server, log "ready to serve client
 * requests", then wait for SIGINT or SIGTERM and stop gracefully — the client
 * server first (in-flight calls get a grace period), then the node (host,
 * replicas, engine flushed and closed) — and exit 0. A member that finds it
 * was removed from the cluster stops the same way and exits 0, logging
 * etcd 3.4's two lines about it. A fatal node error exits 1 (crash rather
 * than corrupt; a supervisor restarts the process).
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startEmbedded, type Embedded, type EmbeddedCluster } from '../gateway/embedded.js';
import { ClientTlsError, loadClientTls, type ClientTls } from '../gateway/tls.js';
import { readNodeMeta } from '../node/index.js';
import { createLogger, errorText, type Logger } from './logger.js';
import { loadMemberConfig, MemberConfigError, type MemberConfig } from './member-config.js';

/** Help text of `keyspan start`. */
export const START_USAGE = `Usage: keyspan start [flags]

Runs one member. Flags are etcd's where they mean the same:
  --name <name>                        Member name (default "default")
  --data-dir <dir>                     Data directory (default ./data)
  --engine <kind>                      Storage engine: leveldb (default), rocksdb, memory, wal
  --listen-client-urls <urls>          Client URLs, gRPC and JSON gateway (default http://127.0.0.1:2379)
  --advertise-client-urls <urls>       Client URLs shown in member list (default: the listen URLs)
  --listen-peer-urls <url>             Peer URL: raft and member-to-member RPCs (default http://127.0.0.1:2380)
  --initial-advertise-peer-urls <urls> This member's peer URLs as the others dial them (default: the listen URL)
  --initial-cluster <name=url,...>     Every member of a static cluster; node ids follow the names' sorted order
  --initial-cluster-state <new|existing>  'new' bootstraps; 'existing' joins a running cluster after 'member add' (a restart works with either)
  --initial-cluster-token <token>      Part of the cluster id (default "etcd-cluster")
  --max-request-bytes <n>              Largest client request (default 1572864)
  --quota-backend-bytes <n>            Space quota; raises NOSPACE when reached (0: 2 GiB default, <0: none)
  --listen-metrics-urls <urls>         Extra plain-HTTP listeners for /metrics, /health, /version (default none)
  --auto-compaction-mode <mode>        periodic (default) or revision
  --auto-compaction-retention <value>  periodic: duration or hours ("1h", "30m", "2"); revision: revisions kept; 0: off
  --experimental-watch-progress-notify-interval <duration>  Watch progress notifications (default 10m)
  --heartbeat-interval <ms>            Raft tick (default 100)
  --election-timeout <ms>              Raft election timeout (default 1000)
  --log-level <level>                  debug, info (default), warn, error
  --auth-token-ttl <seconds>           Lifetime of an unused simple auth token (default 300)
  --cert-file <path>                   Client TLS certificate (PEM), for https:// client URLs
  --key-file <path>                    Client TLS key (PEM)
  --trusted-ca-file <path>             CA bundle (PEM) client certificates are verified against
  --client-cert-auth                   Require client certificates signed by --trusted-ca-file
  --config-file <path>                 etcd YAML config file; when given, all other flags are ignored (as etcd)
`;

/** Runs `keyspan start` with its arguments; resolves with the exit code. */
export async function startCommand(args: readonly string[]): Promise<number> {
  let config: MemberConfig;
  let warnings: readonly string[];
  let testKnobs: { revisionCompactionCheckIntervalMs?: number };
  try {
    ({ config, warnings } = await loadMemberConfig(args));
    testKnobs = revisionCompactionCheckInterval();
  } catch (err: unknown) {
    if (!(err instanceof MemberConfigError)) throw err;
    process.stderr.write(`keyspan start: ${err.message}\n\nRun 'keyspan start --help' for the flags.\n`);
    return 2;
  }
  const log = createLogger({ level: config.logLevel });
  for (const w of warnings) log.warn(w);
  return await runMember(config, log, testKnobs);
}

/**
 * Test-only knob: the environment variable shortening revision-mode
 * auto-compaction's check interval (etcd's fixed 5 minutes), in ms. Not a
 * user setting: end-to-end tests cannot wait 5 minutes.
 */
export const TEST_REVISION_COMPACTION_CHECK_MS_ENV = 'KEYSPAN_TEST_REVISION_COMPACTION_CHECK_MS';

function revisionCompactionCheckInterval(): { revisionCompactionCheckIntervalMs?: number } {
  const text = process.env[TEST_REVISION_COMPACTION_CHECK_MS_ENV];
  if (text === undefined || text === '') return {};
  const ms = Number(text);
  if (!Number.isSafeInteger(ms) || ms < 1) throw new MemberConfigError(`${TEST_REVISION_COMPACTION_CHECK_MS_ENV} must be a positive integer (ms), not '${text}'`);
  return { revisionCompactionCheckIntervalMs: ms };
}

/** The cluster part of the embedded options, from the member config. */
function embeddedCluster(config: MemberConfig): EmbeddedCluster | undefined {
  const c = config.cluster;
  if (c === undefined) return undefined;
  return {
    members: c.initialCluster.members,
    localNodeId: c.self.nodeId,
    record: { initialCluster: c.initialCluster.canonical, token: c.token },
    // A new member after MemberAdd joins the running cluster (docs/operations.md "Membership").
    join: config.initialClusterState === 'existing',
  };
}

async function runMember(config: MemberConfig, log: Logger, testKnobs: { revisionCompactionCheckIntervalMs?: number }): Promise<number> {
  const dataDir = resolve(config.dataDir);
  if (config.engine !== 'memory') {
    await mkdir(dataDir, { recursive: true });
    // A single member has no cluster to join: 'existing' only restarts one.
    if (config.cluster === undefined && config.initialClusterState === 'existing' && (await readNodeMeta(dataDir).catch(() => undefined)) === undefined) {
      log.error('cannot join an existing cluster without --initial-cluster listing its members; start a single member with --initial-cluster-state new', { dataDir });
      return 2;
    }
  }

  let fatal: ((err: unknown) => void) | undefined;
  let removed: (() => void) | undefined;
  const stopped = new Promise<string>((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
    fatal = (err) => {
      log.error('node stopped on an unrecoverable error', { error: errorText(err) });
      done('fatal');
    };
    removed = () => {
      log.error('the member has been permanently removed from the cluster');
      log.info('the data-dir used by this member must be removed.', { dataDir });
      done('removed');
    };
  });

  const cluster = embeddedCluster(config);
  log.info('starting a member', {
    name: config.name,
    dataDir: config.engine === 'memory' ? undefined : dataDir,
    engine: config.engine,
    nodeId: cluster?.localNodeId ?? 1,
    initialCluster: cluster?.record.initialCluster,
    initialClusterState: config.initialClusterState,
  });
  // Client TLS: the certificate files of https:// client URLs, read before anything starts.
  let clientTls: ClientTls | undefined;
  try {
    clientTls = config.clientTls === undefined ? undefined : await loadClientTls(config.clientTls);
  } catch (err: unknown) {
    if (!(err instanceof ClientTlsError)) throw err;
    log.error('cannot serve client TLS', { error: err.message });
    return 2;
  }
  let embedded: Embedded;
  try {
    embedded = await startEmbedded({
      ...(clientTls !== undefined ? { clientTls } : {}),
      name: config.name,
      dataDir,
      engineKind: config.engine,
      listenClient: config.listenClient,
      listenPeer: config.listenPeer,
      ...(config.advertiseClientUrls !== undefined ? { advertiseClientUrls: config.advertiseClientUrls } : {}),
      ...(config.advertisePeerUrls !== undefined ? { advertisePeerUrls: config.advertisePeerUrls } : {}),
      ...(config.clusterToken !== undefined ? { clusterToken: config.clusterToken } : {}),
      ...(cluster !== undefined ? { cluster } : {}),
      maxRequestBytes: config.maxRequestBytes,
      quotaBackendBytes: config.quotaBackendBytes,
      authTokenTtlMs: config.authTokenTtlSeconds * 1000,
      listenMetrics: config.listenMetrics,
      ...(config.autoCompaction !== undefined ? { autoCompaction: config.autoCompaction } : {}),
      ...testKnobs,
      onCompaction: (e) =>
        e.kind === 'compacted'
          ? log.info('finished auto-compaction', { compactRevision: e.revision })
          : log.warn('failed auto-compaction', { revision: e.revision, error: errorText(e.error) }),
      progressNotifyIntervalMs: config.progressNotifyIntervalMs,
      tickMs: config.tickMs,
      raft: { electionTick: config.electionTick },
      onInternalError: (method, err) => log.error('request failed inside keyspan', { method, error: errorText(err) }),
      onFatal: (err) => fatal?.(err),
      onRemoved: () => removed?.(),
    });
  } catch (err: unknown) {
    log.error('failed to start', { error: errorText(err) });
    return 1;
  }
  log.info('opened node', {
    name: config.name,
    nodeId: embedded.node.nodeId,
    peerUrls: embedded.member.peerURLs,
    memberId: embedded.member.id.toString(16),
  });
  log.info('ready to serve client requests', {
    clientUrls: embedded.clientUrls,
    protocols: 'etcd v3 gRPC and JSON gateway (HTTP/1.1) on each client URL',
    memberId: embedded.member.id.toString(16),
  });
  if (embedded.metricsUrls.length > 0) log.info('serving metrics', { metricsUrls: embedded.metricsUrls, paths: '/metrics /health /version' });

  const signal = await stopped;
  if (signal !== 'removed') log.info('received signal; shutting down', { signal });
  try {
    await embedded.close();
  } catch (err: unknown) {
    log.error('shutdown failed', { error: errorText(err) });
    return 1;
  }
  log.info('stopped', { name: config.name });
  return signal === 'fatal' ? 1 : 0;
}
