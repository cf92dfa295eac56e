/**
 * A deliberately naive reference model of etcd's MVCC keyspace for the
 * randomized differential test: the whole history is one array of versions,
 * every read is a linear scan. Results use a plain normalized shape (strings
 * for keys, values and leases) so they compare with deepEqual.
 */
import type { Compare, RangeRequest, RequestOp, TxnRequest } from '../../src/shard/index.js';

/** A KeyValue in comparable form. */
export interface NKv {
  key: string;
  create: number;
  mod: number;
  version: number;
  value: string;
  lease: string;
}

/** Any normalized result, or an error code. */
export type NResult = { error: string } | { ok: unknown };

interface Ver {
  key: string;
  rev: number;
  tomb: boolean;
  value: string;
  create: number;
  version: number;
  lease: bigint;
}

type Span = { single: string } | { start: string; end: string | null } | 'empty';

const s = (u: Uint8Array | undefined): string => Buffer.from(u ?? []).toString('latin1');
const cmpStr = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));

function spanOf(key: Uint8Array, rangeEnd: Uint8Array | undefined): Span {
  const k = s(key);
  const e = s(rangeEnd);
  if (e === '') return { single: k };
  if (e === '\x00') return { start: k, end: null };
  if (cmpStr(e, k) <= 0) return 'empty';
  return { start: k, end: e };
}

function inSpan(span: Span, key: string): boolean {
  if (span === 'empty') return false;
  if ('single' in span) return span.single === key;
  return cmpStr(key, span.start) >= 0 && (span.end === null || cmpStr(key, span.end) < 0);
}

function toKv(v: Ver): NKv {
  return { key: v.key, create: v.create, mod: v.rev, version: v.version, value: v.value, lease: String(v.lease) };
}

class Fail extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** The reference model. */
export class Model {
  current = 1;
  compacted = -1;
  private readonly history: Ver[] = [];

  /** Newest version of `key` at or before `rev` (pending writes win when given). */
  private latest(key: string, rev: number, pending?: Map<string, Ver>): Ver | undefined {
    const p = pending?.get(key);
    if (p !== undefined) return p;
    let found: Ver | undefined;
    for (const v of this.history) if (v.key === key && v.rev <= rev) found = v;
    return found;
  }

  private live(span: Span, rev: number, pending?: Map<string, Ver>): Ver[] {
    const keys = new Set(this.history.map((v) => v.key));
    for (const k of pending?.keys() ?? []) keys.add(k);
    const out: Ver[] = [];
    for (const k of [...keys].sort(cmpStr)) {
      if (!inSpan(span, k)) continue;
      const v = this.latest(k, rev, pending);
      if (v !== undefined && !v.tomb) out.push(v);
    }
    return out;
  }

  private checkRev(rev: number): void {
    if (rev > this.current) throw new Fail('FUTURE_REVISION');
    if (rev > 0 && rev < this.compacted) throw new Fail('COMPACTED');
  }

  private evalRange(req: RangeRequest, vers: Ver[]): { kvs: NKv[]; more: boolean; count: number } {
    const limit = req.limit ?? 0;
    const order = req.sortOrder ?? 'NONE';
    const target = req.sortTarget ?? 'KEY';
    const filters = [req.minModRevision, req.maxModRevision, req.minCreateRevision, req.maxCreateRevision].some(
      (x) => (x ?? 0) !== 0,
    );
    const count = vers.length;
    if (req.countOnly) return { kvs: [], more: false, count };
    let kvs = vers.map(toKv);
    if (order === 'NONE' && !filters && limit > 0) kvs = kvs.slice(0, limit + 1);
    kvs = kvs.filter(
      (kv) =>
        !((req.maxModRevision ?? 0) !== 0 && kv.mod > req.maxModRevision!) &&
        !((req.minModRevision ?? 0) !== 0 && kv.mod < req.minModRevision!) &&
        !((req.maxCreateRevision ?? 0) !== 0 && kv.create > req.maxCreateRevision!) &&
        !((req.minCreateRevision ?? 0) !== 0 && kv.create < req.minCreateRevision!),
    );
    const eff = order === 'NONE' && target !== 'KEY' ? 'ASCEND' : order;
    if (eff !== 'NONE') {
      const f = (kv: NKv): number | string =>
        target === 'KEY' ? kv.key : target === 'VALUE' ? kv.value : target === 'VERSION' ? kv.version : target === 'CREATE' ? kv.create : kv.mod;
      kvs.sort((a, b) => {
        const x = f(a);
        const y = f(b);
        const c = typeof x === 'number' ? x - (y as number) : cmpStr(x, y as string);
        return eff === 'ASCEND' ? c : -c;
      });
    }
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    return { kvs, more, count };
  }

