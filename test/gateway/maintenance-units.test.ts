/**
 * The pure parts of Maintenance: the backup format (encode, chunk, parse,
 * and every way a backup can be malformed), etcd's quota cost rules and the
 * size reading behind them, and the alarm store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKUP_CONTENT_ALIGN_BYTES,
  BACKUP_FIELD_BYTES_MAX,
  BackupFormatError,
  Chunker,
  encodeEnd,
  encodeHeader,
  encodeLength,
  encodeRangeEnd,
  encodeRangeStart,
  paddingBytes,
  readBackup,
  type BackupItem,
} from '../../src/gateway/backup-format.js';
import { AlarmStore, AlarmType, alarmStatusText } from '../../src/gateway/alarm.js';
import {
  DEFAULT_QUOTA_BACKEND_BYTES,
  KV_OVERHEAD_BYTES,
  SpaceQuota,
  putCost,
  resolveQuotaBytes,
  txnCost,
} from '../../src/gateway/quota.js';
import type { RequestOp } from '../../src/gateway/messages.js';

const b = (s: string): Buffer => Buffer.from(s);

/** A well-formed backup of two ranges, as pieces. */
function backupPieces(records: ReadonlyArray<[string, string]> = [['k1', 'v1'], ['k2', '']]): Buffer[] {
  const pieces: Buffer[] = [encodeHeader({ revision: 9, compactRevision: 3, createdUnixMs: 1_700_000_000_000, rangeCount: 2 })];
  pieces.push(encodeRangeStart({ rangeId: 1, appliedIndex: 20, revision: 9, compactRevision: 3, start: b(''), end: b('m') }));
  for (const [k, v] of records) pieces.push(encodeLength(k.length), b(k), encodeLength(v.length), b(v));
  pieces.push(encodeRangeEnd(records.length));
  pieces.push(encodeRangeStart({ rangeId: 2, appliedIndex: 7, revision: 8, compactRevision: 0, start: b('m'), end: b('') }));
  pieces.push(encodeRangeEnd(0));
  pieces.push(encodeEnd(records.length));
  const bytes = pieces.reduce((n, p) => n + p.length, 0);
  pieces.push(Buffer.alloc(paddingBytes(bytes)));
  return pieces;
}

async function parseAll(content: Buffer, pieceBytes = 5): Promise<BackupItem[]> {
  async function* source(): AsyncGenerator<Buffer> {
    for (let o = 0; o < content.length; o += pieceBytes) yield content.subarray(o, o + pieceBytes);
  }
  const items: BackupItem[] = [];
  for await (const item of readBackup(source())) items.push(item);
  return items;
}

describe('backup format', () => {
  it('round-trips through the chunker in exact-size blobs, padded to 512-byte pages', async () => {
    const content = Buffer.concat(backupPieces());
    assert.equal(content.length % BACKUP_CONTENT_ALIGN_BYTES, 0);
    const chunker = new Chunker(100);
    const blobs: Buffer[] = [];
    for (const p of backupPieces()) blobs.push(...chunker.push(p));
    const last = chunker.flush();
    if (last !== undefined) blobs.push(last);
    assert.ok(blobs.slice(0, -1).every((x) => x.length === 100));
    assert.deepEqual(Buffer.concat(blobs), content);
    const items = await parseAll(content);
    assert.deepEqual(
      items.map((i) => i.type),
      ['header', 'range', 'record', 'record', 'rangeEnd', 'range', 'rangeEnd', 'end'],
    );
    const header = items[0];
    assert.ok(header?.type === 'header');
    assert.deepEqual(header.header, { formatVersion: 1, revision: 9, compactRevision: 3, createdUnixMs: 1_700_000_000_000, rangeCount: 2 });
    const r2 = items[5];
    assert.ok(r2?.type === 'range');
    assert.deepEqual(r2.range, { rangeId: 2, appliedIndex: 7, revision: 8, compactRevision: 0, start: b('m'), end: b('') });
    const rec = items[3];
    assert.ok(rec?.type === 'record');
    assert.deepEqual([rec.key, rec.value], [b('k2'), b('')]);
  });

  it('refuses malformed backups with a clear error', async () => {
    const good = Buffer.concat(backupPieces());
    const cases: Array<[string, Buffer, RegExp]> = [
      ['bad magic', Buffer.concat([b('XXXXXXXX'), good.subarray(8)]), /bad magic/],
      ['unknown version', (() => { const x = Buffer.from(good); x.writeUInt16BE(9, 8); return x; })(), /format version 9/],
      ['truncated', good.subarray(0, 60), /truncated/],
      ['trailing bytes', Buffer.concat([good, Buffer.alloc(BACKUP_CONTENT_ALIGN_BYTES)]), /bytes after the end section/],
      ['non-zero padding', (() => { const x = Buffer.from(good); x[x.length - 1] = 1; return x; })(), /non-zero padding/],
    ];
    for (const [what, data, re] of cases) {
      await assert.rejects(parseAll(data), (e: unknown) => e instanceof BackupFormatError && re.test(e.message), what);
    }
    const wrongCount = Buffer.concat(backupPieces().map((p, i) => (i === 10 ? encodeRangeEnd(5) : p)));
    await assert.rejects(parseAll(wrongCount), /record count 5 but 2 records/);
    const huge = Buffer.from(good);
    huge.writeUInt32BE(BACKUP_FIELD_BYTES_MAX + 1, 40 + 1 + 32);
    await assert.rejects(parseAll(huge), /exceeds/);
    assert.throws(() => encodeLength(BACKUP_FIELD_BYTES_MAX + 1), RangeError);
  });
});

