/** An abort signal made on first use: aborting before or after the signal exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LazyAbort } from '../../src/h2/lazy-abort.js';

test('an abort before the signal is made gives a signal that starts aborted', () => {
  const a = new LazyAbort();
  assert.equal(a.aborted, false);
  a.abort();
  assert.equal(a.aborted, true);
  assert.equal(a.signal.aborted, true);
  assert.equal(a.signal, a.signal, 'one signal');
});

test('an abort after the signal is made fires its listeners once', () => {
  const a = new LazyAbort();
  let fired = 0;
  a.signal.addEventListener('abort', () => fired++);
  assert.equal(a.aborted, false);
  a.abort();
  a.abort();
  assert.equal(fired, 1);
  assert.equal(a.aborted, true);
});
