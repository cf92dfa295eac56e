/**
 * Wire encoding of raft messages (protobuf, `proto/keyspan/raftpb.proto`).
 *
 * Integer rule (docs/integers.md): terms, indexes, node ids, group ids and
 * byte counts are safe-integer numbers. Encoding refuses anything else with
 * `TransportEncodeError`; decoding turns protobufjs' 64-bit `Long`s into
 * numbers and refuses values of 2^53 or more with `TransportCodecError`.
 *
 * Absent and empty are kept apart where raft cares: a message without a
 * snapshot decodes without `snapshot`, and `context` uses proto3 `optional`
 * so an absent context and an empty one survive the round trip.
 *
 * Decoded byte fields (entry data, snapshot data, context) are views into the
 * received buffer, not copies: a retained entry keeps its batch's buffer alive,
 * which costs memory only while raft holds the entry unpersisted.
 */
import protobuf from 'protobufjs';
import type {
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  NodeId,
  Snapshot,
} from '../raft/types.js';
import { TransportCodecError, TransportEncodeError } from './errors.js';
import { lookupRaftType } from './proto-root.js';

/** A raft message together with the group it belongs to. */
export interface GroupMessage {
  readonly groupId: number;
  readonly message: Message;
}

/** A decoded `RaftMessageBatch`. */
export interface DecodedBatch {
  readonly fromNode: NodeId;
  readonly toNode: NodeId;
  readonly messages: readonly GroupMessage[];
}

/** The first chunk of a snapshot stream; the message's snapshot data is empty. */
export interface SnapshotHeader {
  readonly fromNode: NodeId;
  readonly toNode: NodeId;
  readonly groupId: number;
  readonly message: Message;
  /** Length of the snapshot data that the following chunks carry. */
  readonly dataBytes: number;
}

/** A decoded `SnapshotChunk`: the header (first chunk only) and/or a slice of data. */
export interface DecodedSnapshotChunk {
  readonly header?: SnapshotHeader;
  readonly data: Uint8Array;
}

// Numbered as etcd-io/raft's raftpb.MessageType (and raftpb.proto).
const MESSAGE_TYPE_TO_WIRE: Readonly<Record<MessageType, number>> = {
  hup: 0,
  beat: 1,
  prop: 2,
  app: 3,
  appResp: 4,
  vote: 5,
  voteResp: 6,
  snap: 7,
  heartbeat: 8,
  heartbeatResp: 9,
  unreachable: 10,
  snapStatus: 11,
  checkQuorum: 12,
  transferLeader: 13,
  timeoutNow: 14,
  readIndex: 15,
  readIndexResp: 16,
  preVote: 17,
  preVoteResp: 18,
};

const MESSAGE_TYPE_FROM_WIRE: readonly MessageType[] = invert(MESSAGE_TYPE_TO_WIRE);

const ENTRY_TYPE_TO_WIRE: Readonly<Record<EntryType, number>> = { normal: 0, confChange: 1 };
const ENTRY_TYPE_FROM_WIRE: readonly EntryType[] = invert(ENTRY_TYPE_TO_WIRE);

/** Every raft message type, in wire order (for exhaustive tests). */
export const ALL_MESSAGE_TYPES: readonly MessageType[] = MESSAGE_TYPE_FROM_WIRE;

function invert<T extends string>(table: Readonly<Record<T, number>>): T[] {
  const out: T[] = [];
  for (const [name, n] of Object.entries(table) as Array<[T, number]>) out[n] = name;
  return out;
}

// The reflected types, resolved once per process.
let types:
  | {
      message: protobuf.Type;
      groupMessage: protobuf.Type;
      batch: protobuf.Type;
      chunk: protobuf.Type;
      batchTags: { fromNode: number; toNode: number; messages: number };
    }
  | undefined;

