/**
 * etcdserverpb.Maintenance: Status, HashKV, Hash, Alarm, Defragment,
 * Snapshot (a keyspan backup, backup-format.ts) and MoveLeader. Downgrade
 * is not registered, so grpc-js answers it with UNIMPLEMENTED.
 *
 * Node-wide RPCs cover the ranges this node hosts (member = node); with one
 * range over the whole keyspace that is etcd's whole store.
 */
import { createHash } from 'node:crypto';
import { crc32c, KeyCodec, MetaName } from '../shard/mvcc/index.js';
import { RangeKeys, type Replica } from '../shard/replica/index.js';
import type { Engine, EngineSnapshot } from '../storage/index.js';
import { AlarmAction, alarmStatusText, type AlarmMember } from './alarm.js';
import { Backup } from './backup-stream.js';
import { type CallInfo, type GatewayContext, nodeHeader, responseHeader, type ServiceHandlers, type StreamHandler } from './context.js';
import { EtcdError, GrpcStatus } from './errors.js';
import type { EtcdMessage } from './proto.js';
import type { RangeTarget } from './router.js';

/**
 * The etcd version keyspan reports (Status.version, /version). Clients gate
 * features on it (Kubernetes ≥ 3.4.31 / 3.5.13 for watch progress
 * semantics), so it names the oldest API keyspan implements and claims no
 * fix release: the 3.4 wire protocol.
 */
export const ETCD_VERSION_REPORTED = '3.4.0';
/** The cluster version etcd 3.4 reports (`/version` etcdcluster). */
export const ETCD_CLUSTER_VERSION_REPORTED = '3.4.0';

/** Bytes of backup per SnapshotResponse (etcd's snapshotSendBufferSize: 32 KiB). */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
/** Longest a MoveLeader waits for the target to lead when the client set no earlier deadline. */
export const MOVE_LEADER_TIMEOUT_MS = 10_000;
/** etcd's ErrTimeoutLeaderTransfer (not in rpctypes: sent with code Unknown). */
export const LEADER_TRANSFER_TIMEOUT_MESSAGE = 'etcdserver: request timed out, leader transfer took too long';
/** etcd's etcdserver.ErrNoLeader text, listed in Status.errors while no leader is known. */
const STATUS_NO_LEADER = 'etcdserver: no leader';
/** An upper bound of engine keys, for node-wide engine spans (engine keys are short: tags and ids). */
const ENGINE_KEYS_END = Buffer.alloc(16, 0xff);

