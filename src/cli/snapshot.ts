/**
 * `keyspan snapshot restore|status`: offline operations on a backup file
 * written by Maintenance.Snapshot (`etcdctl snapshot save`); format in
 * src/gateway/backup-format.ts, operator's guide in docs/operations-backup.md.
 *
 * restore rebuilds a data directory that `keyspan start` serves at the
 * backed-up revision, as a new single-member cluster (new raft logs, a fresh
 * range descriptor per range with this node as its only voter; request
 * dedupe records are not carried over). It checks the sha256 first, builds
 * the directory under a temporary name next to the target and renames it
 * into place only when complete, so a failed restore leaves no half-built
 * data directory behind.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EMBEDDED_NODE_ID } from '../gateway/embedded.js';
import { BACKUP_SHA256_BYTES, BackupFormatError, readBackup, type BackupHeader, type BackupRange } from '../gateway/backup-format.js';
import { parseUrlList } from '../gateway/urls.js';
import { StoreNode, enginePath, type BootstrapRange } from '../node/index.js';
import { crc32c, KeyCodec, MetaName } from '../shard/mvcc/index.js';
import { RangeKeys } from '../shard/replica/index.js';
import { type BatchOp, type Engine, type EngineKind, openEngine } from '../storage/index.js';

/** Help text of `keyspan snapshot`. */
export const SNAPSHOT_USAGE = `Usage:
  keyspan snapshot restore <file> [flags]   Rebuild a data directory from a backup
  keyspan snapshot status <file> [-w json]  Print a backup's hash, revision, records and size

Flags of restore (named as etcd's):
  --data-dir <dir>                      Directory to create; must not exist or be empty (default ./data)
  --name <name>                         Member name (default "default")
  --initial-cluster <name=url>          The restored cluster: exactly this one member
  --initial-advertise-peer-urls <urls>  This member's peer URLs (must match --initial-cluster)
  --initial-cluster-token <token>       Accepted for etcd compatibility; pass it to 'keyspan start'
  --engine <kind>                       leveldb (default) or rocksdb
`;

/** Records written per engine batch while restoring. */
const RESTORE_BATCH_RECORDS_MAX = 1024;
/** Bytes written per engine batch while restoring. */
const RESTORE_BATCH_BYTES_MAX = 4 * 1024 * 1024;
/** Peer listener of the temporary node that bootstraps the restored ranges (loopback, ephemeral). */
const RESTORE_PEER_LISTEN = '127.0.0.1:0';

/** A restore or status that cannot proceed: the message is for the operator. */
export class SnapshotCommandError extends Error {
  override readonly name = 'SnapshotCommandError';
}

/** Runs `keyspan snapshot <sub> ...` with `argv` after `snapshot`; returns the exit code. */
export async function snapshotCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'restore':
        return await restoreCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(SNAPSHOT_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        process.stderr.write(`keyspan snapshot: unknown command '${sub}'\n\n${SNAPSHOT_USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof SnapshotCommandError || err instanceof BackupFormatError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function restoreCommand(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        'data-dir': { type: 'string', default: './data' },
        name: { type: 'string', default: 'default' },
        'initial-cluster': { type: 'string' },
        'initial-advertise-peer-urls': { type: 'string' },
        'initial-cluster-token': { type: 'string' },
        engine: { type: 'string', default: 'leveldb' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new SnapshotCommandError(`${(err as Error).message}\n\n${SNAPSHOT_USAGE}`);
  }
  const file = onePositional(parsed.positionals, 'restore');
  const v = parsed.values;
  checkMembership(v.name, v['initial-cluster'], v['initial-advertise-peer-urls']);
  const engineKind = v.engine as EngineKind;
  if (engineKind !== 'leveldb' && engineKind !== 'rocksdb') throw new SnapshotCommandError('--engine must be leveldb or rocksdb');
  const result = await restoreBackup({ file, dataDir: v['data-dir'], engineKind });
  process.stdout.write(
    `restored snapshot ${file} into ${result.dataDir}: revision ${result.header.revision}, ` +
      `${result.ranges.length} range(s), ${result.records} records\n`,
  );
  return 0;
}

async function statusCommand(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { 'write-out': { type: 'string', short: 'w', default: 'table' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new SnapshotCommandError(`${(err as Error).message}\n\n${SNAPSHOT_USAGE}`);
  }
  const file = onePositional(parsed.positionals, 'status');
  const format = parsed.values['write-out'];
  if (format !== 'table' && format !== 'json' && format !== 'simple') throw new SnapshotCommandError('--write-out must be table, simple or json');
  const s = await backupStatus(file);
  const hash = s.hash.toString(16).padStart(8, '0');
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ hash: s.hash, revision: s.revision, totalKey: s.records, totalSize: s.totalBytes })}\n`);
  } else if (format === 'simple') {
    process.stdout.write(`${hash}, ${s.revision}, ${s.records}, ${s.totalBytes}\n`);
  } else {
    process.stdout.write(table(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [hash, String(s.revision), String(s.records), `${s.totalBytes} B`]));
  }
  return 0;
}

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  readonly file: string;
  /** Must not exist, or be an empty directory. */
  readonly dataDir: string;
  readonly engineKind: 'leveldb' | 'rocksdb';
}