  /** Range outside a txn. */
  range(req: RangeRequest): NResult {
    return this.guard(() => {
      if (req.key.length === 0) throw new Fail('KEY_NOT_PROVIDED');
      this.checkRev(req.revision ?? 0);
      const rev = (req.revision ?? 0) > 0 ? req.revision! : this.current;
      return { ...this.evalRange(req, this.live(spanOf(req.key, req.rangeEnd), rev)), revision: this.current };
    });
  }

  /** Txn (put and delete are one-op txns for the model too). */
  txn(req: TxnRequest, rev: number, leaseExists: (l: bigint) => boolean): NResult {
    return this.guard(() => {
      this.validate(req);
      intervals(req.success ?? []);
      intervals(req.failure ?? []);
      const path = this.choose(req);
      const flat = flatten(req, path);
      for (const op of flat) {
        if (op.type !== 'put') continue;
        const p = op.request;
        if ((p.ignoreValue || p.ignoreLease) && !this.isLive(s(p.key), this.current)) throw new Fail('KEY_NOT_FOUND');
        if ((p.lease ?? 0n) !== 0n && !leaseExists(p.lease!)) throw new Fail('LEASE_NOT_FOUND');
      }
      for (const op of flat) if (op.type === 'range') this.checkRev(op.request.revision ?? 0);
      const pending = new Map<string, Ver>();
      const result = this.exec(req, path, rev, pending);
      const consumed = pending.size > 0;
      if (consumed) {
        this.history.push(...pending.values());
        this.current = rev;
      }
      return { ...setRev(result, this.current) as object, consumed };
    });
  }

  private isLive(key: string, rev: number): boolean {
    const v = this.latest(key, rev);
    return v !== undefined && !v.tomb;
  }

  private validate(req: TxnRequest): void {
    for (const c of req.compare ?? []) if (c.key.length === 0) throw new Fail('KEY_NOT_PROVIDED');
    for (const op of [...(req.success ?? []), ...(req.failure ?? [])]) {
      if (op.type === 'txn') this.validate(op.request);
      else if (op.request.key.length === 0) throw new Fail('KEY_NOT_PROVIDED');
      if (op.type === 'put') {
        if (op.request.ignoreValue && (op.request.value?.length ?? 0) > 0) throw new Fail('VALUE_PROVIDED');
        if (op.request.ignoreLease && (op.request.lease ?? 0n) !== 0n) throw new Fail('LEASE_PROVIDED');
      }
    }
  }

  private compare(c: Compare): boolean {
    const vers = this.live(spanOf(c.key, c.rangeEnd), this.current);
    if (vers.length === 0) {
      if (c.target === 'VALUE') return false;
      return cmpOne(c, { key: '', rev: 0, tomb: false, value: '', create: 0, version: 0, lease: 0n });
    }
    return vers.every((v) => cmpOne(c, v));
  }

  private choose(req: TxnRequest): Path {
    const ok = (req.compare ?? []).every((c) => this.compare(c));
    const kids: Path[] = [];
    for (const op of (ok ? req.success : req.failure) ?? []) if (op.type === 'txn') kids.push(this.choose(op.request));
    return { ok, kids };
  }

  private exec(req: TxnRequest, path: Path, rev: number, pending: Map<string, Ver>): unknown {
    const responses: unknown[] = [];
    let kid = 0;
    for (const op of (path.ok ? req.success : req.failure) ?? []) {
      if (op.type === 'range') {
        const r = op.request;
        const vers =
          (r.revision ?? 0) > 0
            ? this.live(spanOf(r.key, r.rangeEnd), r.revision!)
            : this.live(spanOf(r.key, r.rangeEnd), this.current, pending);
        responses.push({ range: this.evalRange(r, vers) });
      } else if (op.type === 'put') {
        const p = op.request;
        const key = s(p.key);
        if (pending.has(key)) throw new Fail('DUPLICATE_KEY');
        const prev = this.latest(key, this.current);
        const live = prev !== undefined && !prev.tomb ? prev : undefined;
        const v: Ver = {
          key,
          rev,
          tomb: false,
          value: p.ignoreValue ? live!.value : s(p.value),
          lease: p.ignoreLease ? live!.lease : (p.lease ?? 0n),
          create: live ? live.create : rev,
          version: live ? live.version + 1 : 1,
        };
        pending.set(key, v);
        responses.push({ put: p.prevKv && live ? { prevKv: toKv(live) } : {} });
      } else if (op.type === 'deleteRange') {
        const d = op.request;
        const vers = this.live(spanOf(d.key, d.rangeEnd), this.current, pending);
        if (vers.some((v) => v.rev === rev)) throw new Fail('DUPLICATE_KEY');
        for (const v of vers) pending.set(v.key, { key: v.key, rev, tomb: true, value: '', create: 0, version: 0, lease: 0n });
        responses.push({ deleteRange: { deleted: vers.length, prevKvs: d.prevKv ? vers.map(toKv) : [] } });
      } else {
        responses.push({ txn: this.exec(op.request, path.kids[kid++]!, rev, pending) });
      }
    }
    return { succeeded: path.ok, responses };
  }

