/**
 * The configuration of one member process (`keyspan start`): etcd's flags
 * and etcd's YAML config file (`--config-file`, the same keys as the flags),
 * resolved into one validated {@link MemberConfig}.
 *
 * As etcd 3.4: when a config file is given, every other flag is ignored (a
 * warning names them); the file is the whole configuration. Keys etcd knows
 * but keyspan does not implement are accepted with a warning, so an etcd
 * config file works unchanged; anything else is an error.
 *
 * Pure apart from reading the config file.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { type EngineKind, engineKinds } from '../storage/index.js';
import { parseUrlList, UrlFlagError, type ListenUrl } from '../gateway/urls.js';
import type { ClientTlsFiles } from '../gateway/tls.js';
import { DEFAULT_MAX_REQUEST_BYTES } from '../gateway/validate.js';
import { InitialClusterError, parseInitialCluster, selfMember, type InitialCluster, type ClusterMember } from '../node/index.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import { PERIODIC_RETENTION_MS_MIN, type CompactionPolicy } from '../gateway/compactor-schedule.js';
import { DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS, PROGRESS_NOTIFY_INTERVAL_MS_MIN } from '../gateway/watch/index.js';

/** Upper bound of max-request-bytes (grpc-js caps messages at 2 GiB; etcd suggests <= 10 MiB). */
export const MAX_REQUEST_BYTES_LIMIT = 64 * 1024 * 1024;
/** Largest config file read (a config is a few hundred bytes). */
export const CONFIG_FILE_BYTES_MAX = 1024 * 1024;
/** Smallest heartbeat-interval in ms (a raft tick below 1 ms is meaningless). */
export const HEARTBEAT_INTERVAL_MS_MIN = 1;
/** Largest heartbeat-interval in ms (etcd's own check is looser). */
export const HEARTBEAT_INTERVAL_MS_MAX = 60_000;
/** etcd's largest election timeout (50 s). */
export const ELECTION_TIMEOUT_MS_MAX = 50_000;
/** etcd's default --auth-token-ttl in seconds. */
export const AUTH_TOKEN_TTL_SECONDS_DEFAULT = 300;
/** Largest --auth-token-ttl in seconds (a year; etcd takes any uint). */
export const AUTH_TOKEN_TTL_SECONDS_MAX = 365 * 24 * 3600;

/** The settings keyspan uses, by etcd's flag (and config file key) name, with their defaults. */
export const MEMBER_SETTINGS = {
  name: 'default',
  'data-dir': './data',
  engine: 'leveldb',
  'listen-client-urls': 'http://127.0.0.1:2379',
  'advertise-client-urls': '',
  'listen-peer-urls': 'http://127.0.0.1:2380',
  'initial-advertise-peer-urls': '',
  'initial-cluster': '',
  'initial-cluster-state': 'new',
  'initial-cluster-token': '',
  'max-request-bytes': String(DEFAULT_MAX_REQUEST_BYTES),
  'quota-backend-bytes': '0',
  'listen-metrics-urls': '',
  'auto-compaction-mode': 'periodic',
  'auto-compaction-retention': '0',
  'experimental-watch-progress-notify-interval': '10m',
  'heartbeat-interval': '100',
  'election-timeout': '1000',
  'log-level': 'info',
  // Client TLS (gateway/tls.ts): used when a client URL is https://.
  'cert-file': '',
  'key-file': '',
  'trusted-ca-file': '',
  'client-cert-auth': 'false',
  // Simple tokens' TTL in seconds, renewed on every use (etcd's default 300).
  'auth-token-ttl': String(AUTH_TOKEN_TTL_SECONDS_DEFAULT),
} as const;

/** A setting name of {@link MEMBER_SETTINGS}. */
export type MemberSetting = keyof typeof MEMBER_SETTINGS;

/**
 * etcd 3.4 config keys keyspan accepts and does not act on (a warning names
 * them): security, discovery, proxy, v2, profiling and WAL/snapshot
 * retention knobs that have no counterpart yet.
 */
