/**
 * etcdserverpb.KV served end to end (grpc-js client → EtcdServer →
 * LocalRangeRouter → StoreNode's range 1 through raft → MVCC): every
 * RangeRequest option, Put/DeleteRange/Txn/Compact options, header
 * semantics, and etcd's errors with their exact code and message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { CompareResult, CompareTarget, SortOrder, SortTarget } from '../../src/gateway/messages.js';
import type { EtcdMessage } from '../../src/gateway/proto.js';
import { b, client, failure, keysOf, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';

const S = grpc.status;

describe('KV service', () => {
  let srv: Embedded;
  let kv: EtcdTestClient;

  before(async () => {
    srv = await startTestServer();
    kv = client('etcdserverpb.KV', srv.server.addresses[0] ?? '');
  });
  after(async () => {
    kv.close();
    await srv.close();
  });

  const put = (key: string, value: string, extra: EtcdMessage = {}): Promise<EtcdMessage> =>
    kv.call('Put', { key: b(key), value: b(value), ...extra });
  const range = (key: string, extra: EtcdMessage = {}): Promise<EtcdMessage> => kv.call('Range', { key: b(key), ...extra });

  it('answers a fresh store at revision 1, then Put and Range with etcd headers', async () => {
    const r0 = await range('nothing');
    assert.equal(revOf(r0), 1, 'a fresh store is at revision 1');
    assert.deepEqual(r0['kvs'], []);
    assert.equal(r0['count'], 0);
    const p = await put('foo', 'bar');
    const h = p['header'] as { cluster_id: bigint; member_id: bigint; revision: number; raft_term: number };
    assert.equal(h.revision, 2, 'the first write gets revision 2');
    assert.equal(h.member_id, srv.member.id);
    assert.ok(h.cluster_id > 0n);
    assert.ok(h.raft_term > 0);
    const r = await range('foo');
    assert.equal(revOf(r), 2);
    const kv0 = (r['kvs'] as EtcdMessage[])[0];
    assert.deepEqual(
      { ...kv0, key: String(kv0?.['key']), value: String(kv0?.['value']) },
      { key: 'foo', value: 'bar', create_revision: 2, mod_revision: 2, version: 1, lease: 0n },
    );
  });

  it('serves every RangeRequest option', async () => {
    // r/a=1 (rev x), r/b=22, r/c=333, r/d=4444; r/b updated later.
    const base = revOf(await put('r/a', '1'));
    await put('r/b', '22');
    await put('r/c', '333');
    await put('r/d', '4444');
    await put('r/b', '2');
    const prefix = { range_end: b('r0') }; // "r/" + 1
    const all = await range('r/', prefix);
    assert.deepEqual(keysOf(all), ['r/a', 'r/b', 'r/c', 'r/d']);
    assert.equal(all['count'], 4);
    assert.equal(all['more'], false);

    const limited = await range('r/', { ...prefix, limit: 2 });
    assert.deepEqual(keysOf(limited), ['r/a', 'r/b']);
    assert.equal(limited['more'], true);
    assert.equal(limited['count'], 4, 'count ignores the limit');

    const fromKey = await range('r/c', { range_end: Buffer.of(0) });
    assert.deepEqual(keysOf(fromKey), ['r/c', 'r/d']);

    const desc = await range('r/', { ...prefix, sort_order: SortOrder.DESCEND, sort_target: SortTarget.KEY });
    assert.deepEqual(keysOf(desc), ['r/d', 'r/c', 'r/b', 'r/a']);
    const byMod = await range('r/', { ...prefix, sort_order: SortOrder.DESCEND, sort_target: SortTarget.MOD, limit: 1 });
    assert.deepEqual(keysOf(byMod), ['r/b'], 'r/b was modified last');
    const byVersion = await range('r/', { ...prefix, sort_target: SortTarget.VERSION, sort_order: SortOrder.DESCEND, limit: 1 });
    assert.deepEqual(keysOf(byVersion), ['r/b'], 'r/b has version 2');
    const byCreateNone = await range('r/', { ...prefix, sort_target: SortTarget.CREATE });
    assert.deepEqual(keysOf(byCreateNone), ['r/a', 'r/b', 'r/c', 'r/d'], 'order NONE with a target sorts ascending');
    const byValue = await range('r/', { ...prefix, sort_target: SortTarget.VALUE, sort_order: SortOrder.ASCEND });
    assert.deepEqual(keysOf(byValue), ['r/a', 'r/b', 'r/c', 'r/d']);

    const keysOnly = await range('r/a', { keys_only: true });
    assert.equal(((keysOnly['kvs'] as EtcdMessage[])[0]?.['value'] as Buffer).length, 0);
    const countOnly = await range('r/', { ...prefix, count_only: true });
    assert.deepEqual(countOnly['kvs'], []);
    assert.equal(countOnly['count'], 4);

    const minMod = await range('r/', { ...prefix, min_mod_revision: base + 2 });
    assert.deepEqual(keysOf(minMod), ['r/b', 'r/c', 'r/d']);
    const maxMod = await range('r/', { ...prefix, max_mod_revision: base + 2 });
    assert.deepEqual(keysOf(maxMod), ['r/a', 'r/c']);
    const minCreate = await range('r/', { ...prefix, min_create_revision: base + 2 });
    assert.deepEqual(keysOf(minCreate), ['r/c', 'r/d']);
    const maxCreate = await range('r/', { ...prefix, max_create_revision: base + 1 });
    assert.deepEqual(keysOf(maxCreate), ['r/a', 'r/b']);

    const past = await range('r/b', { revision: base + 1 });
    assert.equal(String((past['kvs'] as EtcdMessage[])[0]?.['value']), '22', 'historical read');
    assert.equal(revOf(past), base + 4, 'header.revision is the current revision even for a past read');

    const ser = await range('r/a', { serializable: true });
    assert.deepEqual(keysOf(ser), ['r/a']);
  });

  it('Put: prev_kv, ignore_value, ignore_lease and their errors', async () => {
    await put('p', 'v1');
    const p2 = await put('p', 'v2', { prev_kv: true });
    assert.equal(String((p2['prev_kv'] as EtcdMessage)['value']), 'v1');
    const noPrev = await put('p', 'v3');
    assert.equal(noPrev['prev_kv'], undefined);
    await kv.call('Put', { key: b('p'), ignore_value: true });
    const r = await range('p');
    assert.equal(String((r['kvs'] as EtcdMessage[])[0]?.['value']), 'v3', 'ignore_value keeps the value');
    assert.equal((r['kvs'] as EtcdMessage[])[0]?.['version'], 4);
    await kv.call('Put', { key: b('p'), value: b('v5'), ignore_lease: true });

    assert.deepEqual(await failure(kv.call('Put', { key: b('missing'), ignore_value: true })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: key not found',
    });
    assert.deepEqual(await failure(kv.call('Put', { key: b('missing'), value: b('x'), ignore_lease: true })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: key not found',
    });
    assert.deepEqual(await failure(kv.call('Put', { key: b('p'), value: b('x'), ignore_value: true })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: value is provided',
    });
    assert.deepEqual(await failure(kv.call('Put', { key: b('p'), value: b('x'), lease: 5n, ignore_lease: true })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: lease is provided',
    });
    assert.deepEqual(await failure(kv.call('Put', { key: b('p'), value: b('x'), lease: 0x1234n })), {
      code: S.NOT_FOUND,
      details: 'etcdserver: requested lease not found',
    });
    assert.deepEqual(await failure(kv.call('Put', { key: Buffer.alloc(0), value: b('x') })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: key is not provided',
    });
  });

  it('DeleteRange: prev_kv, counts, and no revision for deleting nothing', async () => {
    await put('d/1', 'a');
    await put('d/2', 'b');
    const before = revOf(await put('d/3', 'c'));
    const none = await kv.call('DeleteRange', { key: b('d/none') });
    assert.equal(none['deleted'], 0);
    assert.equal(revOf(none), before, 'a delete of nothing consumes no revision');
    const one = await kv.call('DeleteRange', { key: b('d/1'), prev_kv: true });
    assert.equal(one['deleted'], 1);
    assert.equal(revOf(one), before + 1);
    assert.deepEqual(
      (one['prev_kvs'] as EtcdMessage[]).map((x) => String(x['value'])),
      ['a'],
    );
    const rest = await kv.call('DeleteRange', { key: b('d/'), range_end: b('d0') });
    assert.equal(rest['deleted'], 2);
    assert.deepEqual(rest['prev_kvs'], [], 'no prev_kvs unless asked');
    assert.equal((await range('d/', { range_end: b('d0') }))['count'], 0);
    assert.deepEqual(await failure(kv.call('DeleteRange', { key: Buffer.alloc(0) })), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: key is not provided',
    });
  });

  it('Txn: every compare target, both branches, nested txns, one revision for all writes', async () => {
    const r1 = revOf(await put('t/a', '1'));
    const cmp = (target: number, field: string, value: unknown, result: number = CompareResult.EQUAL, key = 't/a'): EtcdMessage => ({
      key: b(key),
      target,
      result,
      [field]: value,
    });
    const txn = (compare: EtcdMessage[], success: EtcdMessage[], failure: EtcdMessage[] = []): Promise<EtcdMessage> =>
      kv.call('Txn', { compare, success, failure });

    const ok = await txn(
      [
        cmp(CompareTarget.VERSION, 'version', 1),
        cmp(CompareTarget.CREATE, 'create_revision', r1),
        cmp(CompareTarget.MOD, 'mod_revision', r1),
        cmp(CompareTarget.VALUE, 'value', b('1')),
        cmp(CompareTarget.LEASE, 'lease', 0n),
        cmp(CompareTarget.CREATE, 'create_revision', 0, CompareResult.EQUAL, 't/absent'),
        cmp(CompareTarget.VALUE, 'value', b('0'), CompareResult.GREATER),
        cmp(CompareTarget.MOD, 'mod_revision', r1 + 100, CompareResult.LESS),
        cmp(CompareTarget.VERSION, 'version', 7, CompareResult.NOT_EQUAL),
      ],
      [
        { request_put: { key: b('t/b'), value: b('2') } },
        { request_put: { key: b('t/c'), value: b('3') } },
        { request_range: { key: b('t/'), range_end: b('t0') } },
      ],
      [{ request_put: { key: b('t/never'), value: b('x') } }],
    );
    assert.equal(ok['succeeded'], true);
    const w = revOf(ok);
    assert.equal(w, r1 + 1, 'all writes of a txn share one revision');
    const resps = ok['responses'] as EtcdMessage[];
    assert.equal(resps.length, 3);
    assert.deepEqual(resps[0]?.['response_put'], { header: { cluster_id: 0n, member_id: 0n, revision: w, raft_term: 0 } });
    const inner = resps[2]?.['response_range'] as EtcdMessage;
    assert.deepEqual(keysOf(inner), ['t/a', 't/b', 't/c'], 'a range sees the txn’s earlier puts');
    assert.equal((inner['header'] as { revision: number }).revision, w);

    const failed = await txn([cmp(CompareTarget.VALUE, 'value', b('nope'))], [{ request_put: { key: b('t/x'), value: b('x') } }], [
      { request_range: { key: b('t/a') } },
    ]);
    assert.equal(failed['succeeded'], false);
    assert.equal(revOf(failed), w, 'a failed compare with a read-only branch consumes no revision');
    assert.deepEqual(keysOf((failed['responses'] as EtcdMessage[])[0]?.['response_range'] as EtcdMessage), ['t/a']);

    // A compare over a range: every key must match.
    const rangeCmp = await txn([{ ...cmp(CompareTarget.VERSION, 'version', 0, CompareResult.GREATER, 't/'), range_end: b('t0') }], []);
    assert.equal(rangeCmp['succeeded'], true);

    const nested = await txn(
      [],
      [
        {
          request_txn: {
            compare: [cmp(CompareTarget.VALUE, 'value', b('2'), CompareResult.EQUAL, 't/b')],
            success: [{ request_delete_range: { key: b('t/c'), prev_kv: true } }],
            failure: [],
          },
        },
      ],
    );
    assert.equal(nested['succeeded'], true);
    const nestedResp = (nested['responses'] as EtcdMessage[])[0]?.['response_txn'] as EtcdMessage;
    assert.equal(nestedResp['succeeded'], true);
    // etcd fills no header of a nested txn's response; its own ops' responses carry the revision.
    assert.equal(Number((nestedResp['header'] as { revision: number } | undefined)?.revision ?? 0), 0);
    const del = (nestedResp['responses'] as EtcdMessage[])[0]?.['response_delete_range'] as EtcdMessage;
    assert.equal(del['deleted'], 1);
    assert.equal(String((del['prev_kvs'] as EtcdMessage[])[0]?.['value']), '3');

    assert.deepEqual(
      await failure(txn([], [{ request_put: { key: b('k'), value: b('1') } }, { request_put: { key: b('k'), value: b('2') } }])),
      { code: S.INVALID_ARGUMENT, details: 'etcdserver: duplicate key given in txn request' },
    );
    assert.deepEqual(
      await failure(txn([], Array.from({ length: 129 }, (_, i) => ({ request_range: { key: b(`k${i}`) } })))),
      { code: S.INVALID_ARGUMENT, details: 'etcdserver: too many operations in txn request' },
    );
    assert.deepEqual(await failure(txn([], [{}])), { code: S.INVALID_ARGUMENT, details: 'etcdserver: key not found' });
    assert.deepEqual(
      await failure(txn([], [{ request_put: { key: b('t/a'), value: b('x'), ignore_value: true } }])),
      { code: S.INVALID_ARGUMENT, details: 'etcdserver: value is provided' },
    );
    assert.deepEqual(
      await failure(txn([], [{ request_put: { key: b('t/l'), value: b('x'), lease: 99n } }])),
      { code: S.NOT_FOUND, details: 'etcdserver: requested lease not found' },
    );
    assert.deepEqual(
      await failure(txn([], [{ request_put: { key: b('t/zz'), value: b('x'), ignore_lease: true } }])),
      { code: S.INVALID_ARGUMENT, details: 'etcdserver: key not found' },
    );
  });

  it('Compact: physical compaction, then compacted and future revision errors', async () => {
    const r1 = revOf(await put('c/k', 'old'));
    const r2 = revOf(await put('c/k', 'new'));
    const res = await kv.call('Compact', { revision: r2, physical: true });
    assert.equal(revOf(res), r2);
    assert.deepEqual(await failure(range('c/k', { revision: r1 })), {
      code: S.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision has been compacted',
    });
    const atCompacted = await range('c/k', { revision: r2 });
    assert.equal(String((atCompacted['kvs'] as EtcdMessage[])[0]?.['value']), 'new', 'reading at the compacted revision works');
    assert.deepEqual(await failure(kv.call('Compact', { revision: r2 })), {
      code: S.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision has been compacted',
    });
    assert.deepEqual(await failure(kv.call('Compact', { revision: r2 + 1000 })), {
      code: S.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision is a future revision',
    });
    assert.deepEqual(await failure(range('c/k', { revision: r2 + 1000 })), {
      code: S.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision is a future revision',
    });
  });

  it('refuses requests above --max-request-bytes, and gRPC refuses above the receive limit', async () => {
    const big = Buffer.alloc(1.5 * 1024 * 1024 + 100, 0x61);
    assert.deepEqual(await failure(put('big', big.toString())), {
      code: S.INVALID_ARGUMENT,
      details: 'etcdserver: request is too large',
    });
    const huge = Buffer.alloc(2 * 1024 * 1024 + 100, 0x61);
    const e = await failure(put('huge', huge.toString()));
    assert.equal(e.code, S.RESOURCE_EXHAUSTED);
    // Just under the limit is fine.
    const fits = await put('fits', Buffer.alloc(1024 * 1024, 0x62).toString());
    assert.ok(revOf(fits) > 1);
  });

  it('serves requests carrying hasleader=true while the range has a leader', async () => {
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const r = await kv.call('Range', { key: b('foo') }, md);
    assert.deepEqual(keysOf(r), ['foo']);
  });
});
