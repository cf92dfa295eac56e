/**
 * etcd's alarms (Maintenance.Alarm): NOSPACE, raised when a write would take
 * the store past its space quota, and CORRUPT. While one is active the
 * server runs restricted (etcd's capped / corrupt appliers):
 *
 * - NOSPACE: Put, a Txn with a put in either branch, and LeaseGrant fail
 *   with `etcdserver: mvcc: database space exceeded`; reads, deletes,
 *   read-only txns, compaction and lease revokes go on.
 * - CORRUPT: every KV request and lease grant/revoke fails with
 *   `etcdserver: corrupt cluster`.
 *
 * etcd replicates alarms through raft, so every member applies them; here
 * the alarm state lives per node (docs/compatibility.md). Pure state, no I/O.
 */

/** etcdserverpb.AlarmType. */
export const AlarmType = { NONE: 0, NOSPACE: 1, CORRUPT: 2 } as const;
/** An AlarmType value. */
export type AlarmType = (typeof AlarmType)[keyof typeof AlarmType];

/** etcdserverpb.AlarmRequest.AlarmAction. */
export const AlarmAction = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;

/** etcdserverpb.AlarmMember as the gateway's messages carry it. */
export interface AlarmMember {
  readonly memberID: bigint;
  readonly alarm: number;
}

/** Most alarms held at once (one per member and type in any real cluster). */
export const ALARMS_MAX = 1024;

/** The alarms active on this node. */
export class AlarmStore {
  private readonly active = new Map<string, AlarmMember>();

  /**
   * Raises `alarm` for `memberID`; returns the alarm (also when it was
   * already active, as etcd's store does). NONE is not an alarm: undefined.
   */
  activate(memberID: bigint, alarm: number): AlarmMember | undefined {
    if (alarm === AlarmType.NONE) return undefined;
    const key = alarmKey(memberID, alarm);
    const existing = this.active.get(key);
    if (existing !== undefined) return existing;
    if (this.active.size >= ALARMS_MAX) throw new RangeError(`more than ${ALARMS_MAX} alarms`);
    const m: AlarmMember = { memberID, alarm };
    this.active.set(key, m);
    return m;
  }

  /** Clears `alarm` of `memberID`; returns it if it was active. */
  deactivate(memberID: bigint, alarm: number): AlarmMember | undefined {
    const key = alarmKey(memberID, alarm);
    const m = this.active.get(key);
    if (m !== undefined) this.active.delete(key);
    return m;
  }

  /** Active alarms of type `alarm` (NONE: all), ordered by type, then member id. */
  get(alarm: number = AlarmType.NONE): AlarmMember[] {
    return [...this.active.values()]
      .filter((m) => alarm === AlarmType.NONE || m.alarm === alarm)
      .sort((a, b) => a.alarm - b.alarm || (a.memberID < b.memberID ? -1 : a.memberID > b.memberID ? 1 : 0));
  }

  /** Whether an alarm of type `alarm` is active for any member. */
  has(alarm: AlarmType): boolean {
    for (const m of this.active.values()) if (m.alarm === alarm) return true;
    return false;
  }
}

function alarmKey(memberID: bigint, alarm: number): string {
  return `${alarm}:${memberID}`;
}

/** The name of an alarm type as etcd's proto enum spells it. */
export function alarmTypeName(alarm: number): string {
  switch (alarm) {
    case AlarmType.NONE:
      return 'NONE';
    case AlarmType.NOSPACE:
      return 'NOSPACE';
    case AlarmType.CORRUPT:
      return 'CORRUPT';
    default:
      return String(alarm);
  }
}

/**
 * An alarm as etcd lists it in StatusResponse.errors: the proto's text form,
 * `memberID:<decimal> alarm:NOSPACE ` (trailing space included; etcd 3.4.23
 * answers exactly this). A zero member id is left out, as the text format
 * leaves out default fields.
 */
export function alarmStatusText(m: AlarmMember): string {
  const member = m.memberID === 0n ? '' : `memberID:${m.memberID} `;
  const alarm = m.alarm === AlarmType.NONE ? '' : `alarm:${alarmTypeName(m.alarm)} `;
  return `${member}${alarm}`;
}
