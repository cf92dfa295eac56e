/**
 * `/health` with alarms (etcd 3.4.23 etcdhttp/metrics.go): an active alarm
 * makes it 503 `{"health":"false"}` plus keyspan's `reason` (`ALARM NOSPACE`),
 * `?exclude=NOSPACE` leaves that alarm out, other methods get 405, and
 * `etcdctl endpoint health` (a plain read in 3.4) still reports healthy.
 * The pure rules are tested directly; where the real etcd is installed, a
 * space quota is filled on both servers and their answers are compared.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AlarmAction, AlarmType } from '../../src/gateway/alarm.js';
import { alarmReason, excludedAlarms, healthAnswer } from '../../src/gateway/health-check.js';
import { client, type EtcdTestClient } from './server-harness.js';
import { startNodeServer, type NodeServer } from './maintenance-harness.js';
import { etcdctl, numberByOrder, skipDiff, skipEtcdctl, startReferenceEtcd, type ReferenceEtcd } from './etcd-diff.js';

/** Bound on one HTTP request to a server under test. */
const HTTP_TIMEOUT_MS = 10_000;
/** Space quota of the differential check, equal on both servers. */
const QUOTA_BYTES = 200_000;
/** Size of each value written to fill the quota. */
const FILL_VALUE_BYTES = 30_000;
/** Most puts tried before the quota must have been reached. */
const FILL_PUTS_MAX = 40;

interface HealthReply {
  readonly status: number;
  readonly body: string;
  readonly contentType: string | null;
}

