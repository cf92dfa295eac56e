import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER_NODE_FLAGS, serverNodeArgs } from '../../src/cli/node-flags.js';

test('members start with the server flags, and a flag the caller set keeps its value', () => {
  assert.deepEqual(serverNodeArgs([]), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(serverNodeArgs(['--enable-source-maps']), ['--enable-source-maps', ...SERVER_NODE_FLAGS]);
  assert.deepEqual(serverNodeArgs(['--max-semi-space-size=64']), ['--max-semi-space-size=64']);
});