  /** Compaction bounds (history is kept; reads below fail). */
  compact(rev: number): NResult {
    return this.guard(() => {
      if (rev <= this.compacted) throw new Fail('COMPACTED');
      if (rev > this.current) throw new Fail('FUTURE_REVISION');
      this.compacted = rev;
      return {};
    });
  }

  /** All events in [start, end] (end clamped to current) for a span. */
  changes(key: Uint8Array, rangeEnd: Uint8Array | undefined, start: number, end: number | undefined, prevKv: boolean): NResult {
    return this.guard(() => {
      const st = Math.max(start, 1);
      if (st < this.compacted) throw new Fail('COMPACTED');
      const en = Math.min(end ?? this.current, this.current);
      const span = spanOf(key, rangeEnd);
      const evs = this.history
        .filter((v) => v.rev >= st && v.rev <= en && inSpan(span, v.key))
        .sort((a, b) => a.rev - b.rev || cmpStr(a.key, b.key));
      return evs.map((v) => {
        const kv = v.tomb ? { key: v.key, create: 0, mod: v.rev, version: 0, value: '', lease: '0' } : toKv(v);
        const ev: { type: string; kv: NKv; prevKv?: NKv } = { type: v.tomb ? 'DELETE' : 'PUT', kv };
        if (prevKv) {
          const p = this.latest(v.key, v.rev - 1);
          if (p !== undefined && !p.tomb && !(p.rev < this.compacted && v.rev <= this.compacted)) ev.prevKv = toKv(p);
        }
        return ev;
      });
    });
  }

  private guard(f: () => unknown): NResult {
    try {
      return { ok: f() };
    } catch (e) {
      if (e instanceof Fail) return { error: e.code };
      throw e;
    }
  }
}

interface Path {
  ok: boolean;
  kids: Path[];
}

function cmpOne(c: Compare, v: Ver): boolean {
  let r: number;
  if (c.target === 'VALUE') r = cmpStr(v.value, s(c.value));
  else if (c.target === 'VERSION') r = v.version - c.version;
  else if (c.target === 'CREATE') r = v.create - c.createRevision;
  else if (c.target === 'MOD') r = v.rev - c.modRevision;
  else r = v.lease === c.lease ? 0 : v.lease < c.lease ? -1 : 1;
  if (c.result === 'EQUAL') return r === 0;
  if (c.result === 'NOT_EQUAL') return r !== 0;
  if (c.result === 'GREATER') return r > 0;
  return r < 0;
}

function flatten(req: TxnRequest, path: Path): RequestOp[] {
  const out: RequestOp[] = [];
  let kid = 0;
  for (const op of (path.ok ? req.success : req.failure) ?? []) {
    if (op.type === 'txn') out.push(...flatten(op.request, path.kids[kid++]!));
    else out.push(op);
  }
  return out;
}

/** etcd's checkIntervals, written out longhand ("\0" range end = unbounded). */
function intervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Span[] } {
  const dels: Span[] = [];
  for (const op of ops) if (op.type === 'deleteRange') dels.push(spanOf(op.request.key, op.request.rangeEnd));
  const hit = (k: string): boolean => dels.some((d) => inSpan(d, k));
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const t = intervals(op.request.success ?? []);
    const e = intervals(op.request.failure ?? []);
    for (const k of t.puts) {
      if (puts.has(k) || hit(k)) throw new Fail('DUPLICATE_KEY');
      puts.add(k);
    }
    for (const k of e.puts) {
      if (puts.has(k) && !t.puts.has(k)) throw new Fail('DUPLICATE_KEY');
      if (hit(k)) throw new Fail('DUPLICATE_KEY');
      puts.add(k);
    }
    dels.push(...t.dels, ...e.dels);
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    const k = s(op.request.key);
    if (puts.has(k) || hit(k)) throw new Fail('DUPLICATE_KEY');
    puts.add(k);
  }
  return { puts, dels };
}

/** Sets `revision` on a txn result tree (every inner response carries the txn's). */
function setRev(r: unknown, rev: number): unknown {
  const t = r as { succeeded: boolean; responses: Record<string, unknown>[] };
  return {
    succeeded: t.succeeded,
    revision: rev,
    responses: t.responses.map((x) => {
      const [kind, body] = Object.entries(x)[0]!;
      return kind === 'txn' ? { txn: setRev(body, rev) } : { [kind]: { ...(body as object), revision: rev } };
    }),
  };
}
