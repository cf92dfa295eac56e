/**
 * The members of a static cluster for MemberList: names and peer URLs come
 * from --initial-cluster (the same on every member); client URLs are what
 * each member advertises, asked of it over the peer port (the Forward
 * service's MemberInfo) and kept once known. A member that has never been
 * reached is listed with no client URLs, as etcd lists a member that has
 * not published its attributes yet.
 */
import type { MemberDirectory } from './cluster-service.js';
import type { MemberInfo } from './context.js';
import type { Forwarding } from './forward.js';

/** A member as --initial-cluster names it. */
export interface StaticMember {
  readonly nodeId: number;
  readonly name: string;
  readonly peerUrls: readonly string[];
}

/** Options of {@link StaticMembers}. */
export interface StaticMembersOptions {
  readonly members: readonly StaticMember[];
  readonly localNodeId: number;
  /** This member (its client URLs are known only once the client server listens). */
  readonly self: () => MemberInfo;
  readonly memberIdOfNode: (nodeId: number) => bigint;
  readonly forwarding: Forwarding;
}

/** {@link MemberDirectory} of a static cluster. */
export class StaticMembers implements MemberDirectory {
  private readonly clientUrls = new Map<number, readonly string[]>();

  constructor(private readonly options: StaticMembersOptions) {}

  async list(signal: AbortSignal): Promise<readonly MemberInfo[]> {
    const unknown = this.options.members.filter((m) => m.nodeId !== this.options.localNodeId && !this.clientUrls.has(m.nodeId));
    if (unknown.length > 0 && !signal.aborted) {
      await Promise.all(
        unknown.map(async (m) => {
          try {
            const info = await this.options.forwarding.memberInfo(m.nodeId);
            if (info.node_id === m.nodeId) this.clientUrls.set(m.nodeId, [...info.client_urls]);
          } catch {
            // Not reachable now: listed without client URLs, asked again next time.
          }
        }),
      );
    }
    return this.options.members.map((m) => {
      if (m.nodeId === this.options.localNodeId) return this.options.self();
      return {
        id: this.options.memberIdOfNode(m.nodeId),
        name: m.name,
        peerURLs: m.peerUrls,
        clientURLs: this.clientUrls.get(m.nodeId) ?? [],
      };
    });
  }
}
