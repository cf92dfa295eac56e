/**
 * A node child process for multi-process tests: opens a StoreNode from the
 * JSON config in argv[2] (protocol.ts) and serves commands over the Node
 * IPC channel (child_process.fork). A put is answered only after range 1's
 * replica acknowledged it (applied on the leader); a put to a non-leader
 * fails with NOT_LEADER and the leader's node id when known, so the test
 * client retries there. Exits when the parent goes away (no orphans).
 */
import { StoreNode } from '../../src/node/index.js';
import { INITIAL_EPOCH, NotLeaderError, ReplicaError } from '../../src/shard/range/index.js';
import { prefixEnd } from '../../src/shard/mvcc/index.js';
import {
  SCAN_LIMIT,
  TEST_PROPOSER,
  type Command,
  type NodeProcessConfig,
  type OkReply,
  type Reply,
  type Request,
} from './protocol.js';

const RANGE = 1;
/** Exit code after a fatal host error (crash rather than corrupt). */
const EXIT_FATAL = 70;
/** Exit code when the config is unusable or the node fails to open. */
const EXIT_OPEN_FAILED = 71;
const epoch = INITIAL_EPOCH;
const proposer = Buffer.from(TEST_PROPOSER);

function send(msg: unknown): void {
  // The channel may be gone (parent killed): nothing to tell anyone then.
  if (process.connected) process.send?.(msg);
}

async function run(node: StoreNode, cmd: Command): Promise<Omit<OkReply, 'id' | 'ok'>> {
  const replica = node.range(RANGE);
  switch (cmd.op) {
    case 'put': {
      const r = await replica.put(
        { key: Buffer.from(cmd.key), value: Buffer.from(cmd.value) },
        { epoch, requestId: { proposer, seq: cmd.seq } },
      );
      return { revision: r.header.revision };
    }
    case 'get': {
      const r = await replica.range({ key: Buffer.from(cmd.key) }, { epoch, consistency: cmd.consistency });
      return { revision: r.header.revision, kvs: r.result.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.modRevision })) };
    }
    case 'scan': {
      const key = Buffer.from(cmd.prefix);
      const r = await replica.range(
        { key, rangeEnd: prefixEnd(key), limit: SCAN_LIMIT },
        { epoch, consistency: cmd.consistency },
      );
      return { revision: r.header.revision, kvs: r.result.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString(), modRevision: kv.modRevision })) };
    }
    case 'hash': {
      const h = await replica.hashKV(cmd.revision);
      return { hash: h.hash, hashRevision: h.hashRevision };
    }
    case 'status': {
      const s = node.status(RANGE);
      return { status: { nodeId: node.nodeId, role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: s.applied, revision: s.revision, snapshotsReceived: node.host.stats.snapshotsReceived } };
    }
    case 'close':
      await node.close();
      return {};
  }
}

function errorReply(id: number, e: unknown): Reply {
  if (e instanceof NotLeaderError) {
    const hint = e.leaderHint?.nodeId;
    return { id, ok: false, code: e.code, message: e.message, ...(hint !== undefined && hint !== 0 ? { leaderNodeId: hint } : {}) };
  }
  if (e instanceof ReplicaError) return { id, ok: false, code: e.code, message: e.message };
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'ERROR';
  return { id, ok: false, code, message: e instanceof Error ? e.message : String(e) };
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (raw === undefined || process.send === undefined) {
    console.error('usage: fork(node-process.js, [<config json>]) with an IPC channel');
    process.exit(EXIT_OPEN_FAILED);
  }
  const config = JSON.parse(raw) as NodeProcessConfig;
  const node = await StoreNode.open({
    nodeId: config.nodeId,
    dataDir: config.dataDir,
    peerListen: config.peerListen,
    peers: new Map(config.peers),
    engineKind: config.engineKind,
    ranges: [{ rangeId: RANGE, replicas: config.replicas }],
    tickMs: config.tickMs,
    raft: { electionTick: config.electionTick, heartbeatTick: 1 },
    limits: { logTruncateEntries: config.logTruncateEntries, logKeepEntries: config.logKeepEntries },
    onFatal: (e) => {
      console.error(`node ${config.nodeId}: fatal`, e);
      send({ fatal: e instanceof Error ? e.message : String(e) });
      process.exit(EXIT_FATAL);
    },
  });

  process.on('message', (msg: Request) => {
    void run(node, msg).then(
      (result) => {
        send({ id: msg.id, ok: true, ...result });
        if (msg.op === 'close') process.exit(0);
      },
      (e: unknown) => send(errorReply(msg.id, e)),
    );
  });
  // The parent died or closed the channel: stop rather than linger as an orphan.
  process.on('disconnect', () => {
    void node.close().finally(() => process.exit(0));
  });
  send({ ready: true, nodeId: node.nodeId, port: node.port });
}

main().catch((e: unknown) => {
  console.error('node process failed to start:', e);
  process.exit(EXIT_OPEN_FAILED);
});
