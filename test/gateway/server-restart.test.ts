/**
 * A restarted node (LevelDB) must answer clients that arrive before its
 * range has elected a leader again: the gateway waits out the election
 * (routing retries) instead of failing, and nothing crashes. This once
 * crashed the process: a linearizable read refused for lack of a leader
 * left an unhandled rejection in the replica (fixed in replica.ts readIndex).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b, client, keysOf, startTestServer } from './server-harness.js';

describe('restart', () => {
  it('serves reads and writes sent right after a restart, during the election', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-gw-restart-'));
    try {
      const first = await startTestServer({ dataDir: dir });
      const kv1 = client('etcdserverpb.KV', first.server.addresses[0] ?? '');
      await kv1.call('Put', { key: b('kept'), value: b('1') });
      kv1.close();
      await first.close();

      const second = await startTestServer({ dataDir: dir });
      const kv2 = client('etcdserverpb.KV', second.server.addresses[0] ?? '');
      try {
        // Sent at once: the range has no leader yet (a restart does not campaign at once).
        const [read, serial, write] = await Promise.all([
          kv2.call('Range', { key: b('kept') }),
          kv2.call('Range', { key: b('kept'), serializable: true }),
          kv2.call('Put', { key: b('new'), value: b('2') }),
        ]);
        assert.deepEqual(keysOf(read), ['kept']);
        assert.deepEqual(keysOf(serial), ['kept']);
        assert.equal((write['header'] as { revision: number }).revision, 3);
      } finally {
        kv2.close();
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