function wireTypes(): NonNullable<typeof types> {
  if (types === undefined) {
    const batch = lookupRaftType('RaftMessageBatch');
    types = {
      message: lookupRaftType('Message'),
      groupMessage: lookupRaftType('GroupMessage'),
      batch,
      chunk: lookupRaftType('SnapshotChunk'),
      // Batches are assembled from pre-encoded GroupMessages (see encodeBatch),
      // so the tags come from the .proto rather than from literals here.
      batchTags: {
        fromNode: fieldTag(batch, 'from_node', 0),
        toNode: fieldTag(batch, 'to_node', 0),
        messages: fieldTag(batch, 'messages', 2),
      },
    };
  }
  return types;
}

function fieldTag(type: protobuf.Type, name: string, wireType: number): number {
  const field = type.fields[name];
  if (field === undefined) throw new TransportCodecError(`${type.name}.${name} missing from raftpb.proto`);
  return (field.id << 3) | wireType;
}

// ---------------------------------------------------------------- encoding

function safe(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TransportEncodeError(`${field}=${value} is not a non-negative safe integer`);
  }
  return value;
}

function safeList(values: readonly NodeId[], field: string): number[] {
  return values.map((v) => safe(v, field));
}

function confStateToWire(cs: ConfState): Record<string, unknown> {
  return {
    voters: safeList(cs.voters, 'voters'),
    learners: safeList(cs.learners, 'learners'),
    voters_outgoing: safeList(cs.votersOutgoing, 'votersOutgoing'),
    learners_next: safeList(cs.learnersNext, 'learnersNext'),
    auto_leave: cs.autoLeave,
  };
}

function snapshotToWire(snap: Snapshot, withData: boolean): Record<string, unknown> {
  return {
    meta: {
      index: safe(snap.meta.index, 'snapshot.meta.index'),
      term: safe(snap.meta.term, 'snapshot.meta.term'),
      conf_state: confStateToWire(snap.meta.confState),
    },
    data: withData ? snap.data : new Uint8Array(0),
  };
}

function entryToWire(e: Entry): Record<string, unknown> {
  return {
    term: safe(e.term, 'entry.term'),
    index: safe(e.index, 'entry.index'),
    type: ENTRY_TYPE_TO_WIRE[e.type],
    data: e.data,
  };
}

/** The protobuf plain object of `msg`; `withSnapshotData: false` leaves snapshot data out. */
function messageToWire(msg: Message, withSnapshotData = true): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    type: MESSAGE_TYPE_TO_WIRE[msg.type],
    to: safe(msg.to, 'to'),
    from: safe(msg.from, 'from'),
    term: safe(msg.term, 'term'),
    log_term: safe(msg.logTerm, 'logTerm'),
    index: safe(msg.index, 'index'),
    entries: msg.entries.map(entryToWire),
    commit: safe(msg.commit, 'commit'),
    reject: msg.reject,
    reject_hint: safe(msg.rejectHint, 'rejectHint'),
  };
  if (msg.snapshot !== undefined) wire['snapshot'] = snapshotToWire(msg.snapshot, withSnapshotData);
  if (msg.context !== undefined) wire['context'] = msg.context;
  return wire;
}

/** Encodes one raft message alone (tests, tools). */
export function encodeMessage(msg: Message): Uint8Array {
  return wireTypes().message.encode(messageToWire(msg)).finish();
}

/**
 * Encodes one `GroupMessage`. The transport encodes each message when it is
 * queued, so queue limits count exact wire bytes and a batch is a cheap
 * concatenation of these (see `encodeBatch`).
 */
export function encodeGroupMessage(groupId: number, msg: Message): Uint8Array {
  const wire = { group_id: safe(groupId, 'groupId'), message: messageToWire(msg) };
  return wireTypes().groupMessage.encode(wire).finish();
}

/** A `RaftMessageBatch` from GroupMessages already encoded with `encodeGroupMessage`. */
export function encodeBatch(fromNode: NodeId, toNode: NodeId, groupMessages: readonly Uint8Array[]): Buffer {
  const tags = wireTypes().batchTags;
  const w = protobuf.Writer.create();
  w.uint32(tags.fromNode).uint64(safe(fromNode, 'fromNode'));
  w.uint32(tags.toNode).uint64(safe(toNode, 'toNode'));
  for (const gm of groupMessages) w.uint32(tags.messages).bytes(gm);
  return asBuffer(w.finish());
}