/** The Maintenance service's handlers. */
export function maintenanceService(ctx: GatewayContext): ServiceHandlers {
  const status = async (): Promise<EtcdMessage> => {
    const ranges = ctx.router.ranges();
    const first = ranges[0];
    const st = first?.raftStatus();
    const dbSize = await ctx.dbSizeBytes();
    const errors: string[] = [];
    if (st === undefined || st.leader === 0) errors.push(STATUS_NO_LEADER);
    for (const a of ctx.alarms.get()) errors.push(alarmStatusText(a));
    return {
      header: nodeHeader(ctx),
      version: ETCD_VERSION_REPORTED,
      dbSize,
      // etcd reports the leader of its one raft group; the node's first range
      // stands in for it (with one range it is exactly that).
      leader: st === undefined || st.leader === 0 ? 0n : ctx.memberIdOfNode(st.leader),
      raftIndex: st?.commit ?? 0,
      raftTerm: st?.term ?? 0,
      raftAppliedIndex: st?.applied ?? 0,
      errors,
      dbSizeInUse: Math.min(dbSize, await rangesBytes(ranges)),
      isLearner: st?.role === 'learner',
    };
  };

  const hashKV = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceAdmin(call.metadata);
    const revision = Number(m['revision'] ?? 0);
    const ranges = ctx.router.ranges();
    const results = [];
    for (const t of ranges) results.push(await t.replica.hashKV(revision > 0 ? revision : 0));
    const one = results[0];
    if (one === undefined) throw new Error('no range is hosted on this node');
    // Several ranges: one hash over the ranges' hashes in key order.
    const hash = results.length === 1 ? one.hash : crc32c(0, Buffer.concat(results.map((r) => u32(r.hash))));
    const header = nodeHeader(ctx);
    return {
      header: responseHeader(ctx, header.revision, header.raft_term),
      hash: hash >>> 0,
      compact_revision: Math.max(...results.map((r) => r.compactRevision)),
      hash_revision: one.hashRevision,
    };
  };

  // etcd hashes its whole bolt file; keyspan hashes every engine key and
  // value of the node's ranges (MVCC data, descriptor, dedupe table, applied
  // index) from one engine snapshot, in key order.
  const hash = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceAdmin(call.metadata);
    const replicas = initialized(ctx.router.ranges());
    const header = nodeHeader(ctx);
    let crc = 0;
    let revision = 0;
    await withSnapshots(replicas, async (snapshotOf) => {
      for (const r of replicas) {
        const keys = new RangeKeys(r.rangeId);
        // The revision the hashed state is at: the snapshot's, not the live one.
        const current = await snapshotOf(r).get(new KeyCodec(keys.mvccPrefix).metaKey(MetaName.CurrentRevision));
        if (current !== undefined) revision = Math.max(revision, current.readUInt32BE(0) * 2 ** 32 + current.readUInt32BE(4));
        for await (const { key, value } of snapshotOf(r).iterate({ gte: keys.start, lt: keys.end })) {
          crc = crc32c(crc, u32(key.length));
          crc = crc32c(crc, key);
          crc = crc32c(crc, u32(value.length));
          crc = crc32c(crc, value);
        }
      }
    });
    return { header: responseHeader(ctx, revision === 0 ? header.revision : revision, header.raft_term), hash: crc >>> 0 };
  };

  const alarm = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceToken(call.metadata); // etcd 3.4.23: any caller may list, raise or clear alarms
    const action = Number(m['action'] ?? 0);
    const memberID = BigInt((m['memberID'] as bigint | number | undefined) ?? 0n);
    const type = Number(m['alarm'] ?? 0);
    let alarms: AlarmMember[] = [];
    switch (action) {
      case AlarmAction.GET:
        alarms = ctx.alarms.get(type);
        break;
      case AlarmAction.ACTIVATE: {
        const a = ctx.alarms.activate(memberID, type);
        alarms = a === undefined ? [] : [a];
        break;
      }
      case AlarmAction.DEACTIVATE: {
        const a = ctx.alarms.deactivate(memberID, type);
        alarms = a === undefined ? [] : [a];
        break;
      }
      default:
        throw new EtcdError('UNKNOWN', `unknown alarm action ${action}`, GrpcStatus.INVALID_ARGUMENT);
    }
    // etcd 3.4's AlarmResponse carries no header.
    return { alarms: alarms.map((a) => ({ memberID: a.memberID, alarm: a.alarm })) };
  };

  // etcd rewrites its bolt file; keyspan asks each engine of the node to
  // compact itself now (LevelDB's CompactRange; docs/storage.md).
  const defragment = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceAdmin(call.metadata);
    const engines = new Set<Engine>(initialized(ctx.router.ranges()).map((r) => r.engine));
    for (const e of engines) await e.compactRange(Buffer.alloc(0), ENGINE_KEYS_END);
    return { header: nodeHeader(ctx) };
  };

  const snapshot: StreamHandler = {
    streaming: 'server',
    async run({ send, call }) {
      ctx.auth.checkMaintenanceAdmin(call.metadata);
      const backup = await Backup.open(initialized(ctx.router.ranges()));
      try {
        const sha = createHash('sha256');
        let sent = 0;
        for await (const blob of backup.content(SNAPSHOT_CHUNK_BYTES)) {
          if (call.signal.aborted) throw EtcdError.of('CANCELED');
          sha.update(blob);
          sent += blob.length;
          await send({ remaining_bytes: backup.contentBytes - sent, blob, version: ETCD_VERSION_REPORTED });
        }
        if (sent !== backup.contentBytes) throw new Error(`backup produced ${sent} bytes, sized ${backup.contentBytes}`);
        // As etcd: the sha256 of everything sent, in a last message of its own.
        await send({ remaining_bytes: 0, blob: sha.digest(), version: ETCD_VERSION_REPORTED });
      } finally {
        await backup.release();
      }
    },
  };

  const moveLeader = async (m: EtcdMessage, call: { signal: AbortSignal }): Promise<EtcdMessage> => {
    const ranges = ctx.router.ranges();
    const first = ranges[0];
    const st = first?.raftStatus();
    // etcd: only the leader moves leadership away.
    if (first === undefined || st === undefined || st.leader === 0 || ctx.memberIdOfNode(st.leader) !== ctx.member.id) {
      throw EtcdError.of('NOT_LEADER');
    }
    const target = BigInt((m['targetID'] as bigint | number | undefined) ?? 0n);
    const replicaOf = (t: RangeTarget): { replicaId: number; role: string } | undefined =>
      t.replica.descriptor.replicas.find((r) => ctx.memberIdOfNode(r.nodeId) === target);
    const targetReplica = replicaOf(first);
    if (targetReplica === undefined || targetReplica.role !== 'voter') throw EtcdError.of('BAD_LEADER_TRANSFEREE');
    const signal = AbortSignal.any([call.signal, AbortSignal.timeout(MOVE_LEADER_TIMEOUT_MS)]);
    for (const t of ranges) {
      const r = replicaOf(t);
      if (r === undefined || r.role !== 'voter') continue;
      const s = t.raftStatus();
      if (s.leader === 0 || ctx.memberIdOfNode(s.leader) !== ctx.member.id) continue;
      try {
        await t.replica.transferLeader(r.replicaId, { epoch: t.epoch, signal });
      } catch (err) {
        if (signal.aborted && !call.signal.aborted) throw new EtcdError('UNKNOWN', LEADER_TRANSFER_TIMEOUT_MESSAGE, GrpcStatus.UNKNOWN, { cause: err });
        throw err;
      }
    }
    // etcd 3.4 and 3.5 answer an empty MoveLeaderResponse (no header).
    return {};
  };

  return {
    Status: status,
    HashKV: hashKV,
    Hash: hash,
    Alarm: alarm,
    Defragment: defragment,
    Snapshot: snapshot,
    MoveLeader: moveLeader,
  };
}

/** The replicas of `targets` that hold a range (an uninitialized one waits for its first snapshot). */
function initialized(targets: readonly RangeTarget[]): Replica[] {
  return targets.map((t) => t.replica).filter((r) => r.isInitialized);
}

/** Runs `body` with one engine snapshot per engine of `replicas`, all taken in one turn, then releases them. */
async function withSnapshots(replicas: readonly Replica[], body: (snapshotOf: (r: Replica) => EngineSnapshot) => Promise<void>): Promise<void> {
  const byEngine = new Map<Engine, EngineSnapshot>();
  for (const r of replicas) if (!byEngine.has(r.engine)) byEngine.set(r.engine, r.engine.snapshot());
  try {
    await body((r) => byEngine.get(r.engine) as EngineSnapshot);
  } finally {
    await Promise.all([...byEngine.values()].map((s) => s.release()));
  }
}

/** The engine's estimate of the bytes the node's ranges hold (Status.dbSizeInUse). */
async function rangesBytes(targets: readonly RangeTarget[]): Promise<number> {
  let bytes = 0;
  for (const r of initialized(targets)) {
    const keys = new RangeKeys(r.rangeId);
    bytes += await r.engine.approximateSize(keys.start, keys.end);
  }
  return bytes;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
