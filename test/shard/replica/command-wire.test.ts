/**
 * The hand-written put command and put dedupe record codec against the
 * general (protobufjs) one: each reads what the other writes, to the same
 * command; other commands and malformed input go the general way.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeCommand,
  decodeDedupeRecord,
  encodeCommand,
  encodeDedupeRecord,
  generalCommandCodec,
  type DedupeRecord,
  type RangeCommand,
} from '../../../src/shard/replica/command-codec.js';
import { decodeWriteCommand, type WriteCommand } from '../../../src/shard/replica/command-wire.js';
import { CommandInvalidError } from '../../../src/shard/range/index.js';
import type { Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../../../src/shard/mvcc/index.js';
import { Prng } from '../../storage/prng.js';

const b = (s: string): Buffer => Buffer.from(s);

function bytes(rng: Prng, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

/** A number from the edges and the middle of [0, 2^53 − 1]. */
function counter(rng: Prng): number {
  const edges = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32, 2 ** 53 - 1];
  return rng.int(3) === 0 ? edges[rng.int(edges.length)]! : rng.int(2 ** 30) * rng.int(1 << 20);
}

function lease(rng: Prng): bigint {
  const edges = [0n, 1n, -1n, 2n ** 62n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 7_587_861_214_733_012_741n];
  return rng.int(2) === 0 ? edges[rng.int(edges.length)]! : BigInt(rng.int(2 ** 30)) * BigInt(rng.int(2 ** 30));
}

function maybe<T>(rng: Prng, make: () => T): T | undefined {
  return rng.int(3) === 0 ? undefined : make();
}

/** Sets `obj[k]` to `make()` in two cases of three. */
function maybeSet<T extends object, K extends keyof T>(rng: Prng, obj: T, k: K, make: () => T[K]): void {
  const v = maybe(rng, make);
  if (v !== undefined) obj[k] = v;
}

const key = (rng: Prng): Buffer => bytes(rng, rng.int(4) === 0 ? 0 : 1 + rng.int(40));
const bool = (rng: Prng) => (): boolean => rng.int(2) === 1;

/** An int64 field's value: now and then negative (which only the general decoder reads). */
function int64(rng: Prng): number {
  return rng.int(10) === 0 ? -1 - rng.int(1000) : counter(rng);
}

function randomPutRequest(rng: Prng): PutRequest {
  const request: { -readonly [K in keyof PutRequest]: PutRequest[K] } = { key: key(rng) };
  maybeSet(rng, request, 'value', () => bytes(rng, rng.int(20) === 0 ? 70_000 : [0, 1, 300][rng.int(3)]!));
  maybeSet(rng, request, 'lease', () => lease(rng));
  for (const f of ['prevKv', 'ignoreValue', 'ignoreLease'] as const) maybeSet(rng, request, f, bool(rng));
  return request;
}

function randomDelete(rng: Prng): DeleteRangeRequest {
  const d: { -readonly [K in keyof DeleteRangeRequest]: DeleteRangeRequest[K] } = { key: key(rng) };
  maybeSet(rng, d, 'rangeEnd', () => key(rng));
  maybeSet(rng, d, 'prevKv', bool(rng));
  return d;
}