export const ETCD_KEYS_IGNORED: ReadonlySet<string> = new Set([
  'snapshot-count', 'max-snapshots', 'max-wals', 'wal-dir', 'cors', 'enable-v2', 'enable-pprof', 'metrics',
  'strict-reconfig-check',
  'force-new-cluster', 'discovery', 'discovery-fallback', 'discovery-proxy', 'discovery-srv', 'proxy',
  'proxy-failure-wait', 'proxy-refresh-interval', 'proxy-dial-timeout', 'proxy-write-timeout', 'proxy-read-timeout',
  'peer-transport-security', 'logger', 'log-outputs', 'debug', 'max-txn-ops',
  'grpc-keepalive-min-time', 'grpc-keepalive-interval', 'grpc-keepalive-timeout', 'enable-grpc-gateway',
  'initial-election-tick-advance', 'pre-vote', 'auth-token', 'experimental-initial-corrupt-check',
  'experimental-corrupt-check-time', 'experimental-enable-v2v3', 'experimental-backend-bbolt-freelist-type',
  'experimental-enable-lease-checkpoint', 'experimental-compaction-batch-limit', 'unsafe-no-fsync',
  'self-signed-cert-validity', 'cipher-suites', 'tls-min-version', 'tls-max-version', 'backend-batch-interval',
  'backend-batch-limit',
]);

/** Config file keys etcd reads as Go durations (a number there counts nanoseconds). */
const DURATION_KEYS_IN_NS: ReadonlySet<string> = new Set(['experimental-watch-progress-notify-interval']);

/** A configuration that cannot be used (exit code 2: nothing was started). */
export class MemberConfigError extends Error {
  override readonly name = 'MemberConfigError';
  readonly code = 'MEMBER_CONFIG_INVALID';
}

/** The static cluster this member belongs to. */
export interface MemberCluster {
  readonly initialCluster: InitialCluster;
  readonly self: ClusterMember;
  readonly token: string;
}

/** A validated member configuration. */
export interface MemberConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly engine: EngineKind;
  readonly listenClient: readonly ListenUrl[];
  /** Undefined: the listen URLs with their bound ports. */
  readonly advertiseClientUrls?: readonly string[];
  readonly listenPeer: ListenUrl;
  /** Undefined: the peer listen URL. */
  readonly advertisePeerUrls?: readonly string[];
  /** Undefined without --initial-cluster: a single-member cluster of node 1 (the embedded default). */
  readonly cluster?: MemberCluster;
  readonly initialClusterState: 'new' | 'existing';
  /** Undefined: keyspan's default (derived from the name for the embedded default). */
  readonly clusterToken?: string;
  readonly maxRequestBytes: number;
  /** etcd's space quota: 0 = etcd's default (2 GiB), negative = no quota. */
  readonly quotaBackendBytes: number;
  /** Extra plain-HTTP listeners serving /metrics, /health and /version (none by default). */
  readonly listenMetrics: readonly ListenUrl[];
  /** Automatic compaction; undefined: off (retention 0, etcd's default). */
  readonly autoCompaction?: CompactionPolicy;
  /** Interval of watch progress notifications (etcd's default 10 minutes). */
  readonly progressNotifyIntervalMs: number;
  /** Raft tick (etcd's heartbeat interval). */
  readonly tickMs: number;
  /** Election timeout in ticks. */
  readonly electionTick: number;
  /** Simple tokens' TTL (etcd's --auth-token-ttl, in seconds). */
  readonly authTokenTtlSeconds: number;
  readonly logLevel: LogLevel;
  /** Certificate files of the https:// client URLs; undefined when every client URL is http://. */
  readonly clientTls?: ClientTlsFiles;
}

/** What {@link loadMemberConfig} found besides the config. */
export interface MemberConfigResult {
  readonly config: MemberConfig;
  /** Problems worth a warning line (ignored flags or keys). */
  readonly warnings: readonly string[];
}

const FLAG_OPTIONS = Object.fromEntries(
  [...Object.keys(MEMBER_SETTINGS), 'config-file'].map((k) => [k, { type: 'string' as const }]),
) as Record<MemberSetting | 'config-file', { type: 'string' }>;

/**
 * Reads `keyspan start`'s arguments (and the config file they name) into a
 * validated configuration. Throws MemberConfigError with a clear message.
 */