async function getHealth(endpoint: string, query = '', method = 'GET'): Promise<HealthReply> {
  const r = await fetch(`http://${endpoint}/health${query}`, { method, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  return { status: r.status, body: await r.text(), contentType: r.headers.get('content-type') };
}

describe('/health rules', () => {
  it('reads every exclude parameter, case kept', () => {
    assert.deepEqual([...excludedAlarms('/health?exclude=NOSPACE&exclude=CORRUPT')], ['NOSPACE', 'CORRUPT']);
    assert.deepEqual([...excludedAlarms('/health?exclude=nospace')], ['nospace']);
    assert.equal(excludedAlarms('/health').size, 0);
  });

  it('names the first alarm that is not excluded', () => {
    const both = [
      { memberID: 1n, alarm: AlarmType.NOSPACE },
      { memberID: 1n, alarm: AlarmType.CORRUPT },
    ];
    assert.equal(alarmReason(both, new Set()), 'ALARM NOSPACE');
    assert.equal(alarmReason(both, new Set(['NOSPACE'])), 'ALARM CORRUPT');
    assert.equal(alarmReason(both, new Set(['NOSPACE', 'CORRUPT'])), undefined);
    assert.equal(alarmReason(both, new Set(['nospace'])), 'ALARM NOSPACE');
    assert.equal(alarmReason([], new Set()), undefined);
  });

  it('answers as Go\'s http.Error when unhealthy', () => {
    assert.deepEqual(healthAnswer(undefined), { status: 200, body: '{"health":"true"}', headers: { 'content-type': 'text/plain; charset=utf-8' } });
    const bad = healthAnswer('ALARM NOSPACE');
    assert.equal(bad.status, 503);
    assert.equal(bad.body, '{"health":"false","reason":"ALARM NOSPACE"}\n');
    assert.equal(bad.headers['x-content-type-options'], 'nosniff');
  });
});

describe('/health with alarms on a node', () => {
  let srv: NodeServer;
  let mt: EtcdTestClient;

  before(async () => {
    srv = await startNodeServer();
    mt = client('etcdserverpb.Maintenance', srv.address);
  });
  after(async () => {
    mt.close();
    await srv.close();
  });

  it('is 503 with the alarm as reason while one is active, unless excluded; 200 once disarmed', async () => {
    assert.deepEqual(await getHealth(srv.address), { status: 200, body: '{"health":"true"}', contentType: 'text/plain; charset=utf-8' });
    await mt.call('Alarm', { action: AlarmAction.ACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
    assert.deepEqual(await getHealth(srv.address), { status: 503, body: '{"health":"false","reason":"ALARM NOSPACE"}\n', contentType: 'text/plain; charset=utf-8' });
    assert.equal((await getHealth(srv.address, '?exclude=NOSPACE')).status, 200);
    assert.equal((await getHealth(srv.address, '?exclude=CORRUPT')).status, 503);

    await mt.call('Alarm', { action: AlarmAction.ACTIVATE, memberID: 1n, alarm: AlarmType.CORRUPT });
    // With NOSPACE excluded, CORRUPT answers (the read is not reached).
    assert.equal((await getHealth(srv.address, '?exclude=NOSPACE')).body, '{"health":"false","reason":"ALARM CORRUPT"}\n');
    await mt.call('Alarm', { action: AlarmAction.DEACTIVATE, memberID: 1n, alarm: AlarmType.CORRUPT });
    await mt.call('Alarm', { action: AlarmAction.DEACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
    assert.equal((await getHealth(srv.address)).status, 200);
  });

  it('answers other methods with 405 and Allow: GET', async () => {
    const r = await fetch(`http://${srv.address}/health`, { method: 'POST', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.equal(await r.text(), 'Method Not Allowed\n');
  });

  it('etcdctl endpoint health stays healthy with NOSPACE active (3.4 only reads a key)', { skip: skipEtcdctl }, async () => {
    await mt.call('Alarm', { action: AlarmAction.ACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
    try {
      const r = await etcdctl(srv.address, ['endpoint', 'health']);
      assert.equal(r.code, 0, r.errors);
      assert.match(r.errors, new RegExp(`^${srv.address} is healthy: successfully committed proposal: took = `));
    } finally {
      await mt.call('Alarm', { action: AlarmAction.DEACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
    }
  });
});

/** What a client sees of a server whose space quota is full: put error, /health, endpoint health, alarm list. */
async function alarmedView(endpoint: string): Promise<Record<string, unknown>> {
  const value = 'v'.repeat(FILL_VALUE_BYTES);
  let refused: string | undefined;
  for (let i = 0; i < FILL_PUTS_MAX && refused === undefined; i++) {
    const r = await etcdctl(endpoint, ['put', `fill${i}`, value]);
    if (r.code !== 0) refused = r.errors;
  }
  const health = await getHealth(endpoint);
  const excluded = await getHealth(endpoint, '?exclude=NOSPACE');
  const eh = await etcdctl(endpoint, ['endpoint', 'health']);
  const ehJson = await etcdctl(endpoint, ['endpoint', 'health', '-w', 'json']);
  const alarms = await etcdctl(endpoint, ['alarm', 'list']);
  const norm = (t: string): string => t.split(endpoint).join('<EP>').replace(/took = \S+/g, 'took = <T>').replace(/"took":"[^"]*"/g, '"took":"<T>"');
  return {
    refused,
    health: { status: health.status, contentType: health.contentType, body: health.body.replace(/,"reason":"[^"]*"/, '') },
    excluded,
    endpointHealth: { code: eh.code, stdout: eh.stdout, verdict: norm(eh.errors) },
    endpointHealthJson: norm(ehJson.stdout),
    alarms: numberByOrder(alarms.stdout, /memberID:\d+/g, 'memberID:M'),
  };
}

describe('/health with a full space quota against the real etcd', { skip: skipDiff }, () => {
  let ref: ReferenceEtcd;
  let srv: NodeServer;

  before(async () => {
    ref = await startReferenceEtcd({ flags: [`--quota-backend-bytes=${QUOTA_BYTES}`] });
    srv = await startNodeServer({ quotaBackendBytes: QUOTA_BYTES });
  });
  after(async () => {
    await srv?.close();
    await ref?.close();
  });

  it('answers like etcd 3.4.23 once NOSPACE is raised (keyspan adds the reason field)', async () => {
    const expected = await alarmedView(ref.endpoint);
    const got = await alarmedView(srv.address);
    assert.equal(expected['refused'], 'Error: etcdserver: mvcc: database space exceeded');
    assert.deepEqual((expected['health'] as HealthReply).status, 503);
    assert.deepEqual(got, expected);
    assert.equal((await getHealth(srv.address)).body, '{"health":"false","reason":"ALARM NOSPACE"}\n');
  });
});
