/**
 * `etcdctl lock` and `etcdctl elect` (3.4) against keyspan — etcdctl builds
 * both client-side from Lease, Txn and Watch — and the server-side
 * v3lock/v3election services through the JSON gateway with fetch. Each
 * scenario is a transcript that, where the real etcd server is installed,
 * must equal the transcript of the same scenario against a real etcd 3.4
 * (lease ids numbered by order of appearance; member ids and terms dropped).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { etcdctl, numberByOrder, skipDiff, skipEtcdctl, spawnEtcdctl, startReferenceEtcd, until, type EtcdctlRun } from './etcd-diff.js';

/** Lease ids as etcdctl prints them in lock/election keys: `<name>/<hex>`. */
const LEASE_HEX = /(?<=\/)[0-9a-f]{8,16}\b/g;
/** Lease ids in decimal (the JSON gateway): random 63-bit ids have at least 12 digits but for a 1e-7 chance. */
const LEASE_DEC = /\b\d{12,20}\b/g;

/** One etcdctl step in a transcript. */
function entry(what: string, r: EtcdctlRun): string {
  return `$ ${what}\n[exit ${r.code}]\n${r.stdout}${r.errors}\n`;
}

/** Waits until `n` keys exist under `prefix` (lock waiters and candidates write theirs before they wait). */
async function keyCount(ep: string, prefix: string, n: number): Promise<void> {
  await until(async () => (await etcdctl(ep, ['get', prefix, '--prefix', '--keys-only', '-w', 'json'])).stdout.includes(`"count":${n}}`), `${n} keys under ${prefix}`);
}

/**
 * The etcdctl scenario: lock running a command (its output, the lock key
 * and revision in its environment, its failure), a held lock blocking a
 * second locker until ^C, an invalid elect call, and an election with an
 * observer, a waiting candidate taking over when the leader is interrupted.
 */
async function etcdctlScript(ep: string): Promise<string> {
  let t = '';
  t += entry('lock l1 echo hi', await etcdctl(ep, ['lock', 'l1', 'echo', 'hi']));
  t += entry('lock l1 -- sh -c env', await etcdctl(ep, ['lock', 'l1', '--', 'sh', '-c', 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"']));
  t += entry('lock l1 -- sh -c exit 3', await etcdctl(ep, ['lock', 'l1', '--', 'sh', '-c', 'exit 3']));
  t += entry('lock (no name)', await etcdctl(ep, ['lock']));

  const holder = spawnEtcdctl(ep, ['lock', 'l1']);
  await holder.waitFor((s) => s.endsWith('\n\n'), 'the first locker to hold l1');
  const waiter = spawnEtcdctl(ep, ['lock', 'l1']);
  await keyCount(ep, 'l1/', 2);
  // The waiter's key exists, so it has asked; it must not hold the lock while the holder runs.
  t += `waiter while held: ${JSON.stringify(waiter.stdout())}\n`;
  t += entry('^C holder', await holder.stop());
  await waiter.waitFor((s) => s.endsWith('\n\n'), 'the second locker to get l1');
  t += entry('^C waiter', await waiter.stop());
  t += entry('get l1/ --prefix', await etcdctl(ep, ['get', 'l1/', '--prefix']));

  t += entry('elect (no name)', await etcdctl(ep, ['elect']));
  t += entry('elect e1 p1 extra', await etcdctl(ep, ['elect', 'e1', 'p1', 'extra']));
  const leader = spawnEtcdctl(ep, ['elect', 'e1', 'p1']);
  await leader.waitFor((s) => s.split('\n').length === 3, 'p1 to lead');
  const observer = spawnEtcdctl(ep, ['elect', '-l', 'e1']);
  await observer.waitFor((s) => s.split('\n').length === 3, 'the observer to see p1');
  const candidate = spawnEtcdctl(ep, ['elect', 'e1', 'p2']);
  await keyCount(ep, 'e1/', 2);
  t += `candidate while p1 leads: ${JSON.stringify(candidate.stdout())}\n`;
  t += entry('^C leader p1', await leader.stop());
  await candidate.waitFor((s) => s.split('\n').length === 3, 'p2 to lead');
  await observer.waitFor((s) => s.split('\n').length === 5, 'the observer to see p2');
  t += entry('^C leader p2', await candidate.stop());
  t += entry('^C observer', await observer.stop());
  t += entry('get e1/ --prefix', await etcdctl(ep, ['get', 'e1/', '--prefix']));
  return numberByOrder(t, LEASE_HEX, 'L');
}

/** A gateway exchange: HTTP status and the JSON answer with bytes decoded and per-server ids dropped. */
async function post(base: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, json, text: `${path} ${res.status} ${JSON.stringify(readable(json))}` };
}

/** Drops member/cluster ids and terms from headers; decodes byte fields to text. */
function readable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(readable);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'cluster_id' || k === 'member_id' || k === 'raft_term') continue;
    out[k] = (k === 'key' || k === 'value' || k === 'name') && typeof x === 'string' ? `'${Buffer.from(x, 'base64').toString()}'` : readable(x);
  }
  return out;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Reads one newline-terminated JSON object from a streaming response body. */