export async function loadMemberConfig(args: readonly string[]): Promise<MemberConfigResult> {
  let values: Partial<Record<MemberSetting | 'config-file', string>>;
  try {
    values = parseArgs({ args: args.map(boolFlagValue), options: FLAG_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err: unknown) {
    throw new MemberConfigError((err as Error).message);
  }
  const file = values['config-file'];
  if (file === undefined) {
    const settings: Partial<Record<MemberSetting, string>> = { ...values };
    return { config: resolveMemberConfig(settings), warnings: [] };
  }
  const others = Object.keys(values).filter((k) => k !== 'config-file');
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.byteLength > CONFIG_FILE_BYTES_MAX) throw new MemberConfigError(`--config-file ${file}: larger than ${CONFIG_FILE_BYTES_MAX} bytes`);
    text = buf.toString('utf8');
  } catch (err: unknown) {
    if (err instanceof MemberConfigError) throw err;
    throw new MemberConfigError(`--config-file ${file}: ${(err as Error).message}`);
  }
  const parsed = parseConfigFile(text, file);
  const warnings = [...parsed.warnings];
  if (others.length > 0) {
    warnings.push(`--config-file is given: ignoring the flags ${others.map((k) => `--${k}`).join(', ')} (as etcd does)`);
  }
  return { config: resolveMemberConfig(parsed.settings), warnings };
}

/** etcd's boolean flags, given bare (`--client-cert-auth`), read as `=true`. */
const BOOLEAN_FLAGS: ReadonlySet<string> = new Set(['--client-cert-auth']);

function boolFlagValue(arg: string): string {
  return BOOLEAN_FLAGS.has(arg) ? `${arg}=true` : arg;
}

/** etcd's config file nests the client TLS keys under `client-transport-security`. */
const CLIENT_TLS_KEYS: ReadonlySet<string> = new Set(['cert-file', 'key-file', 'trusted-ca-file', 'client-cert-auth']);

/** The settings of a `client-transport-security` mapping; throws MemberConfigError. */
function clientTransportSecurity(value: unknown, where: string): Partial<Record<MemberSetting, string>> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new MemberConfigError(`${where}: 'client-transport-security' must be a mapping`);
  const out: Partial<Record<MemberSetting, string>> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === null || v === '' || v === false) continue;
    if (CLIENT_TLS_KEYS.has(key) && (typeof v === 'string' || typeof v === 'boolean')) out[key as MemberSetting] = String(v);
    else if (key === 'auto-tls' && v === true) throw new MemberConfigError(`${where}: client-transport-security 'auto-tls' is not supported; give cert-file and key-file`);
    else if (!CLIENT_TLS_KEYS.has(key) && key !== 'auto-tls') throw new MemberConfigError(`${where}: unknown key 'client-transport-security.${key}'`);
    else throw new MemberConfigError(`${where}: 'client-transport-security.${key}' must be a string or a boolean`);
  }
  return out;
}

/** Go's strconv.ParseBool, as etcd reads boolean flags. */
function booleanSetting(key: MemberSetting, text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new MemberConfigError(`--${key} must be true or false, not '${text}'`);
}

/** The client TLS files, required when a client URL is https:// (etcd's message); throws MemberConfigError. */
function clientTlsFiles(s: (k: MemberSetting) => string, listenClient: readonly ListenUrl[]): ClientTlsFiles | undefined {
  const clientCertAuth = booleanSetting('client-cert-auth', s('client-cert-auth'));
  const secure = listenClient.find((u) => u.secure === true);
  if (secure === undefined) return undefined;
  const certFile = s('cert-file');
  const keyFile = s('key-file');
  if (certFile === '' || keyFile === '') {
    throw new MemberConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${secure.url} with HTTPS scheme`);
  }
  const ca = s('trusted-ca-file');
  return { certFile, keyFile, ...(ca !== '' ? { trustedCaFile: ca } : {}), clientCertAuth };
}

/**
 * Parses an etcd YAML config file into settings. Values may be YAML
 * strings, numbers or booleans; URL lists are comma-separated strings as in
 * etcd's sample file. Throws MemberConfigError.
 */
export function parseConfigFile(text: string, where = 'config file'): { settings: Partial<Record<MemberSetting, string>>; warnings: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0 });
  } catch (err: unknown) {
    throw new MemberConfigError(`${where}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return { settings: {}, warnings: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new MemberConfigError(`${where}: expected a mapping of etcd config keys`);
  const settings: Partial<Record<MemberSetting, string>> = {};
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key === 'client-transport-security') {
      Object.assign(settings, clientTransportSecurity(value, where));
    } else if (key in MEMBER_SETTINGS) {
      if (value === null) continue; // an empty key: the default
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new MemberConfigError(`${where}: '${key}' must be a string or a number`);
      }
      // etcd decodes a duration key of its file as an integer of nanoseconds.
      settings[key as MemberSetting] = typeof value === 'number' && DURATION_KEYS_IN_NS.has(key) ? `${value}ns` : String(value);
    } else if (ETCD_KEYS_IGNORED.has(key)) {
      warnings.push(`${where}: '${key}' is an etcd setting keyspan does not implement; ignored`);
    } else {
      throw new MemberConfigError(`${where}: unknown key '${key}'`);
    }
  }
  return { settings, warnings };
}

