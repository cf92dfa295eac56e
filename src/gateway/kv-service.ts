/**
 * etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact. Each handler is
 * etcd's sequence — validate (validate.ts) → route and call the range's
 * replica → fill the ResponseHeader → map errors (context.ts `unary`).
 *
 * Header revision (DESIGN property 1): a write answers with the revision it
 * committed at (the current one if it wrote nothing); a read with the
 * revision of the state it read, which with the range's own counter is the
 * range's current revision — as etcd, even for a read at an older revision.
 */
import { randomBytes } from 'node:crypto';
import type { RequestId } from '../shard/replica/index.js';
import { type GatewayContext, type CallInfo, responseHeader, type ServiceHandlers } from './context.js';
import {
  deleteRangeResultToWire,
  deleteRangeToMvcc,
  putResultToWire,
  putToMvcc,
  rangeResultToWire,
  rangeToMvcc,
  txnResultToWire,
  txnSpan,
  txnToMvcc,
} from './convert.js';
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from './messages.js';
import { etcdMessageLength, type EtcdMessage } from './proto.js';
import { routed, routeOptionsOf } from './router.js';
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkRequestSize, checkTxnRequest } from './validate.js';

/** Bytes of the gateway's proposer id in request ids (random per gateway incarnation). */
const PROPOSER_ID_BYTES = 8;

/**
 * Request ids of the writes this gateway sends: one per client request, the
 * same on every retry, so a retried write that did commit is answered from
 * the replica's dedupe table instead of applying twice.
 */
export class RequestIds {
  private readonly proposer = randomBytes(PROPOSER_ID_BYTES);
  private seq = 0;

  /** The request id of `call`'s write. */
  next(call: CallInfo): RequestId {
    // A forwarded (or forwardable) call carries its id from the node the
    // client called, so attempts on every node share it.
    return call.forward?.requestId ?? this.fresh();
  }

  /**
   * An id of this gateway's own, for a new proposal a handler makes after
   * its call's proposal was refused for good (its refusal is what the
   * dedupe table answers the call's id with from then on).
   */
  fresh(): RequestId {
    return { proposer: this.proposer, seq: ++this.seq };
  }
}

/** Start of the whole keyspace and the "every key from here" end, for range-wide requests. */
const WHOLE_KEYSPACE = { key: Buffer.alloc(0), rangeEnd: Buffer.of(0) } as const;

/** The KV service's grpc-js handlers. */
export function kvService(ctx: GatewayContext): ServiceHandlers {
  const ids = new RequestIds();

  const range = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as RangeRequest;
    checkRangeRequest(req);
    ctx.auth.checkRange(call.metadata, req);
    const reply = await routed(
      ctx.router,
      req.key,
      req.range_end,
      (t) =>
        t.replica.range(rangeToMvcc(req), {
          epoch: t.epoch,
          consistency: req.serializable ? 'serializable' : 'linearizable',
          // Read only by a read that waits for a read index (a call's signal is made on first use).
          get signal() {
            return call.signal;
          },
        }),
      routeOptionsOf(call),
    );
    return rangeResultToWire(reply.result, responseHeader(ctx, reply.header.revision, reply.header.raftTerm)) as EtcdMessage;
  };

  const put = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as PutRequest;
    checkPutRequest(req);
    checkRequestSize(etcdMessageLength('etcdserverpb.PutRequest', m), ctx.maxRequestBytes);
    const stamp = ctx.auth.checkPut(call.metadata, req);
    const requestId = ids.next(call);
    const reply = await routed(
      ctx.router,
      req.key,
      undefined,
      (t) => t.replica.put(putToMvcc(req), { epoch: t.epoch, requestId, ...stamp }),
      routeOptionsOf(call),
    );
    return putResultToWire(reply.result, responseHeader(ctx, reply.header.revision, reply.header.raftTerm)) as EtcdMessage;
  };

  const deleteRange = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as DeleteRangeRequest;
    checkDeleteRangeRequest(req);
    checkRequestSize(etcdMessageLength('etcdserverpb.DeleteRangeRequest', m), ctx.maxRequestBytes);
    const stamp = ctx.auth.checkDeleteRange(call.metadata, req);
    const requestId = ids.next(call);
    const reply = await routed(
      ctx.router,
      req.key,
      req.range_end,
      (t) => t.replica.deleteRange(deleteRangeToMvcc(req), { epoch: t.epoch, requestId, ...stamp }),
      routeOptionsOf(call),
    );
    return deleteRangeResultToWire(reply.result, responseHeader(ctx, reply.header.revision, reply.header.raftTerm)) as EtcdMessage;
  };

  const txn = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as TxnRequest;
    checkTxnRequest(req, { maxTxnOps: ctx.maxTxnOps });
    checkRequestSize(etcdMessageLength('etcdserverpb.TxnRequest', m), ctx.maxRequestBytes);
    const stamp = ctx.auth.checkTxn(call.metadata, req);
    const span = txnSpan(req);
    const requestId = ids.next(call);
    const reply = await routed(
      ctx.router,
      span.key,
      span.rangeEnd,
      (t) => t.replica.txn(txnToMvcc(req), { epoch: t.epoch, requestId, ...stamp }),
      routeOptionsOf(call),
    );
    return txnResultToWire(reply.result, responseHeader(ctx, reply.header.revision, reply.header.raftTerm)) as EtcdMessage;
  };

  const compact = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as CompactionRequest;
    ctx.auth.checkToken(call.metadata); // etcd needs no permission to compact, only a valid token
    const requestId = ids.next(call);
    // Compaction is keyspace-wide; with one range that is the range's (every
    // range would have to compact at the same revision once there are several).
    const reply = await routed(
      ctx.router,
      WHOLE_KEYSPACE.key,
      WHOLE_KEYSPACE.rangeEnd,
      (t) => t.replica.compact({ revision: req.revision, physical: req.physical }, { epoch: t.epoch, requestId }),
      routeOptionsOf(call),
    );
    return { header: responseHeader(ctx, reply.header.revision, reply.header.raftTerm) };
  };

  return {
    Range: range,
    Put: put,
    DeleteRange: deleteRange,
    Txn: txn,
    Compact: compact,
  };
}
