import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonValueSplitter, JsonValueTooLargeError } from '../../src/gateway/json-stream.js';

test('splits concatenated objects at every chunk boundary', () => {
  const text = '{"create_request":{"key":"Zm9v"}}\n  {"a":"}{\\"x","b":[1,{"c":2}]}{"progress_request":{}}';
  const want = [{ create_request: { key: 'Zm9v' } }, { a: '}{"x', b: [1, { c: 2 }] }, { progress_request: {} }];
  for (let cut = 0; cut <= text.length; cut++) {
    const s = new JsonValueSplitter(1024);
    const bytes = Buffer.from(text);
    const got = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut))];
    assert.deepEqual(got, want, `cut at ${cut}`);
    assert.equal(s.pending, false);
  }
});

test('byte-at-a-time feeding and an unfinished tail', () => {
  const s = new JsonValueSplitter(1024);
  const got: unknown[] = [];
  for (const b of Buffer.from('{"k":"v"} {"k":')) got.push(...s.push(Buffer.from([b])));
  assert.deepEqual(got, [{ k: 'v' }]);
  assert.equal(s.pending, true);
});

test('refuses stray scalars and oversized values', () => {
  assert.throws(() => new JsonValueSplitter(1024).push(Buffer.from('{} 42')), SyntaxError);
  assert.throws(() => new JsonValueSplitter(8).push(Buffer.from('{"key":"0123456789"')), JsonValueTooLargeError);
  assert.throws(() => new JsonValueSplitter(1024).push(Buffer.from('{"a":}')), SyntaxError);
});
