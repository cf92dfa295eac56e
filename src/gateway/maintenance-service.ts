/**
 * etcdserverpb.Maintenance, the part that is implemented: Status, HashKV,
 * Alarm (no alarm is ever raised yet: GET lists none) and Defragment (a
 * no-op, see below). Hash, Snapshot, MoveLeader and Downgrade are not
 * registered, so grpc-js answers them with UNIMPLEMENTED.
 */
import { crc32c } from '../shard/mvcc/index.js';
import { type CallInfo, type GatewayContext, nodeHeader, responseHeader, type ServiceHandlers } from './context.js';
import { EtcdError, GrpcStatus } from './errors.js';
import type { EtcdMessage } from './proto.js';

/**
 * The etcd version keyspan reports (Status.version, /version). Clients gate
 * features on it (Kubernetes ≥ 3.4.31 / 3.5.13 for watch progress
 * semantics), so it names the oldest API keyspan implements and claims no
 * fix release: the 3.4 wire protocol.
 */
export const ETCD_VERSION_REPORTED = '3.4.0';
/** The cluster version etcd 3.4 reports (`/version` etcdcluster). */
export const ETCD_CLUSTER_VERSION_REPORTED = '3.4.0';

/** etcdserverpb.AlarmRequest.AlarmAction values. */
const AlarmAction = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;

/** The Maintenance service's grpc-js handlers. */
export function maintenanceService(ctx: GatewayContext): ServiceHandlers {
  const status = async (): Promise<EtcdMessage> => {
    const ranges = ctx.router.ranges();
    const first = ranges[0];
    const st = first?.raftStatus();
    const dbSize = await ctx.dbSizeBytes();
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
      errors: [],
      dbSizeInUse: dbSize,
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
    const hash =
      results.length === 1
        ? one.hash
        : crc32c(0, Buffer.concat(results.map((r) => { const b = Buffer.alloc(4); b.writeUInt32BE(r.hash >>> 0); return b; })));
    const header = nodeHeader(ctx);
    return {
      header: responseHeader(ctx, header.revision, header.raft_term),
      hash: hash >>> 0,
      compact_revision: Math.max(...results.map((r) => r.compactRevision)),
      hash_revision: one.hashRevision,
    };
  };

  const alarm = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceAdmin(call.metadata); // etcd 3.4: every alarm action, GET included
    const action = Number(m['action'] ?? 0);
    // No quota or corruption checker exists yet, so no alarm is ever active:
    // GET and DEACTIVATE answer an empty list, as etcd does with none raised.
    if (action === AlarmAction.GET || action === AlarmAction.DEACTIVATE) return { header: nodeHeader(ctx), alarms: [] };
    throw new EtcdError('UNKNOWN', 'alarms are not implemented by keyspan yet', GrpcStatus.UNIMPLEMENTED);
  };

  // The LSM engines reclaim space by their own background compaction, so
  // there is nothing to defragment; answering success keeps `etcdctl defrag`
  // (and operators' cron jobs) working.
  const defragment = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    ctx.auth.checkMaintenanceAdmin(call.metadata);
    return { header: nodeHeader(ctx) };
  };

  return {
    Status: status,
    HashKV: hashKV,
    Alarm: alarm,
    Defragment: defragment,
  };
}
