/**
 * The `keyspan` command line: `keyspan start` runs the embedded default,
 * `keyspan version` prints the version.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type EngineKind, engineKinds } from '../storage/index.js';
import { startEmbedded, type Embedded } from '../gateway/embedded.js';
import { parseUrlList, UrlFlagError, type ListenUrl } from '../gateway/urls.js';
import { DEFAULT_MAX_REQUEST_BYTES } from '../gateway/validate.js';

const VERSION = '0.1.0';

const USAGE = `Usage: keyspan <command> [flags]

Commands:
  start      Run the embedded default: one node, one range, etcd API on 127.0.0.1:2379
  version    Print the version

Flags of start (named as etcd's where they mean the same):
  --name <name>                        Member name (default "default")
  --data-dir <dir>                     Data directory (default ./data)
  --engine <kind>                      Storage engine: leveldb (default), rocksdb, memory
  --listen-client-urls <urls>          Client URLs, gRPC and JSON gateway (default http://127.0.0.1:2379)
  --advertise-client-urls <urls>       Client URLs shown in member list (default: the listen URLs)
  --listen-peer-urls <url>             Peer (raft) URL (default http://127.0.0.1:2380)
  --initial-advertise-peer-urls <urls> Peer URLs shown in member list (default: the listen URL)
  --initial-cluster-token <token>      Derives the cluster id (default: from --name)
  --max-request-bytes <n>              Largest client request (default 1572864)
`;

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'snapshot': return (await import('./snapshot.js')).snapshotCommand(rest);
    case 'version':
    case '--version':
      process.stdout.write(`keyspan ${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`keyspan: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

/** One structured log line on stderr, so stdout stays free for command output. */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, ts: new Date().toISOString(), msg, ...fields })}\n`);
}

/** etcd's defaults for the embedded single-node process. */
const START_DEFAULTS = {
  name: 'default',
  dataDir: './data',
  listenClientUrls: 'http://127.0.0.1:2379',
  listenPeerUrls: 'http://127.0.0.1:2380',
  engine: 'leveldb',
} as const;

/** Upper bound of --max-request-bytes (grpc-js caps messages at 2 GiB; etcd suggests <= 10 MiB). */
const MAX_REQUEST_BYTES_LIMIT = 64 * 1024 * 1024;

async function start(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        name: { type: 'string', default: START_DEFAULTS.name },
        'data-dir': { type: 'string', default: START_DEFAULTS.dataDir },
        engine: { type: 'string', default: START_DEFAULTS.engine },
        'listen-client-urls': { type: 'string', default: START_DEFAULTS.listenClientUrls },
        'advertise-client-urls': { type: 'string' },
        'listen-peer-urls': { type: 'string', default: START_DEFAULTS.listenPeerUrls },
        'initial-advertise-peer-urls': { type: 'string' },
        'initial-cluster-token': { type: 'string' },
        'max-request-bytes': { type: 'string', default: String(DEFAULT_MAX_REQUEST_BYTES) },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err: unknown) {
    process.stderr.write(`keyspan start: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  const kind = v.engine as EngineKind;
  if (!engineKinds.includes(kind)) {
    process.stderr.write(`keyspan start: --engine must be one of ${engineKinds.join(', ')}\n`);
    return 2;
  }
  const maxRequestBytes = Number(v['max-request-bytes']);
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes <= 0 || maxRequestBytes > MAX_REQUEST_BYTES_LIMIT) {
    process.stderr.write(`keyspan start: --max-request-bytes must be an integer in 1..${MAX_REQUEST_BYTES_LIMIT}\n`);
    return 2;
  }
  let listenClient: ListenUrl[];
  let listenPeer: ListenUrl;
  let advertiseClient: string[] | undefined;
  let advertisePeer: string[] | undefined;
  try {
    listenClient = parseUrlList('listen-client-urls', v['listen-client-urls']);
    const peers = parseUrlList('listen-peer-urls', v['listen-peer-urls']);
    if (peers.length !== 1) throw new UrlFlagError('--listen-peer-urls: exactly one URL is supported');
    listenPeer = peers[0] as ListenUrl;
    if (v['advertise-client-urls'] !== undefined) {
      advertiseClient = parseUrlList('advertise-client-urls', v['advertise-client-urls']).map((u) => u.url);
    }
    if (v['initial-advertise-peer-urls'] !== undefined) {
      advertisePeer = parseUrlList('initial-advertise-peer-urls', v['initial-advertise-peer-urls']).map((u) => u.url);
    }
  } catch (err: unknown) {
    process.stderr.write(`keyspan start: ${(err as Error).message}\n`);
    return 2;
  }
  const dataDir = resolve(v['data-dir']);
  if (kind !== 'memory') await mkdir(dataDir, { recursive: true });

  let fatal: ((err: unknown) => void) | undefined;
  const stopped = new Promise<string>((done) => {
    const stop = (signal: string): void => done(signal);
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    fatal = (err) => {
      log('error', 'node stopped on an unrecoverable error', { error: String(err) });
      done('fatal');
    };
  });

  let embedded: Embedded;
  try {
    embedded = await startEmbedded({
      name: v.name,
      dataDir,
      engineKind: kind,
      listenClient,
      listenPeer,
      ...(advertiseClient !== undefined ? { advertiseClientUrls: advertiseClient } : {}),
      ...(advertisePeer !== undefined ? { advertisePeerUrls: advertisePeer } : {}),
      ...(v['initial-cluster-token'] !== undefined ? { clusterToken: v['initial-cluster-token'] } : {}),
      maxRequestBytes,
      onInternalError: (method, err) => log('error', 'request failed inside keyspan', { method, error: String(err) }),
      onFatal: (err) => fatal?.(err),
    });
  } catch (err: unknown) {
    log('error', 'failed to start', { error: err instanceof Error ? err.message : String(err) });
    return 1;
  }
  log('info', 'opened node', { name: v.name, dataDir: kind === 'memory' ? undefined : dataDir, engine: kind, peerUrls: embedded.member.peerURLs });
  log('info', 'ready to serve client requests', {
    clientUrls: embedded.clientUrls,
    protocols: 'etcd v3 gRPC and JSON gateway (HTTP/1.1) on each client URL',
    memberId: embedded.member.id.toString(16),
  });

  const signal = await stopped;
  log('info', 'shutting down', { signal });
  await embedded.close();
  log('info', 'stopped');
  return signal === 'fatal' ? 1 : 0;
}
