/**
 * The rule by which a member concludes it was removed (member-removal.ts):
 * its own table no longer lists it, or another member's newer table (higher
 * conf version) does not. Stale, unknown or missing answers prove nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isRemoved, standingIn } from '../../src/gateway/member-removal.js';
import type { RangeDescriptor } from '../../src/shard/replica/index.js';

describe('isRemoved', () => {
  const listed = { confVersion: 4, listed: true };

  it('is true when the local table does not list the node', () => {
    assert.equal(isRemoved({ confVersion: 5, listed: false }, []), true);
  });

  it('is true when a newer table elsewhere does not list the node', () => {
    assert.equal(isRemoved(listed, [undefined, { confVersion: 5, listed: false }]), true);
  });

  it('is false for older or equal tables without the node (a member still joining there)', () => {
    assert.equal(isRemoved(listed, [{ confVersion: 3, listed: false }, { confVersion: 4, listed: false }]), false);
  });

  it('is false when newer tables still list it, or nobody answers', () => {
    assert.equal(isRemoved(listed, [{ confVersion: 9, listed: true }]), false);
    assert.equal(isRemoved(listed, [undefined, undefined]), false);
    assert.equal(isRemoved(listed, []), false);
  });
});

describe('standingIn', () => {
  it('reads the conf version and whether the node has a replica', () => {
    const desc: RangeDescriptor = {
      rangeId: 1,
      start: new Uint8Array(),
      end: new Uint8Array(),
      replicas: [
        { nodeId: 1, replicaId: 1, role: 'voter' },
        { nodeId: 3, replicaId: 3, role: 'learner' },
      ],
      epoch: { confVersion: 7, spanVersion: 1 },
    };
    assert.deepEqual(standingIn(desc, 3), { confVersion: 7, listed: true });
    assert.deepEqual(standingIn(desc, 2), { confVersion: 7, listed: false });
  });
});
