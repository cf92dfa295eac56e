/**
 * A transport that hands every call to another one: the base for wrappers
 * that change only some of its behaviour (fault injection, tests that drop
 * chosen message types), so each overrides what it changes and nothing else.
 */
import type { Message, NodeId } from '../raft/types.js';
import type { PeerStatus, TransportStats } from './stats.js';
import type { Transport } from './transport.js';
import type { SendRoom } from './peer.js';

/** Every `Transport` call forwarded to `inner`; subclasses override what they change. */
export class DelegatingTransport implements Transport {
  constructor(protected readonly inner: Transport) {}

  get nodeId(): NodeId {
    return this.inner.nodeId;
  }

  get stats(): TransportStats {
    return this.inner.stats;
  }

  get port(): number {
    return this.inner.port;
  }

  start(): Promise<number> {
    return this.inner.start();
  }

  setPeer(nodeId: NodeId, address: string): void {
    this.inner.setPeer(nodeId, address);
  }

  removePeer(nodeId: NodeId): void {
    this.inner.removePeer(nodeId);
  }

  send(toNode: NodeId, groupId: number, msg: Message): void {
    this.inner.send(toNode, groupId, msg);
  }

  flush(): void {
    this.inner.flush();
  }

  bulkRoom(nodeId: NodeId): SendRoom | undefined {
    return this.inner.bulkRoom(nodeId);
  }

  peerStatus(nodeId: NodeId): PeerStatus | undefined {
    return this.inner.peerStatus(nodeId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