/** The header chunk of a snapshot stream (the snapshot's data is sent in later chunks). */
export function encodeSnapshotHeader(header: SnapshotHeader): Buffer {
  const wire = {
    header: {
      from_node: safe(header.fromNode, 'fromNode'),
      to_node: safe(header.toNode, 'toNode'),
      group_id: safe(header.groupId, 'groupId'),
      message: messageToWire(header.message, false),
      data_bytes: safe(header.dataBytes, 'dataBytes'),
    },
  };
  return asBuffer(wireTypes().chunk.encode(wire).finish());
}

/** A data chunk of a snapshot stream. */
export function encodeSnapshotData(data: Uint8Array): Buffer {
  return asBuffer(wireTypes().chunk.encode({ data }).finish());
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------- decoding

/** A decoded protobufjs object: fields by their .proto (snake_case) names. */
type Wire = Record<string, unknown>;

/** protobufjs hands 64-bit fields over as `Long` (or number without long.js). */
interface LongLike {
  readonly low: number;
  readonly high: number;
}

const TWO_POW_32 = 2 ** 32;
/** A Long's high word above this means the value is 2^53 or more. */
const SAFE_HIGH_WORD_MAX = 0x1fffff;

/** A decoded uint64 as a safe-integer number; throws `TransportCodecError` otherwise. */
export function safeFromWire(value: unknown, field: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new TransportCodecError(`${field}=${value} is not a safe integer`);
  }
  if (typeof value === 'object' && value !== null && 'low' in value && 'high' in value) {
    const long = value as LongLike;
    const high = long.high >>> 0;
    if (high > SAFE_HIGH_WORD_MAX) {
      throw new TransportCodecError(`${field}=${String(value)} exceeds Number.MAX_SAFE_INTEGER`);
    }
    return high * TWO_POW_32 + (long.low >>> 0);
  }
  throw new TransportCodecError(`${field} is not an integer`);
}

