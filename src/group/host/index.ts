/**
 * The multi-raft host: one per node, driving every raft group of the node
 * from one loop over one log store and one transport. See docs/host.md.
 */
export {
  MultiRaftHost,
  HOST_RAFT_DEFAULTS,
  HOST_LIMITS_DEFAULTS,
  GROUP_INIT_INDEX,
  type HostOptions,
  type HostRaftConfig,
  type HostLimits,
  type HostStats,
  type HostGroupOptions,
  type StateMachineSupplier,
} from './host.js';
export type { GroupStateMachine, AppliedEntry, StateMachineSnapshot, GroupHandle } from './state-machine.js';
export { HostError, type HostErrorCode, TooManyRequestsError, TOO_MANY_REQUESTS_MESSAGE } from './errors.js';
export { type Ticker, IntervalTicker, ManualTicker, TICK_INTERVAL_MS_DEFAULT, TICK_INTERVAL_MS_MIN } from './ticker.js';
export { ProposalWindow, type ProposalLimits, PROPOSALS_PENDING_MAX_DEFAULT, PROPOSAL_BYTES_PENDING_MAX_DEFAULT } from './backpressure.js';
export { QUIESCE_CTX, isQuiesceContext, isQuiesceMessage, canQuiesce } from './quiesce.js';
export { HostMetrics } from './metrics.js';
export { LeaseClock, LEASE_TICKS_BEHIND_MAX, hostLeaseDriftMarginTicks } from './lease-clock.js';
export { NodeLiveness, LIVENESS_GROUP_ID } from './liveness.js';
export {
  encodeCoalesced,
  decodeCoalesced,
  isCoalesced,
  isCoalescable,
  COALESCED_HEARTBEATS_PER_MESSAGE_MAX,
  COALESCED_CONTEXT_BYTES_MAX,
  type HeartbeatPart,
} from './coalesce.js';