function integerSetting(key: MemberSetting, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new MemberConfigError(`--${key} must be an integer in ${min}..${max}, not '${text}'`);
  }
  return n;
}

function urls(key: MemberSetting, text: string, allowTls = false): ListenUrl[] {
  try {
    return parseUrlList(key, text, { allowTls });
  } catch (err: unknown) {
    if (err instanceof UrlFlagError) throw new MemberConfigError(err.message);
    throw err;
  }
}

/** Validates settings (flags or file) over the defaults; throws MemberConfigError. */
export function resolveMemberConfig(given: Partial<Record<MemberSetting, string>>): MemberConfig {
  const s = (k: MemberSetting): string => given[k] ?? MEMBER_SETTINGS[k];
  const name = s('name');
  if (name === '') throw new MemberConfigError('--name must not be empty');
  const engine = s('engine') as EngineKind;
  if (!engineKinds.includes(engine)) throw new MemberConfigError(`--engine must be one of ${engineKinds.join(', ')}`);
  const dataDir = s('data-dir');
  if (dataDir === '' && engine !== 'memory') throw new MemberConfigError('--data-dir must not be empty');
  const maxRequestBytes = integerSetting('max-request-bytes', s('max-request-bytes'), 1, MAX_REQUEST_BYTES_LIMIT);
  const quotaBackendBytes = integerSetting('quota-backend-bytes', s('quota-backend-bytes'), Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const metricsText = s('listen-metrics-urls');
  const listenMetrics = metricsText === '' ? [] : urls('listen-metrics-urls', metricsText);
  const autoCompaction = compactionPolicy(s('auto-compaction-mode'), s('auto-compaction-retention'));
  const progressNotifyIntervalMs = progressNotifyInterval(s('experimental-watch-progress-notify-interval'));
  const tickMs = integerSetting('heartbeat-interval', s('heartbeat-interval'), HEARTBEAT_INTERVAL_MS_MIN, HEARTBEAT_INTERVAL_MS_MAX);
  const electionMs = integerSetting('election-timeout', s('election-timeout'), 1, ELECTION_TIMEOUT_MS_MAX);
  // etcd: "election-timeout should be at least as 5 times as heartbeat-interval".
  if (electionMs < 5 * tickMs) {
    throw new MemberConfigError(`--election-timeout[${electionMs}ms] should be at least as 5 times as --heartbeat-interval[${tickMs}ms]`);
  }
  // etcd: 0 means the default.
  const authTokenTtlSeconds = integerSetting('auth-token-ttl', s('auth-token-ttl'), 0, AUTH_TOKEN_TTL_SECONDS_MAX) || AUTH_TOKEN_TTL_SECONDS_DEFAULT;
  const logLevel = s('log-level') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new MemberConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const state = s('initial-cluster-state');
  if (state !== 'new' && state !== 'existing') {
    throw new MemberConfigError(`--initial-cluster-state must be 'new' or 'existing', not '${state}'`);
  }

  const listenClient = urls('listen-client-urls', s('listen-client-urls'), true);
  const clientTls = clientTlsFiles(s, listenClient);
  const peers = urls('listen-peer-urls', s('listen-peer-urls'));
  if (peers.length !== 1) throw new MemberConfigError('--listen-peer-urls: exactly one URL is supported');
  const listenPeer = peers[0] as ListenUrl;
  const advertiseClient = s('advertise-client-urls');
  const advertisePeer = s('initial-advertise-peer-urls');
  const advertiseClientUrls = advertiseClient === '' ? undefined : urls('advertise-client-urls', advertiseClient, true).map((u) => u.url);
  const advertisePeerUrls = advertisePeer === '' ? undefined : urls('initial-advertise-peer-urls', advertisePeer).map((u) => u.url);
  const token = s('initial-cluster-token');

  let cluster: MemberCluster | undefined;
  const initial = s('initial-cluster');
  if (initial !== '') {
    try {
      const initialCluster = parseInitialCluster(initial);
      const self = selfMember(initialCluster, name, advertisePeerUrls ?? [listenPeer.url]);
      cluster = { initialCluster, self, token: token === '' ? 'etcd-cluster' : token };
    } catch (err: unknown) {
      if (err instanceof InitialClusterError) throw new MemberConfigError(err.message);
      throw err;
    }
  }
  return {
    name,
    dataDir,
    engine,
    listenClient,
    ...(advertiseClientUrls !== undefined ? { advertiseClientUrls } : {}),
    listenPeer,
    ...(advertisePeerUrls !== undefined ? { advertisePeerUrls } : {}),
    ...(cluster !== undefined ? { cluster } : {}),
    initialClusterState: state,
    ...(token !== '' ? { clusterToken: token } : {}),
    maxRequestBytes,
    quotaBackendBytes,
    listenMetrics,
    ...(autoCompaction !== undefined ? { autoCompaction } : {}),
    progressNotifyIntervalMs,
    tickMs,
    electionTick: Math.max(2, Math.round(electionMs / tickMs)),
    authTokenTtlSeconds,
    logLevel,
    ...(clientTls !== undefined ? { clientTls } : {}),
  };
}

/** Longest duration a duration setting takes (auto-compaction retention, progress-notify interval): 10 years. */
export const DURATION_MS_MAX = 10 * 365 * 24 * 60 * 60 * 1000;

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * A Go duration string (`10m`, `1h30m`, `1.5s`, `500ms`, `0`) in whole
 * milliseconds (rounded down), as etcd's duration flags take them; undefined
 * when it is not one. Negative durations are not accepted.
 */
export function parseDurationMs(text: string): number | undefined {
  const t = text.trim();
  if (t === '0') return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < t.length) {
    part.lastIndex = at;
    const m = part.exec(t);
    if (m === null) return undefined;
    total += Number(m[1]) * (DURATION_UNIT_MS[m[2] as string] as number);
    at = part.lastIndex;
  }
  return at === 0 || !Number.isFinite(total) ? undefined : Math.floor(total);
}