function bytesFromWire(value: unknown, field: string): Uint8Array {
  if (value instanceof Uint8Array) {
    // A plain Uint8Array view, so decoded messages compare equal to the
    // host's own (Buffer is a subclass with another prototype).
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  // protobufjs' default for an absent bytes field is an empty array.
  if (Array.isArray(value) && value.length === 0) return new Uint8Array(0);
  throw new TransportCodecError(`${field} is not bytes`);
}

function present(value: unknown): value is Wire {
  return value !== null && value !== undefined;
}

function enumFromWire<T>(table: readonly T[], value: unknown, field: string): T {
  const name = typeof value === 'number' ? table[value] : undefined;
  if (name === undefined) throw new TransportCodecError(`${field}=${String(value)} is not a known value`);
  return name;
}

function listFromWire(value: unknown, field: string): NodeId[] {
  if (!Array.isArray(value)) throw new TransportCodecError(`${field} is not a list`);
  return value.map((v) => safeFromWire(v, field));
}

function confStateFromWire(w: Wire | undefined): ConfState {
  if (w === undefined) return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  return {
    voters: listFromWire(w['voters'], 'voters'),
    learners: listFromWire(w['learners'], 'learners'),
    votersOutgoing: listFromWire(w['voters_outgoing'], 'voters_outgoing'),
    learnersNext: listFromWire(w['learners_next'], 'learners_next'),
    autoLeave: w['auto_leave'] === true,
  };
}

function snapshotFromWire(w: Wire): Snapshot {
  const meta = present(w['meta']) ? (w['meta'] as Wire) : undefined;
  return {
    meta: {
      index: safeFromWire(meta?.['index'] ?? 0, 'snapshot.meta.index'),
      term: safeFromWire(meta?.['term'] ?? 0, 'snapshot.meta.term'),
      confState: confStateFromWire(present(meta?.['conf_state']) ? (meta['conf_state'] as Wire) : undefined),
    },
    data: bytesFromWire(w['data'], 'snapshot.data'),
  };
}

function entryFromWire(w: Wire): Entry {
  return {
    term: safeFromWire(w['term'], 'entry.term'),
    index: safeFromWire(w['index'], 'entry.index'),
    type: enumFromWire(ENTRY_TYPE_FROM_WIRE, w['type'], 'entry.type'),
    data: bytesFromWire(w['data'], 'entry.data'),
  };
}

function messageFromWire(w: Wire): Message {
  const entries = w['entries'];
  if (!Array.isArray(entries)) throw new TransportCodecError('entries is not a list');
  const base = {
    type: enumFromWire(MESSAGE_TYPE_FROM_WIRE, w['type'], 'type'),
    to: safeFromWire(w['to'], 'to'),
    from: safeFromWire(w['from'], 'from'),
    term: safeFromWire(w['term'], 'term'),
    logTerm: safeFromWire(w['log_term'], 'log_term'),
    index: safeFromWire(w['index'], 'index'),
    entries: entries.map((e: Wire) => entryFromWire(e)),
    commit: safeFromWire(w['commit'], 'commit'),
    reject: w['reject'] === true,
    rejectHint: safeFromWire(w['reject_hint'], 'reject_hint'),
  };
  // Optional fields are set only when present (exactOptionalPropertyTypes).
  const snapshot = present(w['snapshot']) ? snapshotFromWire(w['snapshot'] as Wire) : undefined;
  const context = present(w['context']) ? bytesFromWire(w['context'], 'context') : undefined;
  if (snapshot !== undefined && context !== undefined) return { ...base, snapshot, context };
  if (snapshot !== undefined) return { ...base, snapshot };
  if (context !== undefined) return { ...base, context };
  return base;
}

/** Runs a protobufjs decode, turning its errors into `TransportCodecError`. */
function decodeWith(type: protobuf.Type, bytes: Uint8Array): Wire {
  try {
    return type.decode(bytes) as unknown as Wire;
  } catch (err) {
    throw new TransportCodecError(`malformed ${type.name}: ${(err as Error).message}`, { cause: err });
  }
}

function requireMessage(w: Wire, field: string, where: string): Wire {
  const m = w[field];
  if (!present(m)) throw new TransportCodecError(`${where} without ${field}`);
  return m as Wire;
}

/** Decodes one raft message encoded with `encodeMessage`. */
export function decodeMessage(bytes: Uint8Array): Message {
  return messageFromWire(decodeWith(wireTypes().message, bytes));
}

/** Decodes a `RaftMessageBatch`; throws `TransportCodecError` on any bad field. */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  const w = decodeWith(wireTypes().batch, bytes);
  const list = w['messages'];
  if (!Array.isArray(list)) throw new TransportCodecError('messages is not a list');
  return {
    fromNode: safeFromWire(w['from_node'], 'from_node'),
    toNode: safeFromWire(w['to_node'], 'to_node'),
    messages: list.map((gm: Wire) => ({
      groupId: safeFromWire(gm['group_id'], 'group_id'),
      message: messageFromWire(requireMessage(gm, 'message', 'GroupMessage')),
    })),
  };
}

/** Decodes a `SnapshotChunk`. */
export function decodeSnapshotChunk(bytes: Uint8Array): DecodedSnapshotChunk {
  const w = decodeWith(wireTypes().chunk, bytes);
  const data = bytesFromWire(w['data'], 'data');
  if (!present(w['header'])) return { data };
  const h = w['header'] as Wire;
  const message = messageFromWire(requireMessage(h, 'message', 'SnapshotHeader'));
  if (message.type !== 'snap' || message.snapshot === undefined) {
    throw new TransportCodecError(`snapshot header carries a ${message.type} message without a snapshot`);
  }
  const header: SnapshotHeader = {
    fromNode: safeFromWire(h['from_node'], 'from_node'),
    toNode: safeFromWire(h['to_node'], 'to_node'),
    groupId: safeFromWire(h['group_id'], 'group_id'),
    message,
    dataBytes: safeFromWire(h['data_bytes'], 'data_bytes'),
  };
  return { header, data };
}
