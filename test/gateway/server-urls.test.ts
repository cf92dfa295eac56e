/** etcd-style URL flags of `keyspan start`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostPort, parseUrlList, UrlFlagError } from '../../src/gateway/urls.js';

describe('parseUrlList', () => {
  it('parses etcd-style comma-separated http URLs', () => {
    assert.deepEqual(parseUrlList('listen-client-urls', 'http://127.0.0.1:2379'), [
      { url: 'http://127.0.0.1:2379', host: '127.0.0.1', port: 2379 },
    ]);
    assert.deepEqual(
      parseUrlList('listen-client-urls', 'http://127.0.0.1:2379, http://[::1]:22379/').map((u) => [u.url, u.host, u.port]),
      [
        ['http://127.0.0.1:2379', '127.0.0.1', 2379],
        ['http://[::1]:22379', '::1', 22379],
      ],
    );
    assert.equal(hostPort('::1', 5), '[::1]:5');
    assert.equal(hostPort('localhost', 5), 'localhost:5');
  });

  it('refuses TLS, other schemes, missing ports, paths and empty lists with the flag named', () => {
    for (const bad of ['https://127.0.0.1:2379', 'unix://x', '127.0.0.1:2379', 'http://127.0.0.1', 'http://h:1/p', '', ' , ']) {
      assert.throws(() => parseUrlList('listen-client-urls', bad), (e: unknown) => e instanceof UrlFlagError && e.message.startsWith('--listen-client-urls'), bad);
    }
  });
});
