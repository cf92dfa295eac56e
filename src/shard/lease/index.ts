/** Public entry of leases: the pure lessor, the persisted lease table, limits and errors. */
export { Lessor, type LessorOptions, type LeaseTtl } from './lessor.js';
export { LeaseTable, encodeLeaseRecord, decodeLeaseRecord, type LeaseKeyLayout, type LeaseRecord } from './table.js';
export {
  LEASE_TTL_SECONDS_MAX,
  LEASE_REVOKES_PER_SECOND_MAX,
  LEASE_REVOKE_RETRY_MS,
  LEASE_EXPIRY_CHECK_MS,
  LEASE_ID_ATTEMPTS_MAX,
  minLeaseTtlSeconds,
  effectiveTtlSeconds,
} from './limits.js';
export { LeaseError, LeaseExistsError, LeaseTtlTooLargeError } from './errors.js';
export { chooseLeaseId } from './lease-id.js';
export { LeaseMetrics } from './metrics.js';
