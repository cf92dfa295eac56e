/**
 * The replicated state machine each node runs: an append-only list of the
 * command ids it applied, with a running hash over every applied entry.
 * Its snapshot (the list, the hash, and the log chain at the snapshot's
 * index) is what raft ships to lagging and new nodes.
 */
import { Hasher } from './hash.js';
import type { Entry } from './raft.js';

/** Commands one state machine may hold (a run proposes far fewer). */
export const STATE_MACHINE_COMMANDS_MAX = 1_000_000;

const COMMAND_TAG = 0x43; // 'C'
const COMMAND_BYTES = 9;

/** Encodes a client command: a tag byte and a unique id (float64, always a safe integer). */
export function encodeCommand(id: number): Uint8Array {
  const out = new Uint8Array(COMMAND_BYTES);
  out[0] = COMMAND_TAG;
  new DataView(out.buffer).setFloat64(1, id);
  return out;
}

/** The command id in a normal entry's data, or undefined (e.g. a leader's no-op). */
export function decodeCommand(data: Uint8Array): number | undefined {
  if (data.length !== COMMAND_BYTES || data[0] !== COMMAND_TAG) return undefined;
  const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(1);
  if (!Number.isSafeInteger(id)) throw new Error(`command id not a safe integer: ${id}`);
  return id;
}

/** The decoded content of a state-machine snapshot. */
export interface SmSnapshotData {
  readonly appliedIndex: number;
  readonly hash: number;
  readonly logChain: number;
  readonly commands: readonly number[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serializes a snapshot's content (JSON: small, and readable in traces). */
export function encodeSmSnapshot(s: SmSnapshotData): Uint8Array {
  return encoder.encode(JSON.stringify({ i: s.appliedIndex, h: s.hash, c: s.logChain, ids: s.commands }));
}

/** Parses snapshot data written by `encodeSmSnapshot`. */
export function decodeSmSnapshot(data: Uint8Array): SmSnapshotData {
  const v = JSON.parse(decoder.decode(data)) as { i: number; h: number; c: number; ids: number[] };
  return { appliedIndex: v.i, hash: v.h, logChain: v.c, commands: v.ids };
}

/** One node's state machine. */
export class StateMachine {
  appliedIndex = 0;
  /** Running hash over every applied entry (index, term, type, data). */
  hash = 0;
  commands: number[] = [];

  /** Rebuilds from a snapshot (on restart, or when raft installs one). */
  restore(s: SmSnapshotData): void {
    this.appliedIndex = s.appliedIndex;
    this.hash = s.hash;
    this.commands = s.commands.slice();
  }

  /**
   * Applies one committed entry; returns its command id if it carries one.
   * Entries must arrive in index order without gaps (asserted: raft's job).
   */
  apply(e: Entry): number | undefined {
    if (e.index !== this.appliedIndex + 1) {
      throw new Error(`state machine: applying index ${e.index} after ${this.appliedIndex}`);
    }
    this.appliedIndex = e.index;
    const h = new Hasher(4).add(this.hash).add(e.index).add(e.term).add(e.type === 'normal' ? 1 : 2);
    this.hash = h.addBytes(e.data).value();
    if (e.type !== 'normal') return undefined;
    const id = decodeCommand(e.data);
    if (id !== undefined) {
      if (this.commands.length >= STATE_MACHINE_COMMANDS_MAX) throw new Error('state machine over its bound');
      this.commands.push(id);
    }
    return id;
  }

  /** This state as snapshot content. */
  snapshotData(logChain: number): SmSnapshotData {
    return { appliedIndex: this.appliedIndex, hash: this.hash, logChain, commands: this.commands.slice() };
  }
}