async function nextLine(reader: ReadableStreamDefaultReader<Uint8Array>, buf: { text: string }): Promise<string> {
  const decoder = new TextDecoder();
  for (;;) {
    const nl = buf.text.indexOf('\n');
    if (nl >= 0) {
      const line = buf.text.slice(0, nl);
      buf.text = buf.text.slice(nl + 1);
      if (line.trim() !== '') return line;
      continue;
    }
    const { done, value } = await reader.read();
    if (done) {
      const rest = buf.text;
      buf.text = '';
      return rest;
    }
    buf.text += decoder.decode(value, { stream: true });
  }
}

/**
 * The JSON gateway scenario: Lock with a lease, a second Lock waiting until
 * Unlock, Campaign, Leader, an Observe stream seeing Proclaim, Resign, and
 * the errors of Leader with no leader and of a Proclaim by a non-leader.
 */
async function gatewayScript(ep: string): Promise<string> {
  const base = `http://${ep}`;
  const lines: string[] = [];
  const g1 = await post(base, '/v3/lease/grant', { TTL: 60 });
  const g2 = await post(base, '/v3/lease/grant', { TTL: 60 });
  lines.push(g1.text, g2.text);
  const l1 = g1.json['ID'];
  const l2 = g2.json['ID'];

  const lock1 = await post(base, '/v3/lock/lock', { name: b64('jl'), lease: l1 });
  lines.push(lock1.text);
  const second = post(base, '/v3/lock/lock', { name: b64('jl'), lease: l2 });
  await until(async () => (await post(base, '/v3/kv/range', { key: b64('jl/'), range_end: b64('jl0'), count_only: true })).json['count'] === '2', 'the second Lock to queue');
  lines.push((await post(base, '/v3/lock/unlock', { key: lock1.json['key'] })).text);
  const lock2 = await second;
  lines.push(lock2.text);
  lines.push((await post(base, '/v3/lock/unlock', { key: lock2.json['key'] })).text);
  lines.push((await post(base, '/v3/kv/range', { key: b64('jl/'), range_end: b64('jl0') })).text);

  const camp = await post(base, '/v3/election/campaign', { name: b64('je'), lease: l1, value: b64('v1') });
  lines.push(camp.text);
  lines.push((await post(base, '/v3/election/leader', { name: b64('je') })).text);

  const abort = new AbortController();
  const obs = await fetch(`${base}/v3/election/observe`, { method: 'POST', body: JSON.stringify({ name: b64('je') }), signal: abort.signal });
  const reader = obs.body!.getReader();
  const buf = { text: '' };
  try {
    lines.push(`observe ${obs.status} ${JSON.stringify(readable(JSON.parse(await nextLine(reader, buf))))}`);
    lines.push((await post(base, '/v3/election/proclaim', { leader: camp.json['leader'], value: b64('v2') })).text);
    lines.push(`observe ${JSON.stringify(readable(JSON.parse(await nextLine(reader, buf))))}`);
  } finally {
    abort.abort();
    await reader.cancel().catch(() => undefined);
  }
  const stale = { ...(camp.json['leader'] as Record<string, unknown>), rev: '1' };
  lines.push((await post(base, '/v3/election/proclaim', { leader: stale, value: b64('v3') })).text);
  lines.push((await post(base, '/v3/election/resign', { leader: camp.json['leader'] })).text);
  lines.push((await post(base, '/v3/election/leader', { name: b64('je') })).text);
  lines.push((await post(base, '/v3/lease/revoke', { ID: l1 })).text, (await post(base, '/v3/lease/revoke', { ID: l2 })).text);
  return numberByOrder(numberByOrder(lines.join('\n'), LEASE_DEC, 'D'), LEASE_HEX, 'L');
}

