/**
 * The rules of etcd's `/health` (etcd 3.4.23 etcdhttp/metrics.go) as pure
 * functions: which alarms a request excludes (`?exclude=NOSPACE`, repeatable),
 * the first active alarm that is not excluded, and the reason texts. The
 * checks run in etcd's order — alarms, then the leader, then a linearizable
 * read — and the first failing one answers.
 *
 * etcd 3.4 answers an unhealthy check with `{"health":"false"}`; keyspan adds
 * etcd 3.5's `reason` field (`ALARM NOSPACE`, `RAFT NO LEADER`,
 * `QGET ERROR:<error>`), which JSON readers of 3.4's body ignore.
 */
import { AlarmType, alarmTypeName, type AlarmMember } from './alarm.js';

/** Most `exclude` parameters looked at (there are two alarm types). */
export const HEALTH_EXCLUDES_MAX = 16;

/** The alarm names a `/health` URL's query excludes (etcd matches them exactly, case included). */
export function excludedAlarms(url: string): ReadonlySet<string> {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const names = new URLSearchParams(query).getAll('exclude').slice(0, HEALTH_EXCLUDES_MAX);
  return new Set(names);
}

/** `/health`'s reason for the first active alarm not excluded; undefined if there is none. */
export function alarmReason(active: readonly AlarmMember[], excluded: ReadonlySet<string>): string | undefined {
  const failing = active.find((a) => !excluded.has(alarmTypeName(a.alarm)));
  if (failing === undefined) return undefined;
  switch (failing.alarm) {
    case AlarmType.NOSPACE:
      return 'ALARM NOSPACE';
    case AlarmType.CORRUPT:
      return 'ALARM CORRUPT';
    default:
      return 'ALARM UNKNOWN';
  }
}

/** `/health`'s reason when a local range knows no leader. */
export const NO_LEADER_REASON = 'RAFT NO LEADER';

/** `/health`'s reason when the linearizable read fails with `message`. */
export function readFailureReason(message: string): string {
  return `QGET ERROR:${message}`;
}

/**
 * etcd's /health answer: 200 with `{"health":"true"}`, or 503 written by
 * Go's http.Error (the JSON plus a newline, `nosniff`). Both are sent as
 * text/plain, as etcd's content sniffing labels them.
 */
export function healthAnswer(reason: string | undefined): { status: number; body: string; headers: Record<string, string> } {
  const plain = { 'content-type': 'text/plain; charset=utf-8' };
  if (reason === undefined) return { status: 200, body: JSON.stringify({ health: 'true' }), headers: plain };
  return {
    status: 503,
    body: `${JSON.stringify({ health: 'false', reason })}\n`,
    headers: { ...plain, 'x-content-type-options': 'nosniff' },
  };
}
