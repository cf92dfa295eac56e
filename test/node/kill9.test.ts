/**
 * DESIGN property 6 across real processes: nothing acknowledged is lost.
 *
 * Three node processes (LevelDB engines, gRPC on 127.0.0.1) host range 1.
 * Concurrent writers put unique keys, following NOT_LEADER hints, and record
 * every acknowledgement. Mid-load: SIGKILL a follower, keep writing, restart
 * it; SIGKILL the leader, keep writing while a new one is elected; restart
 * it. (Both are never down together: with two of three replicas dead the
 * range has no quorum, so no write could be acknowledged meanwhile.)
 * Then every acknowledged put must be readable with its acknowledged
 * revision — linearizably through the leader and serializably on every
 * replica once it has applied as far — all replicas' hashKV must agree at
 * one revision, and acknowledgements must respect real time (a put acked
 * before another was first sent has the lower revision).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NodeProc, ProcError } from './proc.js';
import type { NodeProcessConfig, Reply, WireKv, WireStatus } from './protocol.js';
import { delay, freePorts, tempDir, waitFor } from './helpers.js';

const IDS = [1, 2, 3] as const;
const TICK_MS = 20;
const ELECTION_TICK = 10;
/**
 * Log truncation far below the load's size: the leader truncates its log
 * while a node is down, so the restarted node is caught up by a raft
 * snapshot (streamed over gRPC, installed by the replica), not by entries.
 */
const LOG_TRUNCATE_ENTRIES = 100;
const LOG_KEEP_ENTRIES = 20;
/** Sequential writers (each waits for its ack before its next put). */
const WRITERS = 4;
/** Acks before the follower is killed. */
const KILL_FOLLOWER_AT = 80;
/** Acks before it is restarted: the leader has certainly truncated its log past the follower's by then. */
const RESTART_FOLLOWER_AT = KILL_FOLLOWER_AT + 2 * LOG_TRUNCATE_ENTRIES;
/** Acks before the leader is killed (possibly before the restarted follower has caught up). */
const KILL_LEADER_AT = RESTART_FOLLOWER_AT + 60;
/** Acks wanted after the leader was killed (under the new leader) before the load stops. */
const ACKS_AFTER_LEADER_KILL = 100;
/** Bounds. */
const TEST_TIMEOUT_MS = 90_000;
const PUT_DEADLINE_MS = 20_000;
const WAIT_MS = 20_000;
const RETRY_MS = 20;
const KEY_PREFIX = 'k/';

interface Ack {
  readonly key: string;
  readonly value: string;
  readonly revision: number;
  readonly writer: number;
  /** When the first attempt was sent / the ack arrived (parent's clock). */
  readonly firstSentAt: number;
  readonly ackedAt: number;
}