describe('quota', () => {
  const put = (k: string, v: string): RequestOp => ({ request_put: { key: b(k), value: b(v), lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false } });
  const range = (k: string): RequestOp => ({ request_range: { key: b(k) } as never });

  it('costs requests as etcd: put overhead + key + value, the costlier txn branch, nested puts too', () => {
    assert.equal(putCost({ key: b('abc'), value: b('12345') }), KV_OVERHEAD_BYTES + 8);
    assert.equal(txnCost({ success: [range('a')], failure: [] }), 0);
    assert.equal(txnCost({ success: [put('a', '1'), put('b', '22')], failure: [put('c', '1')] }), 2 * KV_OVERHEAD_BYTES + 5);
    assert.equal(txnCost({ success: [], failure: [put('c', '1')] }), KV_OVERHEAD_BYTES + 2);
    assert.equal(txnCost({ success: [{ request_txn: { compare: [], success: [put('n', '1')], failure: [] } }], failure: [] }), KV_OVERHEAD_BYTES + 2);
  });

  it('resolves --quota-backend-bytes as etcd: 0 is 2 GiB, negative disables', () => {
    assert.equal(resolveQuotaBytes(undefined), DEFAULT_QUOTA_BACKEND_BYTES);
    assert.equal(resolveQuotaBytes(0), 2 * 1024 ** 3);
    assert.equal(resolveQuotaBytes(-1), Infinity);
    assert.equal(resolveQuotaBytes(1000), 1000);
    assert.throws(() => resolveQuotaBytes(1.5), RangeError);
  });

  it('passes free requests always, passes on a recent reading, refuses only on a fresh one', async () => {
    let size = 900;
    let reads = 0;
    let now = 0;
    const q = new SpaceQuota(1000, async () => { reads++; return size; }, 100, () => now, 1000);
    assert.equal(await q.available(0), true);
    assert.equal(reads, 0);
    assert.equal(await q.available(50), true);
    assert.equal(reads, 1);
    assert.equal(await q.available(50), true, 'cached');
    assert.equal(reads, 1);
    assert.equal(await q.available(100), false, 'size + cost must stay below the quota');
    assert.equal(reads, 2, 'a refusal re-reads');
    size = 100;
    assert.equal(await q.available(100), true, 'space freed counts at once');
    now = 500;
    size = 990;
    assert.equal(await q.available(50), true, 'a stale reading that fits passes without waiting');
    assert.equal(reads, 4, 'and starts a fresh one');
    await new Promise((r) => setImmediate(r));
    assert.equal(await q.available(50), false, 'the fresh reading counts once read');
    assert.equal(reads, 5, 'a refusal re-reads');
    size = 100;
    now = 5000;
    assert.equal(await q.available(50), true);
    assert.equal(reads, 6, 'a reading older than the stale bound is waited for');
    size = 990;
    now = 7000;
    assert.equal(await q.available(50), false, 'so is one that would refuse');
    assert.equal(await new SpaceQuota(Infinity, async () => { throw new Error('never read'); }).available(1e9), true);
  });
});

describe('alarm store', () => {
  it('activates once per member and type, lists by type then member, deactivates', () => {
    const s = new AlarmStore();
    assert.equal(s.activate(5n, AlarmType.NONE), undefined);
    const a = s.activate(5n, AlarmType.NOSPACE);
    assert.deepEqual(a, { memberID: 5n, alarm: AlarmType.NOSPACE });
    assert.equal(s.activate(5n, AlarmType.NOSPACE), a, 'already active: the same alarm');
    s.activate(2n, AlarmType.NOSPACE);
    s.activate(1n, AlarmType.CORRUPT);
    assert.deepEqual(s.get(), [
      { memberID: 2n, alarm: AlarmType.NOSPACE },
      { memberID: 5n, alarm: AlarmType.NOSPACE },
      { memberID: 1n, alarm: AlarmType.CORRUPT },
    ]);
    assert.deepEqual(s.get(AlarmType.CORRUPT), [{ memberID: 1n, alarm: AlarmType.CORRUPT }]);
    assert.equal(s.has(AlarmType.NOSPACE), true);
    assert.equal(s.deactivate(9n, AlarmType.NOSPACE), undefined);
    assert.deepEqual(s.deactivate(5n, AlarmType.NOSPACE), a);
    s.deactivate(2n, AlarmType.NOSPACE);
    assert.equal(s.has(AlarmType.NOSPACE), false);
  });

  it('prints alarms as etcd lists them in Status.errors', () => {
    assert.equal(alarmStatusText({ memberID: 3319814642761637952n, alarm: AlarmType.NOSPACE }), 'memberID:3319814642761637952 alarm:NOSPACE ');
    assert.equal(alarmStatusText({ memberID: 1n, alarm: AlarmType.CORRUPT }), 'memberID:1 alarm:CORRUPT ');
  });
});
