/**
 * The static cluster of embedded members `m1`..`mN` on loopback peer ports,
 * as the in-process cluster tests start it (each member an Embedded with
 * `cluster: loopbackCluster(ports, name)`).
 */
import assert from 'node:assert/strict';
import type { EmbeddedCluster } from '../../src/gateway/embedded.js';
import { parseInitialCluster } from '../../src/node/index.js';

/** Members `m1`..`mN` with peer URLs `http://127.0.0.1:<port>`, as member `localName` sees them. */
export function loopbackCluster(ports: readonly number[], localName: string, token = 'test'): EmbeddedCluster {
  const ic = parseInitialCluster(ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(','));
  const self = ic.members.find((m) => m.name === localName);
  assert.ok(self, `${localName} is not one of m1..m${ports.length}`);
  return { members: ic.members, localNodeId: self.nodeId, record: { initialCluster: ic.canonical, token } };
}