describe('etcdctl lock and elect, and the lock/election JSON gateway', { skip: skipEtcdctl }, () => {
  let srv: Embedded;
  let ep = '';
  let cli = '';
  let gateway = '';

  before(async () => {
    srv = await startTestServer();
    ep = srv.server.addresses[0] ?? '';
    cli = await etcdctlScript(ep);
    gateway = await gatewayScript(ep);
  });
  after(async () => {
    await srv?.close();
  });

  it('lock runs a command holding the lock, with the key and revision in its environment', () => {
    const steps = cli.split('$ ');
    assert.equal(steps[1], 'lock l1 echo hi\n[exit 0]\nhi\n\n');
    assert.equal(steps[2], 'lock l1 -- sh -c env\n[exit 0]\nl1/L1 4\n\n');
    assert.equal(steps[3], 'lock l1 -- sh -c exit 3\n[exit 1]\nError: exit status 3\n');
    assert.equal(steps[4], 'lock (no name)\n[exit 128]\nError: lock takes a lock name argument and an optional command to execute\nwaiter while held: ""\n');
  });

  it('a second lock waits for the holder; ^C releases it; no lock keys remain', () => {
    assert.ok(cli.includes('waiter while held: ""\n$ ^C holder\n[exit 0]\nl1/L2\n\n\n$ ^C waiter\n[exit 0]\nl1/L3\n\n\n$ get l1/ --prefix\n[exit 0]\n\n'), cli);
  });

  it('elect campaigns and prints the leader; the observer follows; a waiting candidate takes over', () => {
    assert.ok(cli.includes('$ elect (no name)\n[exit 128]\nError: elect takes one election name argument and an optional proposal argument\n'), cli);
    assert.ok(
      cli.endsWith(
        'candidate while p1 leads: ""\n$ ^C leader p1\n[exit 0]\ne1/L4\np1\n\n$ ^C leader p2\n[exit 0]\ne1/L5\np2\n\n$ ^C observer\n[exit 0]\ne1/L4\np1\ne1/L5\np2\n\n$ get e1/ --prefix\n[exit 0]\n\n',
      ),
      cli,
    );
  });

  it('the JSON gateway grants locks in order and runs an election with Observe', () => {
    const lines = gateway.split('\n');
    assert.match(lines[2] ?? '', /^\/v3\/lock\/lock 200 \{"header":\{"revision":"\d+"\},"key":"'jl\/L1'"\}$/);
    assert.match(lines[4] ?? '', /^\/v3\/lock\/lock 200 \{"header":\{"revision":"\d+"\},"key":"'jl\/L2'"\}$/);
    assert.match(lines[9] ?? '', /^observe 200 \{"result":\{"header":\{"revision":"\d+"\},"kv":\{"key":"'je\/L1'".*"value":"'v1'","lease":"D1"\}\}\}$/);
    assert.match(lines[11] ?? '', /^observe \{"result":\{"header":\{"revision":"\d+"\},"kv":\{"key":"'je\/L1'".*"version":"2","value":"'v2'","lease":"D1"\}\}\}$/);
    assert.equal(lines[12], '/v3/election/proclaim 500 {"error":"election: not leader","message":"election: not leader","code":2}');
    assert.match(lines[14] ?? '', /^\/v3\/election\/leader 500 \{"error":"election: no leader","message":"election: no leader","code":2\}$/);
  });

  it('gives the same transcripts as a real etcd 3.4', { skip: skipDiff }, async () => {
    const ref = await startReferenceEtcd();
    try {
      assert.equal(cli, await etcdctlScript(ref.endpoint));
      assert.equal(gateway, await gatewayScript(ref.endpoint));
    } finally {
      await ref.close();
    }
  });
});