describe('kill -9 of a follower and of the leader loses no acknowledged write', { timeout: TEST_TIMEOUT_MS }, () => {
  const dirs = new Map<number, { path: string; cleanup: () => Promise<void> }>();
  const procs = new Map<number, NodeProc>();
  let ports: number[] = [];
  let failed = true;

  const configOf = (id: number): NodeProcessConfig => ({
    nodeId: id,
    dataDir: dirs.get(id)!.path,
    peerListen: `127.0.0.1:${ports[id - 1]!}`,
    peers: IDS.map((p) => [p, `127.0.0.1:${ports[p - 1]!}`] as const),
    engineKind: 'leveldb',
    replicas: [...IDS],
    tickMs: TICK_MS,
    electionTick: ELECTION_TICK,
    logTruncateEntries: LOG_TRUNCATE_ENTRIES,
    logKeepEntries: LOG_KEEP_ENTRIES,
  });
  const live = (): NodeProc[] => [...procs.values()].filter((p) => p.alive);
  const start = async (id: number): Promise<void> => {
    procs.set(id, await NodeProc.start(configOf(id)));
  };

  const status = async (p: NodeProc): Promise<WireStatus> => {
    const r = await p.request({ op: 'status' });
    if (!r.ok || r.status === undefined) throw new Error(`status of node ${p.nodeId}: ${JSON.stringify(r)}`);
    return r.status;
  };
  /** The node every live node agrees leads range 1 (same term), if any. */
  const currentLeader = async (): Promise<number | undefined> => {
    const sts = await Promise.all(live().map(status));
    const l = sts.find((s) => s.role === 'leader');
    if (l === undefined) return undefined;
    return sts.every((s) => s.leader === l.nodeId && s.term === l.term) ? l.nodeId : undefined;
  };
  const waitLeader = async (): Promise<number> => {
    let leader: number | undefined;
    await waitFor(async () => (leader = await currentLeader()) !== undefined, 'a leader all live nodes agree on', WAIT_MS);
    return leader!;
  };

  before(async () => {
    ports = await freePorts(IDS.length);
    for (const id of IDS) dirs.set(id, await tempDir(`kill9-${id}`));
    await Promise.all(IDS.map(start));
  });

  after(async () => {
    // Kill every child, even on failure, before removing their directories.
    await Promise.all([...procs.values()].map((p) => p.kill9()));
    if (failed) {
      for (const p of procs.values()) console.error(`--- node ${p.nodeId} log tail ---\n${p.log.join('\n')}`);
    }
    for (const d of dirs.values()) await d.cleanup();
  });

  it('keeps every acknowledged put through two kills and two restarts', async () => {
    await waitLeader();

    // ---- the load: WRITERS sequential writers until `stop`
    const acks: Ack[] = [];
    let stop = false;
    let leaderGuess: number | undefined;
    let seq = 0;
    const events: string[] = [];
    const t0 = Date.now();
    const event = (what: string): void => {
      events.push(`${what} at ${acks.length} acks (+${Date.now() - t0} ms)`);
    };

    /** One put, retried (same request id, so deduped) until acknowledged; undefined if the load stopped first. */
    const putOnce = async (writer: number, key: string, value: string): Promise<Ack | undefined> => {
      const mySeq = ++seq;
      const firstSentAt = Date.now();
      const deadline = firstSentAt + PUT_DEADLINE_MS;
      let rr = writer;
      let last = '';
      while (Date.now() < deadline) {
        const candidates = live();
        const target =
          (leaderGuess !== undefined ? candidates.find((p) => p.nodeId === leaderGuess) : undefined) ??
          candidates[rr++ % Math.max(1, candidates.length)];
        if (target === undefined) {
          await delay(RETRY_MS);
          continue;
        }
        let reply: Reply;
        try {
          reply = await target.request({ op: 'put', key, value, seq: mySeq });
        } catch (e) {
          if (!(e instanceof ProcError)) throw e;
          last = e.message;
          if (leaderGuess === target.nodeId) leaderGuess = undefined;
          await delay(RETRY_MS);
          continue;
        }
        if (reply.ok) {
          assert.ok(reply.revision !== undefined && reply.revision > 0, `put ${key}: revision ${String(reply.revision)}`);
          return { key, value, revision: reply.revision, writer, firstSentAt, ackedAt: Date.now() };
        }
        last = `${reply.code}: ${reply.message}`;
        if (reply.code === 'NOT_LEADER' && reply.leaderNodeId !== undefined && reply.leaderNodeId !== target.nodeId) {
          leaderGuess = reply.leaderNodeId;
          continue; // retry at the hint at once
        }
        // Leader unknown, replica closing, backpressure: back off and look around.
        if (leaderGuess === target.nodeId) leaderGuess = undefined;
        await delay(RETRY_MS);
      }
      if (stop) return undefined;
      throw new Error(`put ${key} not acknowledged within ${PUT_DEADLINE_MS} ms; last: ${last}`);
    };

    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `${KEY_PREFIX}${w}/${String(i).padStart(5, '0')}`;
        const ack = await putOnce(w, key, `v${w}.${i}`);
        if (ack !== undefined) acks.push(ack);
      }
    };
    const ackCount = (n: number) => (): boolean => acks.length >= n;

    const scenario = async (): Promise<{ follower: number; leader: number }> => {
      await waitFor(ackCount(KILL_FOLLOWER_AT), `${KILL_FOLLOWER_AT} acks`, WAIT_MS);
      const l1 = await waitLeader();
      const follower = IDS.find((id) => id !== l1)!;
      await procs.get(follower)!.kill9();
      event(`killed follower ${follower}`);

      await waitFor(ackCount(RESTART_FOLLOWER_AT), `${RESTART_FOLLOWER_AT} acks with a follower down`, WAIT_MS);
      event(`restarting follower ${follower}`);
      await start(follower);
      event(`follower ${follower} ready`);

      await waitFor(ackCount(KILL_LEADER_AT), `${KILL_LEADER_AT} acks`, WAIT_MS);
      const leader = await waitLeader();
      await procs.get(leader)!.kill9();
      const atKill = acks.length;
      event(`killed leader ${leader}`);

      await waitFor(ackCount(atKill + ACKS_AFTER_LEADER_KILL), `${ACKS_AFTER_LEADER_KILL} acks after the leader was killed`, WAIT_MS);
      return { follower, leader };
    };

    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    let killed: { follower: number; leader: number };
    try {
      killed = await scenario();
    } finally {
      stop = true;
      await Promise.allSettled(writers);
    }
    await Promise.all(writers); // surface a writer's failure
    event('load stopped');
    await start(killed.leader);
    event(`old leader ${killed.leader} ready`);
    assert.ok(acks.length >= KILL_LEADER_AT + ACKS_AFTER_LEADER_KILL, events.join('; '));

    // ---- acknowledgements respect real time and are distinct writes
    const revs = new Set(acks.map((a) => a.revision));
    assert.equal(revs.size, acks.length, 'every acknowledged put has its own revision');
    for (let w = 0; w < WRITERS; w++) {
      const mine = acks.filter((a) => a.writer === w);
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i]!.revision > mine[i - 1]!.revision, `writer ${w}: ${mine[i - 1]!.key}@${mine[i - 1]!.revision} then ${mine[i]!.key}@${mine[i]!.revision}`);
      }
    }
    const byAck = [...acks].sort((a, b) => a.ackedAt - b.ackedAt);
    for (const b of acks) {
      for (const a of byAck) {
        if (a.ackedAt >= b.firstSentAt) break;
        assert.ok(a.revision < b.revision, `${a.key}@${a.revision} was acked before ${b.key}@${b.revision} was sent`);
      }
    }

    // ---- every acknowledged put is in the cluster, linearizably through the leader
    const leader = await waitLeader();
    const scan = async (id: number, consistency: 'linearizable' | 'serializable'): Promise<{ kvs: Map<string, WireKv>; revision: number }> => {
      const r = await procs.get(id)!.request({ op: 'scan', prefix: KEY_PREFIX, consistency });
      if (!r.ok || r.kvs === undefined || r.revision === undefined) throw new Error(`scan on node ${id}: ${JSON.stringify(r)}`);
      return { kvs: new Map(r.kvs.map((kv) => [kv.key, kv])), revision: r.revision };
    };
    const checkAll = (kvs: Map<string, WireKv>, where: string): void => {
      const missing = acks.filter((a) => kvs.get(a.key)?.value !== a.value);
      assert.equal(missing.length, 0, `${where}: ${missing.length} acknowledged puts missing, e.g. ${missing.slice(0, 5).map((a) => a.key).join(', ')} (${events.join('; ')})`);
      const moved = acks.filter((a) => kvs.get(a.key)?.modRevision !== a.revision);
      assert.equal(moved.length, 0, `${where}: ${moved.length} keys at another revision than acknowledged, e.g. ${moved.slice(0, 3).map((a) => `${a.key}@${a.revision}/${kvs.get(a.key)?.modRevision}`).join(', ')}`);
    };
    const lin = await scan(leader, 'linearizable');
    checkAll(lin.kvs, `linearizable scan on leader ${leader}`);

    // A linearizable single-key read of the last acknowledged put on every node (followers forward ReadIndex).
    const lastAck = byAck[byAck.length - 1]!;
    for (const id of IDS) {
      let r: Reply | undefined;
      // Retried: a read forwarded while leadership settles may fail (NOT_LEADER) or be dropped (timeout).
      await waitFor(async () => {
        r = await procs.get(id)!.request({ op: 'get', key: lastAck.key, consistency: 'linearizable' });
        return r.ok;
      }, `linearizable get on node ${id}`, WAIT_MS);
      assert.equal(r?.ok === true ? r.kvs?.[0]?.modRevision : undefined, lastAck.revision, `linearizable get of ${lastAck.key} on node ${id}`);
    }

    // ---- and on every replica, serializably, once it has applied as far
    const leaderStatus = await status(procs.get(leader)!);
    for (const id of IDS) {
      const p = procs.get(id)!;
      await waitFor(async () => (await status(p)).applied >= leaderStatus.commit, `node ${id} applied up to ${leaderStatus.commit}`, WAIT_MS);
      const ser = await scan(id, 'serializable');
      checkAll(ser.kvs, `serializable scan on node ${id}`);
    }

    // The follower was down across a log truncation: it must have been caught up by a snapshot.
    const followerStatus = await status(procs.get(killed.follower)!);
    assert.ok(followerStatus.snapshotsReceived >= 1, `restarted follower ${killed.follower} received no snapshot`);

    // ---- identical histories: hashKV at one revision
    const hashes = await Promise.all(
      IDS.map(async (id) => {
        const r = await procs.get(id)!.request({ op: 'hash', revision: lin.revision });
        if (!r.ok || r.hash === undefined) throw new Error(`hash on node ${id}: ${JSON.stringify(r)}`);
        return r.hash;
      }),
    );
    assert.equal(new Set(hashes).size, 1, `hashKV at revision ${lin.revision}: ${hashes.join(', ')}`);
    console.log(`kill9: ${events.join('; ')}; checked at revision ${lin.revision}`);
    failed = false;
  });
});
