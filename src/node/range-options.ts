/**
 * Per-range options a node keeps outside the ranges' own engines
 * (docs/node.md "Range engines"): which engine holds a range's data — the
 * node's shared engine (default) or a memory engine of its own.
 *
 * Recorded in `<dataDir>/ranges.json` before the range is hosted for the
 * first time, so a restart reopens every range on the engine it was created
 * on, whatever the options say then. Only ranges off the default engine are
 * listed: a hosted range that is not listed is on the shared engine, and a
 * range can never be hosted before it is listed (the record is written
 * first), so the absence is unambiguous.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataDirError, writeJsonFileDurably } from './data-dir.js';

/** Where a range keeps its MVCC state: the node's engine, or a memory engine of its own (lost on restart). */
export type RangeEngineKind = 'shared' | 'memory';
/** Every RangeEngineKind. */
export const RANGE_ENGINE_KINDS: readonly RangeEngineKind[] = ['shared', 'memory'];
/** The engine of a range that names none. */
export const RANGE_ENGINE_DEFAULT: RangeEngineKind = 'shared';
/** File name of the record under the data directory. */
export const RANGE_OPTIONS_FILE = 'ranges.json';
/** Version of the record's format. */
export const RANGE_OPTIONS_FORMAT = 1;
/** The record is small; refuse to parse a bigger file (a wrong file). */
const RANGE_OPTIONS_BYTES_MAX = 4 * 1024 * 1024;

/** Whether `x` names a range engine kind. */
export function isRangeEngineKind(x: unknown): x is RangeEngineKind {
  return typeof x === 'string' && (RANGE_ENGINE_KINDS as readonly string[]).includes(x);
}

/** The node's range options, as recorded (durably when the node has a data directory). */
export class RangeOptionsTable {
  private constructor(
    /** Undefined for a node without a directory (memory node): nothing is persisted. */
    private readonly dataDir: string | undefined,
    private readonly engines: Map<number, RangeEngineKind>,
  ) {}

  /** Reads the record (none yet: empty); DataDirError for a malformed one. */
  static async load(dataDir: string | undefined): Promise<RangeOptionsTable> {
    const engines = new Map<number, RangeEngineKind>();
    if (dataDir === undefined) return new RangeOptionsTable(undefined, engines);
    const path = join(dataDir, RANGE_OPTIONS_FILE);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new RangeOptionsTable(dataDir, engines);
      throw e;
    }
    if (buf.byteLength > RANGE_OPTIONS_BYTES_MAX) throw new DataDirError(`${path} is larger than ${RANGE_OPTIONS_BYTES_MAX} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      throw new DataDirError(`${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    const rec = parsed as { format?: unknown; ranges?: unknown } | null;
    if (rec === null || typeof rec !== 'object' || rec.format !== RANGE_OPTIONS_FORMAT || typeof rec.ranges !== 'object' || rec.ranges === null) {
      throw new DataDirError(`${path}: unsupported or malformed range options record`);
    }
    for (const [id, opts] of Object.entries(rec.ranges as Record<string, unknown>)) {
      const rangeId = Number(id);
      const engine = (opts as { engine?: unknown } | null)?.engine;
      if (!/^[1-9][0-9]*$/.test(id) || !Number.isSafeInteger(rangeId) || !isRangeEngineKind(engine)) {
        throw new DataDirError(`${path}: malformed entry for range '${id}'`);
      }
      engines.set(rangeId, engine);
    }
    return new RangeOptionsTable(dataDir, engines);
  }

  /** The recorded engine of `rangeId` (undefined: never recorded, i.e. the default if the range is hosted). */
  recorded(rangeId: number): RangeEngineKind | undefined {
    return this.engines.get(rangeId);
  }

  /**
   * Records `engine` for `rangeId` (before the range is hosted for the first
   * time); durable when it resolves. The default engine needs no record.
   */
  async record(rangeId: number, engine: RangeEngineKind): Promise<void> {
    if (engine === RANGE_ENGINE_DEFAULT || this.engines.get(rangeId) === engine) return;
    const next = new Map(this.engines).set(rangeId, engine);
    if (this.dataDir !== undefined) {
      const ranges: Record<string, { engine: RangeEngineKind }> = {};
      for (const [id, e] of [...next].sort((a, b) => a[0] - b[0])) ranges[String(id)] = { engine: e };
      await writeJsonFileDurably(this.dataDir, RANGE_OPTIONS_FILE, { format: RANGE_OPTIONS_FORMAT, ranges });
    }
    this.engines.set(rangeId, engine);
  }
}
