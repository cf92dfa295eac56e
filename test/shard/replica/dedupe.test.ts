import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine, type Engine } from '../../../src/storage/index.js';
import { DedupeTable } from '../../../src/shard/replica/dedupe.js';
import { RangeKeys } from '../../../src/shard/replica/keys.js';
import { encodeDedupeRecord, type DedupeRecord, type RequestId } from '../../../src/shard/replica/command-codec.js';

const keys = new RangeKeys(7);

function id(proposer: string, seq: number): RequestId {
  return { proposer: Buffer.from(proposer), seq };
}

function putRecord(index: number, revision: number): DedupeRecord {
  return { index, result: { raftTerm: 2, ok: true, result: { type: 'put', response: { revision } } } };
}

function failedRecord(index: number): DedupeRecord {
  return { index, result: { raftTerm: 2, ok: false, error: { code: 'KEY_NOT_FOUND', message: 'etcdserver: key not found' } } };
}

/** Adds a record as the apply path does: its ops in one batch, then commit. */
async function add(engine: Engine, table: DedupeTable, rid: RequestId, record: DedupeRecord): Promise<number> {
  const w = table.add(rid, record);
  await engine.write(w.ops);
  w.commit();
  return w.ops.length;
}

async function familyKeys(engine: Engine, start: Buffer, end: Buffer): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of engine.iterate({ gte: start, lt: end })) out.push(key.toString('hex'));
  return out;
}

test('a record costs one write, and one delete once the table is full; the earliest applied is evicted', async () => {
  const engine = new MemoryEngine();
  const table = await DedupeTable.load(engine, keys, 3);
  // Proposer ids chosen so that key order and applied order differ.
  const ids = [id('zz', 1), id('aa', 9), id('mm', 4), id('bb', 2), id('yy', 3)];
  const opCounts: number[] = [];
  for (let i = 0; i < ids.length; i++) opCounts.push(await add(engine, table, ids[i]!, i === 2 ? failedRecord(10 + i) : putRecord(10 + i, 100 + i)));
  assert.deepEqual(opCounts, [1, 1, 1, 2, 2]);
  assert.equal(table.size, 3);
  assert.equal(await table.get(ids[0]!), undefined, 'evicted first: applied earliest');
  assert.equal(await table.get(ids[1]!), undefined);
  assert.deepEqual(await table.get(ids[2]!), failedRecord(12));
  assert.deepEqual(await table.get(ids[4]!), putRecord(14, 104));
  assert.equal((await familyKeys(engine, keys.dedupeRecordsStart, keys.dedupeRecordsEnd)).length, 3);
  assert.deepEqual(await familyKeys(engine, keys.legacyDedupeOrderStart, keys.legacyDedupeOrderEnd), []);
});

test('a reloaded table keeps the applied order of its records, not their key order', async () => {
  const engine = new MemoryEngine();
  const first = await DedupeTable.load(engine, keys, 3);
  const ids = [id('zz', 1), id('aa', 9), id('mm', 4)];
  for (let i = 0; i < ids.length; i++) await add(engine, first, ids[i]!, putRecord(20 + i, 200 + i));
  const table = await DedupeTable.load(engine, keys, 3);
  assert.equal(table.size, 3);
  assert.deepEqual(await table.get(ids[1]!), putRecord(21, 201));
  // The next record evicts 'zz' (index 20), though 'aa' sorts first by key.
  const w = table.add(id('qq', 5), putRecord(23, 203));
  assert.deepEqual(
    w.ops.map((op) => [op.type, Buffer.from(op.key).toString('hex')]),
    [
      ['put', keys.dedupeRecord(id('qq', 5)).toString('hex')],
      ['del', keys.dedupeRecord(ids[0]!).toString('hex')],
    ],
  );
});

test('a table stored with the order family of earlier versions loads its records in order and drops that family', async () => {
  const engine = new MemoryEngine();
  const ids = [id('zz', 1), id('aa', 9), id('mm', 4)];
  // The earlier layout: each record beside an order entry (applied index -> record key).
  for (let i = 0; i < ids.length; i++) {
    const recordKey = keys.dedupeRecord(ids[i]!);
    await engine.write([
      { type: 'put', key: recordKey, value: encodeDedupeRecord(putRecord(30 + i, 300 + i)) },
      { type: 'put', key: keys.legacyDedupeOrder(30 + i), value: recordKey },
    ]);
  }
  const table = await DedupeTable.load(engine, keys, 3);
  assert.equal(table.size, 3);
  assert.deepEqual(await familyKeys(engine, keys.legacyDedupeOrderStart, keys.legacyDedupeOrderEnd), []);
  assert.deepEqual(await table.get(ids[2]!), putRecord(32, 302));
  await add(engine, table, id('qq', 5), putRecord(33, 303));
  assert.equal(await table.get(ids[0]!), undefined, 'the earliest applied record went first');
  assert.deepEqual(await table.get(ids[1]!), putRecord(31, 301));
});

test('reload reads the records a snapshot install put in place', async () => {
  const engine = new MemoryEngine();
  const table = await DedupeTable.load(engine, keys, 10);
  await add(engine, table, id('aa', 1), putRecord(5, 50));
  // An install replaces the range's keys (here: another record, with a legacy order entry).
  const other = keys.dedupeRecord(id('bb', 2));
  await engine.write([
    { type: 'del', key: keys.dedupeRecord(id('aa', 1)) },
    { type: 'put', key: other, value: encodeDedupeRecord(putRecord(40, 400)) },
    { type: 'put', key: keys.legacyDedupeOrder(40), value: other },
  ]);
  await table.reload();
  assert.equal(table.size, 1);
  assert.equal(await table.get(id('aa', 1)), undefined);
  assert.deepEqual(await table.get(id('bb', 2)), putRecord(40, 400));
  assert.deepEqual(await familyKeys(engine, keys.legacyDedupeOrderStart, keys.legacyDedupeOrderEnd), []);
});

test('mayHold answers from the ids held, without a read: false for a new id, true once added, false once evicted', async () => {
  const engine = new MemoryEngine();
  const table = await DedupeTable.load(engine, keys, 2);
  const [a, c, d] = [id('a', 1), id('c', 1), id('d', 1)];
  assert.equal(table.mayHold(a), false);
  await add(engine, table, a, putRecord(1, 10));
  assert.equal(table.mayHold(a), true);
  assert.equal(table.mayHold(id('a', 2)), false);
  await add(engine, table, c, putRecord(2, 11));
  await add(engine, table, d, putRecord(3, 12));
  assert.deepEqual([table.mayHold(a), table.mayHold(c), table.mayHold(d)], [false, true, true]);
});

