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
import { decodePutCommand, type PutCommand } from '../../../src/shard/replica/command-wire.js';
import { CommandInvalidError } from '../../../src/shard/range/index.js';
import type { PutRequest } from '../../../src/shard/mvcc/index.js';
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

function randomPut(rng: Prng): PutCommand {
  const request: { key: Buffer; value?: Buffer; lease?: bigint; prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean } = {
    key: bytes(rng, rng.int(3) === 0 ? 0 : 1 + rng.int(40)),
  };
  const value = maybe(rng, () => bytes(rng, [0, 1, 300, 70_000][rng.int(4)]!));
  if (value !== undefined) request.value = value;
  const l = maybe(rng, () => lease(rng));
  if (l !== undefined) request.lease = l;
  for (const f of ['prevKv', 'ignoreValue', 'ignoreLease'] as const) {
    const v = maybe(rng, () => rng.int(2) === 1);
    if (v !== undefined) request[f] = v;
  }
  const cmd: { -readonly [K in keyof PutCommand]: PutCommand[K] } = {
    requestId: { proposer: bytes(rng, 1 + rng.int(16)), seq: counter(rng) },
    epoch: { confVersion: counter(rng), spanVersion: counter(rng) },
    body: { type: 'put', request: request as PutRequest },
  };
  const revision = maybe(rng, () => counter(rng));
  if (revision !== undefined) cmd.revision = revision;
  const authRevision = maybe(rng, () => counter(rng));
  if (authRevision !== undefined) cmd.authRevision = authRevision;
  const authUser = maybe(rng, () => ['', 'root', 'ünïcode-user'][rng.int(3)]!);
  if (authUser !== undefined) cmd.authUser = authUser;
  return cmd;
}

describe('hand-written put command codec', () => {
  it('reads and writes the same commands as the general codec (500 random puts)', () => {
    const rng = new Prng(0x5eed);
    for (let i = 0; i < 500; i++) {
      const cmd = randomPut(rng);
      const fast = encodeCommand(cmd);
      const general = generalCommandCodec.encode(cmd);
      const expected = generalCommandCodec.decode(general);
      // The general decoder reads the fast encoding to the same command ...
      assert.deepEqual(generalCommandCodec.decode(fast), expected, `case ${i}: general decode of the fast encoding`);
      // ... and the fast decoder takes both encodings, to that command.
      const fromGeneral = decodePutCommand(general);
      assert.ok(fromGeneral !== undefined, `case ${i}: the fast decoder declined the general encoding`);
      assert.deepEqual(fromGeneral, expected, `case ${i}: fast decode of the general encoding`);
      assert.deepEqual(decodeCommand(fast), expected, `case ${i}: round trip`);
    }
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
    const del: RangeCommand = {
      requestId: { proposer: b('p'), seq: 7 },
      epoch: { confVersion: 1, spanVersion: 2 },
      body: { type: 'deleteRange', request: { key: b('a'), rangeEnd: b('b'), prevKv: true } },
    };
    const bytesOfDel = encodeCommand(del);
    assert.equal(decodePutCommand(bytesOfDel), undefined);
    assert.deepEqual(decodeCommand(bytesOfDel), del);

    const put = randomPut(new Prng(7));
    const good = Buffer.from(encodeCommand(put));
    for (const cut of [1, 3, good.length - 1]) {
      const truncated = good.subarray(0, cut);
      assert.equal(decodePutCommand(truncated), undefined, `truncated at ${cut}`);
      assert.throws(() => decodeCommand(truncated), CommandInvalidError);
    }
    // A seq beyond 2^53 − 1 (written by hand: 2^60 as a varint) is refused by the general decoder.
    const bigSeq = Buffer.from([0x0a, 0x0c, 0x0a, 0x01, 0x70, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x52, 0x03, 0x0a, 0x01, 0x6b]);
    assert.equal(decodePutCommand(bigSeq), undefined);
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