function randomRange(rng: Prng): RangeRequest {
  const r: { -readonly [K in keyof RangeRequest]: RangeRequest[K] } = { key: key(rng) };
  maybeSet(rng, r, 'rangeEnd', () => key(rng));
  for (const f of ['limit', 'revision', 'minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision'] as const) {
    if (rng.int(2) === 0) maybeSet(rng, r, f, () => int64(rng));
  }
  maybeSet(rng, r, 'sortOrder', () => (['NONE', 'ASCEND', 'DESCEND'] as const)[rng.int(3)]!);
  maybeSet(rng, r, 'sortTarget', () => (['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const)[rng.int(5)]!);
  maybeSet(rng, r, 'keysOnly', bool(rng));
  maybeSet(rng, r, 'countOnly', bool(rng));
  return r;
}

function randomCompare(rng: Prng): Compare {
  const base = { key: key(rng), result: (['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const)[rng.int(4)]!, ...(rng.int(3) === 0 ? { rangeEnd: key(rng) } : {}) };
  switch (rng.int(5)) {
    case 0:
      return { ...base, target: 'VALUE', value: bytes(rng, rng.int(2) === 0 ? 0 : 1 + rng.int(300)) };
    case 1:
      return { ...base, target: 'VERSION', version: int64(rng) };
    case 2:
      return { ...base, target: 'CREATE', createRevision: int64(rng) };
    case 3:
      return { ...base, target: 'MOD', modRevision: int64(rng) };
    default:
      return { ...base, target: 'LEASE', lease: lease(rng) };
  }
}

function randomOp(rng: Prng, depth: number): RequestOp {
  switch (rng.int(depth < 2 ? 4 : 3)) {
    case 0:
      return { type: 'range', request: randomRange(rng) };
    case 1:
      return { type: 'put', request: randomPutRequest(rng) };
    case 2:
      return { type: 'deleteRange', request: randomDelete(rng) };
    default:
      return { type: 'txn', request: randomTxn(rng, depth + 1) };
  }
}

function randomTxn(rng: Prng, depth = 0): TxnRequest {
  const t: { -readonly [K in keyof TxnRequest]: TxnRequest[K] } = {};
  const list = <T>(make: () => T): T[] => Array.from({ length: rng.int(4) }, make);
  maybeSet(rng, t, 'compare', () => list(() => randomCompare(rng)));
  maybeSet(rng, t, 'success', () => list(() => randomOp(rng, depth)));
  maybeSet(rng, t, 'failure', () => list(() => randomOp(rng, depth)));
  return t;
}

function randomWrite(rng: Prng): WriteCommand {
  const kind = rng.int(3);
  const body: WriteCommand['body'] =
    kind === 0
      ? { type: 'put', request: randomPutRequest(rng) }
      : kind === 1
        ? { type: 'deleteRange', request: randomDelete(rng) }
        : { type: 'txn', request: randomTxn(rng) };
  const cmd: { -readonly [K in keyof WriteCommand]: WriteCommand[K] } = {
    requestId: { proposer: bytes(rng, 1 + rng.int(16)), seq: counter(rng) },
    epoch: { confVersion: counter(rng), spanVersion: counter(rng) },
    body,
  };
  const revision = maybe(rng, () => counter(rng));
  if (revision !== undefined) cmd.revision = revision;
  const authRevision = maybe(rng, () => counter(rng));
  if (authRevision !== undefined) cmd.authRevision = authRevision;
  const authUser = maybe(rng, () => ['', 'root', 'ünïcode-user'][rng.int(3)]!);
  if (authUser !== undefined) cmd.authUser = authUser;
  return cmd;
}

/** Whether the encoding of `cmd` holds a negative int64 (ten-byte varints, left to the general decoder). */
function hasNegative(cmd: WriteCommand): boolean {
  return JSON.stringify(cmd, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).match(/":-\d/) !== null;
}

describe('hand-written write command codec', () => {
  it('reads and writes the same commands as the general codec (1,500 random puts, deletes and txns)', () => {
    const rng = new Prng(0x5eed);
    let fastDecoded = 0;
    for (let i = 0; i < 1500; i++) {
      const cmd = randomWrite(rng);
      const fast = encodeCommand(cmd);
      const general = generalCommandCodec.encode(cmd);
      const expected = generalCommandCodec.decode(general);
      // The general decoder reads the fast encoding to the same command ...
      assert.deepEqual(generalCommandCodec.decode(fast), expected, `case ${i}: general decode of the fast encoding`);
      // ... and the fast decoder takes both encodings (negative int64s excepted), to that command.
      const fromGeneral = decodeWriteCommand(general);
      if (!hasNegative(cmd)) assert.ok(fromGeneral !== undefined, `case ${i}: the fast decoder declined the general encoding`);
      if (fromGeneral !== undefined) {
        fastDecoded++;
        assert.deepEqual(fromGeneral, expected, `case ${i}: fast decode of the general encoding`);
      }
      assert.deepEqual(decodeCommand(fast), expected, `case ${i}: round trip`);
    }
    assert.ok(fastDecoded > 1000, `the fast decoder took ${fastDecoded} of 1,500`);
  });

  it('keeps a put field absent, or present with a zero value, as it was', () => {
    const base: RangeCommand = { requestId: { proposer: b('p'), seq: 1 }, epoch: { confVersion: 0, spanVersion: 0 }, body: { type: 'put', request: { key: b('k') } } };
    const withZeros: RangeCommand = {
      ...base,
      body: { type: 'put', request: { key: b(''), value: b(''), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
    };
    assert.deepEqual(decodeCommand(encodeCommand(base)), base);
    assert.deepEqual(decodeCommand(encodeCommand(withZeros)), withZeros);
  });

  it('leaves other commands, and what it cannot read, to the general decoder', () => {
    const compact: RangeCommand = {
      requestId: { proposer: b('p'), seq: 7 },
      epoch: { confVersion: 1, spanVersion: 2 },
      body: { type: 'compact', request: { revision: 5, physical: true } },
    };
    const bytesOfCompact = encodeCommand(compact);
    assert.equal(decodeWriteCommand(bytesOfCompact), undefined);
    assert.deepEqual(decodeCommand(bytesOfCompact), compact);

    const put = randomWrite(new Prng(7));
    const good = Buffer.from(encodeCommand(put));
    for (const cut of [1, 3, good.length - 1]) {
      const truncated = good.subarray(0, cut);
      assert.equal(decodeWriteCommand(truncated), undefined, `truncated at ${cut}`);
      assert.throws(() => decodeCommand(truncated), CommandInvalidError);
    }
    // A seq beyond 2^53 − 1 (written by hand: 2^60 as a varint) is refused by the general decoder.
    const bigSeq = Buffer.from([0x0a, 0x0c, 0x0a, 0x01, 0x70, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x52, 0x03, 0x0a, 0x01, 0x6b]);
    assert.equal(decodeWriteCommand(bigSeq), undefined);
    assert.throws(() => decodeCommand(bigSeq), CommandInvalidError);
  });

  it('refuses what the encoding cannot hold with CommandInvalidError', () => {
    const ok: RangeCommand = { requestId: { proposer: b('p'), seq: 1 }, epoch: { confVersion: 0, spanVersion: 0 }, body: { type: 'put', request: { key: b('k') } } };
    assert.throws(() => encodeCommand({ ...ok, requestId: { proposer: Buffer.alloc(17), seq: 1 } }), CommandInvalidError);
    assert.throws(() => encodeCommand({ ...ok, requestId: { proposer: Buffer.alloc(0), seq: 1 } }), CommandInvalidError);
    assert.throws(() => encodeCommand({ ...ok, requestId: { proposer: b('p'), seq: 2 ** 53 } }), CommandInvalidError);
    assert.throws(() => encodeCommand({ ...ok, revision: -1 }), CommandInvalidError);
    assert.throws(() => encodeCommand({ ...ok, epoch: { confVersion: 1.5, spanVersion: 0 } }), CommandInvalidError);
  });
});

describe('hand-written put dedupe record', () => {
  it('decodes through the general decoder to the record, with and without a previous key-value', () => {
    const rng = new Prng(99);
    for (let i = 0; i < 200; i++) {
      const withPrev = rng.int(2) === 1;
      const rec: DedupeRecord = {
        index: counter(rng),
        result: {
          raftTerm: counter(rng),
          ok: true,
          result: {
            type: 'put',
            response: {
              revision: counter(rng),
              ...(withPrev
                ? {
                    prevKv: {
                      key: bytes(rng, rng.int(20)),
                      createRevision: counter(rng),
                      modRevision: counter(rng),
                      version: counter(rng),
                      value: bytes(rng, rng.int(300)),
                      lease: lease(rng),
                    },
                  }
                : {}),
            },
          },
        },
      };
      const fast = encodeDedupeRecord(rec);
      assert.deepEqual(decodeDedupeRecord(fast), decodeDedupeRecord(generalCommandCodec.encodeDedupeRecord(rec)), `case ${i}`);
      assert.deepEqual(decodeDedupeRecord(fast), rec, `case ${i}: round trip`);
    }
  });
});
