/** The workloads by name. */
import type { WorkloadName } from '../flags.js';
import type { Workload } from './common.js';
import { leaseKeepaliveWorkload } from './lease-keepalive.js';
import { listWorkload } from './list.js';
import { mixedWorkload } from './mixed.js';
import { putWorkload } from './put.js';
import { rangeWorkload } from './range.js';
import { txnPutWorkload } from './txn-put.js';
import { watchLatencyWorkload } from './watch-latency.js';

/** The implementation of a workload. */
export function workloadOf(name: WorkloadName): Workload {
  switch (name) {
    case 'put':
      return putWorkload;
    case 'range':
      return rangeWorkload;
    case 'txn-put':
      return txnPutWorkload;
    case 'watch-latency':
      return watchLatencyWorkload;
    case 'lease-keepalive':
      return leaseKeepaliveWorkload;
    case 'mixed':
      return mixedWorkload;
    case 'list':
      return listWorkload;
  }
}

export * from './common.js';
