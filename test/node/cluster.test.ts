/**
 * A three-member cluster of real `keyspan start` processes, started with
 * etcd's Procfile flags on free loopback ports, driven by the real etcdctl:
 * writes through any member, reads on any other, member list and endpoint
 * status on each; `kill -9` of a follower and then of the leader under a
 * small write load (gRPC writers spread over the members), each restarted
 * with the same flags; SIGSTOP of the leader and later of a follower, each
 * resumed with SIGCONT (a linearizable read on the resumed old leader must
 * not return a state older than the writes made while it was stopped):
 * every acknowledged write is on every member (serializable reads per
 * member) and `endpoint hashkv` agrees; SIGTERM exits 0 with the data
 * intact; a restart with another --initial-cluster is refused.
 *
 * The writers' member choice is seeded (KEYSPAN_SEED replays it). Skipped
 * where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { client, type EtcdTestClient } from '../gateway/server-harness.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const probe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip = probe.error !== undefined || probe.status !== 0 ? 'etcdctl not installed (apt-get install etcd-client, or set ETCDCTL)' : false;

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const COMPILED = fileURLToPath(import.meta.url).endsWith('.js');
/** The CLI entry, run directly as `node …/main.js start …`. */
const CLI_MAIN = join(REPO, COMPILED ? 'src/cli/main.js' : 'src/cli/main.ts');
const NODE_LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];
const ETCDCTL_TIMEOUT_MS = 20_000;
const NAMES = ['infra1', 'infra2', 'infra3'] as const;
/** Acknowledged writes between two scenario steps. */
const ACKS_PER_STEP = 40;
/**
 * Concurrent writers, each sending to a random live member: two thirds of
 * their puts are forwarded, several at once, so the forwarding stream's
 * batches are in flight when a member dies.
 */
const WRITERS = 8;
/** Reads sent to a stopped old leader just before it resumes. */
const STALE_READ_PROBES = 5;
const SEED = Number(process.env['KEYSPAN_SEED'] ?? Date.now() % 1_000_000);

/** A small seeded generator (mulberry32) for the writers' member choice. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function etcdctl(endpoints: string, args: readonly string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      ETCDCTL,
      [`--endpoints=${endpoints}`, '--dial-timeout=5s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: ETCDCTL_TIMEOUT_MS },
      (err, stdout, stderr) => done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child?: ChildProcess;
  log: string;
  kv?: EtcdTestClient;
  /** Stopped by SIGSTOP: clients leave it alone, as theirs would after a timeout. */
  paused?: boolean;
}

/** Acknowledged writes of a running load, and how to wait for more. */
interface Load {
  /** Every acknowledged key with its value, in acknowledgement order. */
  readonly acked: Map<string, string>;
  /** Resolves once `n` more writes are acknowledged. */
  acks(n: number, what: string): Promise<void>;
  /** Stops the writers and waits for them. */
  stop(): Promise<void>;
}

