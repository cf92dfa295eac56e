/**
 * Leases survive a restart of the embedded server (LevelDB): the records
 * and attachments are read back from the engine, and the new leader's
 * lessor gives every lease a full TTL again, so a lease does not expire
 * because the process was down.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b, client, keysOf, startTestServer } from './server-harness.js';

describe('leases across a restart', () => {
  it('reloads leases and attachments; TimeToLive, KeepAlive and Revoke work on them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-lease-restart-'));
    try {
      const first = await startTestServer({ dataDir: dir });
      const address1 = first.server.addresses[0] ?? '';
      const lease1 = client('etcdserverpb.Lease', address1);
      const kv1 = client('etcdserverpb.KV', address1);
      await lease1.call('LeaseGrant', { TTL: 120, ID: 31n });
      await kv1.call('Put', { key: b('r/a'), value: b('1'), lease: 31n });
      await kv1.call('Put', { key: b('r/b'), value: b('2'), lease: 31n });
      lease1.close();
      kv1.close();
      await first.close();

      const second = await startTestServer({ dataDir: dir });
      const address2 = second.server.addresses[0] ?? '';
      const lease2 = client('etcdserverpb.Lease', address2);
      const kv2 = client('etcdserverpb.KV', address2);
      try {
        const list = await lease2.call('LeaseLeases', {});
        assert.deepEqual((list['leases'] as Array<{ ID: bigint }>).map((l) => l.ID), [31n]);
        const ttl = await lease2.call('LeaseTimeToLive', { ID: 31n, keys: true });
        assert.equal(ttl['grantedTTL'], 120);
        // Promotion restarts the deadline at TTL + the election timeout.
        assert.ok((ttl['TTL'] as number) >= 118 && (ttl['TTL'] as number) <= 120, String(ttl['TTL']));
        assert.deepEqual((ttl['keys'] as Buffer[]).map(String), ['r/a', 'r/b']);
        await assert.rejects(lease2.call('LeaseGrant', { TTL: 10, ID: 31n }), /lease already exists/);
        await lease2.call('LeaseRevoke', { ID: 31n });
        assert.deepEqual(keysOf(await kv2.call('Range', { key: b('r/'), range_end: b('r0') })), []);
      } finally {
        lease2.close();
        kv2.close();
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