/** What a restore wrote. */
export interface RestoreResult {
  readonly dataDir: string;
  readonly header: BackupHeader;
  readonly ranges: readonly BackupRange[];
  readonly records: number;
}

/**
 * Rebuilds a data directory from a backup file (see the module comment).
 * Throws SnapshotCommandError or BackupFormatError and leaves `dataDir`
 * untouched when the backup is corrupt or the directory is in use.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(options.dataDir);
  await checkTargetEmpty(dataDir);
  const contentBytes = await verifyBackup(options.file);
  await mkdir(dirname(dataDir), { recursive: true });
  const tmp = join(dirname(dataDir), `.${basename(dataDir)}.restore-${process.pid}-${Date.now()}`);
  try {
    const written = await writeRecords(options.file, contentBytes, enginePath(tmp), options.engineKind);
    // Bootstrapping the node writes node.json, a fresh raft log per range at
    // the initial index, and each range's descriptor and applied index; the
    // MVCC store opens on the restored records and continues at their revision.
    const node = await StoreNode.open({
      nodeId: EMBEDDED_NODE_ID,
      dataDir: tmp,
      engineKind: options.engineKind,
      peerListen: RESTORE_PEER_LISTEN,
      peers: new Map(),
      ranges: written.ranges.map((r): BootstrapRange => ({ rangeId: r.rangeId, start: r.start, end: r.end, replicas: [EMBEDDED_NODE_ID] })),
    });
    await node.close();
    await checkTargetEmpty(dataDir);
    await rmdir(dataDir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await rename(tmp, dataDir);
    await syncDir(dirname(dataDir));
    return { dataDir, ...written };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** A backup's summary, as `keyspan snapshot status` prints it. */
export interface BackupStatus {
  /** crc32c over every record's key and value, in file order. */
  readonly hash: number;
  readonly revision: number;
  readonly records: number;
  /** Bytes of the file, sha256 included. */
  readonly totalBytes: number;
  readonly ranges: readonly BackupRange[];
}

/** Verifies and reads a backup file (status). */
export async function backupStatus(file: string): Promise<BackupStatus> {
  const contentBytes = await verifyBackup(file);
  let hash = 0;
  let revision = 0;
  let records = 0;
  const ranges: BackupRange[] = [];
  for await (const item of readBackup(contentOf(file, contentBytes))) {
    if (item.type === 'header') revision = item.header.revision;
    else if (item.type === 'range') ranges.push(item.range);
    else if (item.type === 'record') {
      hash = crc32c(crc32c(hash, item.key), item.value);
      records++;
    }
  }
  return { hash: hash >>> 0, revision, records, totalBytes: contentBytes + BACKUP_SHA256_BYTES, ranges };
}

/** Checks the trailing sha256; returns the bytes of content before it. */
export async function verifyBackup(file: string): Promise<number> {
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new SnapshotCommandError(`cannot read snapshot file ${file}: ${e.code ?? e.message}`);
  });
  if (!st.isFile()) throw new SnapshotCommandError(`${file} is not a file`);
  if (st.size <= BACKUP_SHA256_BYTES) throw new SnapshotCommandError(`snapshot file ${file} is too short (${st.size} bytes)`);
  const contentBytes = st.size - BACKUP_SHA256_BYTES;
  const sha = createHash('sha256');
  for await (const chunk of contentOf(file, contentBytes)) sha.update(chunk);
  const fh = await open(file, 'r');
  const stored = Buffer.alloc(BACKUP_SHA256_BYTES);
  try {
    await fh.read(stored, 0, BACKUP_SHA256_BYTES, contentBytes);
  } finally {
    await fh.close();
  }
  if (!sha.digest().equals(stored)) {
    throw new SnapshotCommandError(`snapshot file ${file}: sha256 mismatch (the file is corrupt or truncated)`);
  }
  return contentBytes;
}

/** The file's first `contentBytes` bytes as a stream. */
function contentOf(file: string, contentBytes: number): AsyncIterable<Buffer> {
  return createReadStream(file, { start: 0, end: contentBytes - 1, highWaterMark: 256 * 1024 });
}