describe('a 3-process cluster started with etcd flags', { skip }, () => {
  const members: Member[] = [];
  let initialCluster = '';
  let dir: { path: string; cleanup: () => Promise<void> };

  const endpoint = (m: Member): string => `127.0.0.1:${m.clientPort}`;
  const all = (): string => members.map(endpoint).join(',');

  const flags = (m: Member, cluster = initialCluster): string[] => [
    'start',
    '--name', m.name,
    '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-cluster', cluster,
    '--initial-cluster-state', 'new',
    '--data-dir', m.dataDir,
    '--heartbeat-interval', '25',
    '--election-timeout', '300',
  ];

  /** Spawns `keyspan start` for `m`; resolves once it is ready (or exited), with a promise of its exit code. */
  async function startMember(m: Member, cluster = initialCluster): Promise<{ exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [...NODE_LOADER_ARGS, CLI_MAIN, ...flags(m, cluster)], { stdio: ['ignore', 'ignore', 'pipe'] });
    m.child = child;
    m.log = '';
    child.stderr?.on('data', (d: Buffer) => (m.log += d.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    await waitFor(() => m.log.includes('"msg":"ready to serve client requests"') || child.exitCode !== null, `${m.name} ready`, 30_000);
    m.kv?.close();
    m.kv = client('etcdserverpb.KV', endpoint(m));
    return { exited };
  }

  function kill9(m: Member): Promise<void> {
    const child = m.child;
    if (child === undefined || child.exitCode !== null) return Promise.resolve();
    return new Promise((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  /** Members running and not paused. */
  const serving = (): Member[] => members.filter((m) => m.child?.exitCode === null && m.paused !== true);

  function pause(m: Member): void {
    m.paused = true;
    m.child?.kill('SIGSTOP');
  }

  function resume(m: Member): void {
    m.child?.kill('SIGCONT');
    m.paused = false;
  }

  /**
   * WRITERS writers putting keys under `prefix` until stopped, each put to a
   * random serving member, retried (at another random member) until it is
   * acknowledged.
   */
  function startLoad(prefix: string): Load {
    const random = rng(SEED);
    const acked = new Map<string, string>();
    let stopped = false;
    const writer = async (w: number): Promise<void> => {
      for (let seq = 0; !stopped; seq++) {
        const key = `${prefix}w${w}/${String(seq).padStart(5, '0')}`;
        const value = `v${w}.${seq}`;
        for (;;) {
          const live = serving().filter((m) => m.kv !== undefined);
          const m = live[Math.floor(random() * live.length)];
          try {
            if (m?.kv === undefined) throw new Error('no live member');
            await m.kv.call('Put', { key: Buffer.from(key), value: Buffer.from(value) });
            acked.set(key, value);
            break;
          } catch {
            if (stopped) return;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, i) => writer(i + 1));
    return {
      acked,
      async acks(n, what) {
        const target = acked.size + n;
        await waitFor(() => acked.size >= target, `${n} acknowledged writes (${what})`, 30_000);
      },
      async stop() {
        stopped = true;
        await Promise.all(writers);
      },
    };
  }

  /** Every member catches up to the same state, and each holds every acknowledged write under `prefix`. */
  async function checkReplicas(acked: ReadonlyMap<string, string>, prefix: string): Promise<void> {
    await waitFor(async () => {
      const r = await etcdctl(all(), ['endpoint', 'hashkv', '-w', 'json']);
      if (r.code !== 0) return false;
      const rows = JSON.parse(r.stdout) as Array<{ HashKV: { hash: number; header: { revision: number } } }>;
      return rows.length === 3 && new Set(rows.map((x) => `${x.HashKV.hash}@${x.HashKV.header.revision}`)).size === 1;
    }, 'endpoint hashkv equal on all members', 30_000);
    for (const m of members) {
      const r = await etcdctl(endpoint(m), ['get', prefix, '--prefix', '--consistency=s']);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      const got = new Map<string, string>();
      for (let i = 0; i + 1 < lines.length; i += 2) got.set(lines[i] as string, lines[i + 1] as string);
      for (const [k, v] of acked) assert.equal(got.get(k), v, `${k} on ${m.name}`);
    }
  }

  /** Status of every serving member, as etcdctl -w json prints it. */
  async function statuses(): Promise<Array<{ Endpoint: string; Status: { header: { member_id: number }; leader: number } }>> {
    const r = await etcdctl(serving().map(endpoint).join(','), ['endpoint', 'status', '-w', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  async function leader(): Promise<Member> {
    let found: Member | undefined;
    await waitFor(async () => {
      const st = await statuses();
      const ids = new Set(st.map((s) => s.Status.leader));
      const id = st[0]?.Status.leader ?? 0;
      found = ids.size === 1 && id !== 0 ? members[id - 1] : undefined;
      return found !== undefined && serving().includes(found);
    }, 'one leader known to every live member', 20_000);
    assert.ok(found);
    return found;
  }

  before(async () => {
    console.log(`cluster.test seed ${SEED} (replay with KEYSPAN_SEED=${SEED})`);
    dir = await tempDir('cluster');
    const ports = await freePorts(6);
    NAMES.forEach((name, i) => {
      members.push({ name, clientPort: ports[i] as number, peerPort: ports[i + 3] as number, dataDir: join(dir.path, name), log: '' });
    });
    initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    await Promise.all(members.map((m) => startMember(m)));
    for (const m of members) assert.equal(m.child?.exitCode, null, m.log);
  });

  after(async () => {
    for (const m of members) {
      m.kv?.close();
      await kill9(m);
    }
    if (process.exitCode !== undefined && process.exitCode !== 0) for (const m of members) console.error(`--- ${m.name}\n${m.log.slice(-3000)}`);
    await dir.cleanup();
  });

  it('puts through one member and reads through another, both ways, with etcdctl', async () => {
    const [m1, m2, m3] = members as [Member, Member, Member];
    assert.deepEqual(await etcdctl(endpoint(m2), ['put', 'via2', 'value2']).then((r) => [r.code, r.stdout]), [0, 'OK\n']);
    assert.deepEqual(await etcdctl(endpoint(m3), ['get', 'via2']).then((r) => [r.code, r.stdout]), [0, 'via2\nvalue2\n']);
    assert.deepEqual(await etcdctl(endpoint(m3), ['put', 'via3', 'value3']).then((r) => [r.code, r.stdout]), [0, 'OK\n']);
    assert.deepEqual(await etcdctl(endpoint(m2), ['get', 'via3']).then((r) => [r.code, r.stdout]), [0, 'via3\nvalue3\n']);
    assert.deepEqual(await etcdctl(endpoint(m1), ['get', 'via', '--prefix', '--consistency=s']).then((r) => r.stdout), 'via2\nvalue2\nvia3\nvalue3\n');
  });

  it('lists the three members with their URLs on every member; endpoint status agrees on the leader', async () => {
    const expected = members.map((m, i) => `${i + 1}, started, ${m.name}, http://127.0.0.1:${m.peerPort}, http://127.0.0.1:${m.clientPort}, false\n`).join('');
    for (const m of members) {
      const r = await etcdctl(endpoint(m), ['member', 'list']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, expected, `member list on ${m.name}`);
    }
    const st = await statuses();
    assert.deepEqual(st.map((s) => s.Status.header.member_id), [1, 2, 3]);
    // Checked on views read after one leader is known to every member, and
    // read again if an election (25 ms heartbeats on a loaded machine) moved
    // the leader while they were read: two views from either side of an
    // election can each name a different leader truthfully.
    await waitFor(async () => {
      const l = await leader();
      const view = await statuses();
      assert.equal(view.filter((s) => s.Status.header.member_id === s.Status.leader).length, 1, JSON.stringify(view));
      assert.ok(view.every((s) => s.Status.leader === members.indexOf(l) + 1), JSON.stringify(view));
      const table = await etcdctl(all(), ['endpoint', 'status', '-w', 'table']);
      assert.equal((table.stdout.match(/\| +true \| +false \|/g) ?? []).length, 1, table.stdout);
      assert.match(table.stdout, new RegExp(`\\| ${endpoint(l).replace(/\./g, '\\.')} \\| +${members.indexOf(l) + 1} \\| .*\\| +true \\|`));
      return true;
    }, 'endpoint status on every member agrees on one leader', 20_000);
  });

  it('keeps every acknowledged write through kill -9 of a follower and of the leader, restarted with the same flags', async () => {
    const load = startLoad('load/');
    try {
      await load.acks(ACKS_PER_STEP, 'start');
      const l1 = await leader();
      const follower = members.find((m) => m !== l1) as Member;
      await kill9(follower);
      await load.acks(ACKS_PER_STEP, `${follower.name} killed`);
      await startMember(follower);
      await load.acks(ACKS_PER_STEP, `${follower.name} restarted`);
      const l2 = await leader();
      await kill9(l2);
      await load.acks(ACKS_PER_STEP, `leader ${l2.name} killed`);
      await startMember(l2);
      await load.acks(ACKS_PER_STEP, `${l2.name} restarted`);
    } finally {
      await load.stop();
    }
    await checkReplicas(load.acked, 'load/');
  });

  it('keeps serving through SIGSTOP of the leader and of a follower; the resumed leader answers no stale read', async () => {
    const load = startLoad('pause/');
    try {
      await load.acks(ACKS_PER_STEP, 'start');
      const l1 = await leader();
      pause(l1);
      await load.acks(ACKS_PER_STEP, `leader ${l1.name} paused`);
      const l2 = await leader();
      assert.notEqual(l2, l1);
      // Written while l1 was stopped: l1 has never seen them. Linearizable reads of them, sent
      // to l1 before it resumes (they wait in its socket with the new leader's messages), must
      // each return the newest value or an error, never an older state.
      const written = [...load.acked].slice(-STALE_READ_PROBES);
      const reads = written.map(([key]) => l1.kv?.call('Range', { key: Buffer.from(key) }).catch((err: unknown) => err));
      await new Promise((r) => setTimeout(r, 50));
      resume(l1);
      const answers: unknown[] = await Promise.all(reads);
      answers.forEach((read, i) => {
        if (read instanceof Error) return;
        const [key, value] = written[i] as [string, string];
        const kvs = ((read as Record<string, unknown> | undefined)?.['kvs'] ?? []) as Array<{ value: Uint8Array }>;
        assert.equal(Buffer.from(kvs[0]?.value ?? []).toString(), value, `linearizable read of ${key} on ${l1.name}, resumed after SIGSTOP`);
      });
      await load.acks(ACKS_PER_STEP, `${l1.name} resumed`);
      const l3 = await leader();
      const follower = members.find((m) => m !== l3) as Member;
      pause(follower);
      await load.acks(ACKS_PER_STEP, `follower ${follower.name} paused`);
      resume(follower);
      await load.acks(ACKS_PER_STEP, `${follower.name} resumed`);
    } finally {
      for (const m of members) if (m.paused === true) resume(m);
      await load.stop();
    }
    await checkReplicas(load.acked, 'pause/');
  });

  it('stops on SIGTERM with exit 0, refuses another --initial-cluster, and restarts with its data', async () => {
    const m = members[0] as Member;
    const before = await etcdctl(endpoint(m), ['get', '', '--prefix', '--consistency=s', '--keys-only']);
    const exited = new Promise<number | null>((done) => m.child?.once('exit', (code) => done(code)));
    m.child?.kill('SIGTERM');
    assert.equal(await exited, 0, m.log);
    assert.match(m.log, /"msg":"received signal; shutting down","signal":"SIGTERM"/);
    assert.match(m.log, /"msg":"stopped"/);

    const other = `${initialCluster},infra4=http://127.0.0.1:1`;
    const refused = await startMember(m, other);
    assert.equal(await refused.exited, 1);
    assert.match(m.log, /was created for --initial-cluster .* not .*infra4=http:\/\/127\.0\.0\.1:1.*restart with the original --initial-cluster/);

    await startMember(m);
    assert.equal(m.child?.exitCode, null, m.log);
    const afterRestart = await etcdctl(endpoint(m), ['get', '', '--prefix', '--consistency=s', '--keys-only']);
    assert.equal(afterRestart.stdout, before.stdout);
  });
});