function durationSetting(key: MemberSetting, text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new MemberConfigError(`--${key} must be a duration such as 10m, 1h or 500ms, not '${text}'`);
  if (ms > DURATION_MS_MAX) throw new MemberConfigError(`--${key} must be at most ${DURATION_MS_MAX / 3_600_000}h, not '${text}'`);
  return ms;
}

/**
 * etcd's --auto-compaction-mode and --auto-compaction-retention: periodic
 * takes a duration or a bare number of hours, revision a number of
 * revisions; retention 0 turns automatic compaction off.
 */
function compactionPolicy(mode: string, retention: string): CompactionPolicy | undefined {
  if (mode !== 'periodic' && mode !== 'revision') {
    throw new MemberConfigError(`--auto-compaction-mode must be 'periodic' or 'revision', not '${mode}'`);
  }
  const bare = /^\d+$/.test(retention.trim()) ? Number(retention.trim()) : undefined;
  if (mode === 'revision') {
    if (bare === undefined || !Number.isSafeInteger(bare)) {
      throw new MemberConfigError(`--auto-compaction-retention must be a number of revisions in revision mode, not '${retention}'`);
    }
    return bare === 0 ? undefined : { mode, retentionRevisions: bare };
  }
  const retentionMs = bare !== undefined ? bare * 3_600_000 : durationSetting('auto-compaction-retention', retention);
  if (retentionMs > DURATION_MS_MAX) throw new MemberConfigError(`--auto-compaction-retention must be at most ${DURATION_MS_MAX / 3_600_000}h, not '${retention}'`);
  if (retentionMs === 0) return undefined;
  if (retentionMs < PERIODIC_RETENTION_MS_MIN) {
    throw new MemberConfigError(`--auto-compaction-retention must be at least ${PERIODIC_RETENTION_MS_MIN}ms, not '${retention}'`);
  }
  return { mode, retentionMs };
}

/** --experimental-watch-progress-notify-interval: 0 keeps etcd's default; a positive interval at least the minimum. */
function progressNotifyInterval(text: string): number {
  const ms = durationSetting('experimental-watch-progress-notify-interval', text);
  if (ms === 0) return DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS;
  if (ms < PROGRESS_NOTIFY_INTERVAL_MS_MIN) {
    throw new MemberConfigError(`--experimental-watch-progress-notify-interval must be at least ${PROGRESS_NOTIFY_INTERVAL_MS_MIN}ms, not '${text}'`);
  }
  return ms;
}
