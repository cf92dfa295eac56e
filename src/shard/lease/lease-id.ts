/**
 * Choosing the id of a lease granted with ID 0: a random positive int64 not
 * in use (etcd draws from its request id generator, masked to 63 bits).
 */
import { LEASE_ID_ATTEMPTS_MAX } from './limits.js';

/**
 * A random positive int64 for which `inUse` is false. `random63` returns a
 * uniformly random 63-bit bigint (injected for tests); 0 is never returned
 * (it means "no lease").
 */
export function chooseLeaseId(inUse: (id: bigint) => boolean, random63: () => bigint): bigint {
  for (let i = 0; i < LEASE_ID_ATTEMPTS_MAX; i++) {
    const id = BigInt.asUintN(63, random63());
    if (id !== 0n && !inUse(id)) return id;
  }
  throw new Error(`no free lease id after ${LEASE_ID_ATTEMPTS_MAX} attempts`);
}
