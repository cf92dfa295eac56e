/**
 * Lease metrics under etcd's names (lease/metrics.go): grants, revokes
 * (client and expiry) and renewals counted on every replica as etcd counts
 * them on every member, and the granted TTL histogram.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** etcd's etcd_debugging_lease_ttl_total buckets: 1 s doubling up to about 13.6 days. */
const TTL_BUCKETS_SECONDS = Array.from({ length: 21 }, (_, i) => 2 ** i);

/** The lease metrics of one registry (shared by the replicas of a node). */
export class LeaseMetrics {
  private constructor(
    readonly granted: Counter,
    readonly revoked: Counter,
    readonly renewed: Counter,
    readonly ttl: Histogram,
  ) {}

  /** The lease metrics registered on `registry` (created on first use). */
  static of(registry: Registry): LeaseMetrics {
    const cached = instances.get(registry);
    if (cached !== undefined) return cached;
    const m = new LeaseMetrics(
      new Counter({ name: 'etcd_debugging_lease_granted_total', help: 'The total number of granted leases.', registers: [registry] }),
      new Counter({ name: 'etcd_debugging_lease_revoked_total', help: 'The total number of revoked leases.', registers: [registry] }),
      new Counter({ name: 'etcd_debugging_lease_renewed_total', help: 'The number of renewed leases seen by the leader.', registers: [registry] }),
      new Histogram({
        name: 'etcd_debugging_lease_ttl_total',
        help: 'Bucketed histogram of lease TTLs.',
        buckets: TTL_BUCKETS_SECONDS,
        registers: [registry],
      }),
    );
    instances.set(registry, m);
    return m;
  }
}

const instances = new WeakMap<Registry, LeaseMetrics>();
