/**
 * etcd's `--initial-cluster` (`name=http://host:port,...`) turned into the
 * fixed member list of a static cluster. Node ids are derived from it, never
 * chosen per process: the members sorted by name get ids 1, 2, 3, ..., so
 * every member given the same list (in any order) computes the same ids, and
 * range 1 is bootstrapped with the same voters everywhere.
 *
 * Pure: no I/O.
 */

/** Most members an initial cluster may list. */
export const INITIAL_CLUSTER_MEMBERS_MAX = 64;
/** Longest member name (etcd sets no limit; names end up in logs and member lists). */
export const MEMBER_NAME_BYTES_MAX = 256;

/** One member of the initial cluster. */
export interface ClusterMember {
  /** Node id (also the etcd member id, member = node): position in name order, from 1. */
  readonly nodeId: number;
  readonly name: string;
  /** Peer URLs as given (normalized: no trailing slash). */
  readonly peerUrls: readonly string[];
}

/** The parsed initial cluster. */
export interface InitialCluster {
  /** Members in node id order. */
  readonly members: readonly ClusterMember[];
  /**
   * Canonical text of the list (members sorted by name, each member's URLs
   * sorted): what a data directory records, so a restart with a different
   * list is recognised whatever order it is written in.
   */
  readonly canonical: string;
}

/** A `--initial-cluster` value that cannot be used. */
export class InitialClusterError extends Error {
  override readonly name = 'InitialClusterError';
  readonly code = 'INITIAL_CLUSTER_INVALID';
}

function normalizeUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new InitialClusterError(`--initial-cluster: '${text}' is not a URL (expected http://host:port)`);
  }
  if (u.protocol !== 'http:') throw new InitialClusterError(`--initial-cluster: '${text}': scheme must be http`);
  if (u.port === '') throw new InitialClusterError(`--initial-cluster: '${text}': a port is required`);
  return `${u.protocol}//${u.host}`;
}

/**
 * Parses `name=url,name=url,...`. As in etcd a name may appear several
 * times, once per peer URL. Throws InitialClusterError on anything else.
 */
export function parseInitialCluster(text: string): InitialCluster {
  const byName = new Map<string, string[]>();
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new InitialClusterError('--initial-cluster: no member given');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InitialClusterError(`--initial-cluster: '${part}' is not name=url`);
    const name = part.slice(0, eq);
    if (Buffer.byteLength(name) > MEMBER_NAME_BYTES_MAX) {
      throw new InitialClusterError(`--initial-cluster: member name longer than ${MEMBER_NAME_BYTES_MAX} bytes`);
    }
    const url = normalizeUrl(part.slice(eq + 1));
    const urls = byName.get(name) ?? [];
    if (!urls.includes(url)) urls.push(url);
    byName.set(name, urls);
  }
  if (byName.size > INITIAL_CLUSTER_MEMBERS_MAX) {
    throw new InitialClusterError(`--initial-cluster: more than ${INITIAL_CLUSTER_MEMBERS_MAX} members`);
  }
  const seenUrls = new Map<string, string>();
  for (const [name, urls] of byName) {
    for (const url of urls) {
      const other = seenUrls.get(url);
      if (other !== undefined) throw new InitialClusterError(`--initial-cluster: ${url} is listed for both ${other} and ${name}`);
      seenUrls.set(url, name);
    }
  }
  const names = [...byName.keys()].sort();
  const members = names.map((name, i) => ({ nodeId: i + 1, name, peerUrls: [...(byName.get(name) ?? [])].sort() }));
  const canonical = members.map((m) => m.peerUrls.map((u) => `${m.name}=${u}`).join(',')).join(',');
  return { members, canonical };
}

/**
 * The member this process is: the one named `name`. As etcd, its advertised
 * peer URLs must be exactly the ones the list gives it (otherwise the other
 * members would dial somewhere else).
 */
export function selfMember(cluster: InitialCluster, name: string, advertisePeerUrls: readonly string[]): ClusterMember {
  const self = cluster.members.find((m) => m.name === name);
  if (self === undefined) {
    throw new InitialClusterError(`--initial-cluster has no member named '${name}' (--name); it lists ${cluster.members.map((m) => m.name).join(', ')}`);
  }
  const advertised = [...new Set(advertisePeerUrls.map(normalizeUrl))].sort();
  if (advertised.join(',') !== self.peerUrls.join(',')) {
    throw new InitialClusterError(
      `--initial-advertise-peer-urls (${advertised.join(',')}) do not match --initial-cluster for '${name}' (${self.peerUrls.join(',')})`,
    );
  }
  return self;
}