/** Writes the backup's MVCC records into a new engine at `path`; returns what was written. */
async function writeRecords(
  file: string,
  contentBytes: number,
  path: string,
  kind: 'leveldb' | 'rocksdb',
): Promise<{ header: BackupHeader; ranges: BackupRange[]; records: number }> {
  const engine: Engine = await openEngine({ kind, path });
  try {
    let header: BackupHeader | undefined;
    const ranges: BackupRange[] = [];
    let records = 0;
    let prefix: Buffer = Buffer.alloc(0);
    let skipped: Buffer = Buffer.alloc(0);
    let batch: BatchOp[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length > 0) await engine.write(batch);
      batch = [];
      batchBytes = 0;
    };
    for await (const item of readBackup(contentOf(file, contentBytes))) {
      switch (item.type) {
        case 'header':
          header = item.header;
          break;
        case 'range': {
          if (ranges.some((r) => r.rangeId === item.range.rangeId)) throw new BackupFormatError(`range ${item.range.rangeId} appears twice`);
          ranges.push(item.range);
          const keys = new RangeKeys(item.range.rangeId);
          prefix = keys.mvccPrefix;
          // The raft applied index belongs to the old raft log: the new
          // node writes its own with the fresh log.
          skipped = new KeyCodec(keys.mvccPrefix).metaKey(MetaName.AppliedIndex).subarray(keys.mvccPrefix.length);
          break;
        }
        case 'record':
          records++;
          if (item.key.equals(skipped)) break;
          batch.push({ type: 'put', key: Buffer.concat([prefix, item.key]), value: item.value });
          batchBytes += prefix.length + item.key.length + item.value.length;
          if (batch.length >= RESTORE_BATCH_RECORDS_MAX || batchBytes >= RESTORE_BATCH_BYTES_MAX) await flush();
          break;
        case 'rangeEnd':
        case 'end':
          break;
      }
    }
    // Not synced here: the node's bootstrap below ends with a synced write
    // to this engine, which makes everything before it durable.
    await flush();
    if (header === undefined) throw new BackupFormatError('backup has no header');
    if (ranges.length === 0) throw new BackupFormatError('backup holds no range');
    return { header, ranges, records };
  } finally {
    await engine.close();
  }
}

/** etcd refuses to restore over an existing data directory; an empty one is accepted. */
async function checkTargetEmpty(dataDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new SnapshotCommandError(`data-dir ${JSON.stringify(dataDir)}: ${code === 'ENOTDIR' ? 'not a directory' : String(code)}`);
  }
  if (names.length > 0) throw new SnapshotCommandError(`data-dir ${JSON.stringify(dataDir)} exists and is not empty`);
}

/**
 * The restored cluster is one member (member = node): --initial-cluster, if
 * given, must name exactly that member, and agree with the advertised peer
 * URLs.
 */
function checkMembership(name: string, initialCluster: string | undefined, advertisePeerUrls: string | undefined): void {
  if (name === '') throw new SnapshotCommandError('--name must not be empty');
  const advertised = advertisePeerUrls === undefined ? undefined : parseUrls('initial-advertise-peer-urls', advertisePeerUrls);
  if (initialCluster === undefined) return;
  const members = new Map<string, string[]>();
  for (const part of initialCluster.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SnapshotCommandError(`--initial-cluster: '${part}' is not name=url`);
    const n = part.slice(0, eq);
    members.set(n, [...(members.get(n) ?? []), ...parseUrls('initial-cluster', part.slice(eq + 1))]);
  }
  if (members.size !== 1) throw new SnapshotCommandError(`--initial-cluster names ${members.size} members: a restore creates a single-member cluster`);
  const urls = members.get(name);
  if (urls === undefined) throw new SnapshotCommandError(`--initial-cluster must include ${name}=<peer url> (the --name given)`);
  if (advertised !== undefined && [...advertised].sort().join(',') !== [...urls].sort().join(',')) {
    throw new SnapshotCommandError(`--initial-cluster has ${name}=${urls.join(',')} but --initial-advertise-peer-urls=${advertised.join(',')}`);
  }
}

function parseUrls(flag: string, value: string): string[] {
  try {
    return parseUrlList(flag, value).map((u) => u.url);
  } catch (e) {
    throw new SnapshotCommandError(e instanceof Error ? e.message : String(e));
  }
}

function onePositional(positionals: readonly string[], sub: string): string {
  if (positionals.length !== 1 || positionals[0] === '') throw new SnapshotCommandError(`snapshot ${sub} needs exactly one <file> argument\n\n${SNAPSHOT_USAGE}`);
  return positionals[0] as string;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A one-row table in etcdctl's style. */
function table(head: readonly string[], row: readonly string[]): string {
  const widths = head.map((h, i) => Math.max(h.length, (row[i] ?? '').length) + 2);
  const line = `+${widths.map((w) => '-'.repeat(w)).join('+')}+\n`;
  const cells = (cols: readonly string[]): string => `|${cols.map((c, i) => center(c, widths[i] as number)).join('|')}|\n`;
  return `${line}${cells(head)}${line}${cells(row)}${line}`;
}

function center(s: string, width: number): string {
  const left = Math.floor((width - s.length) / 2);
  return `${' '.repeat(left)}${s}${' '.repeat(width - s.length - left)}`;
}
