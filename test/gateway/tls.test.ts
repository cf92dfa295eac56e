/**
 * Client TLS (tls.ts, server.ts): an `https://` client URL with certificates
 * made by openssl at test time serves gRPC (ALPN h2) and the JSON gateway
 * (http/1.1) on one port. Driven by the real etcdctl (`--cacert --cert
 * --key`, put/get and endpoint status, whose `:authority` is
 * `https://...`), a grpc-js client with TLS credentials and Node https
 * requests; with client-cert-auth, clients without a certificate or with
 * one from another CA are refused. Skipped where openssl is missing; the
 * etcdctl part where etcdctl is missing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import * as https from 'node:https';
import * as grpc from '@grpc/grpc-js';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { ClientTlsError, loadClientTls, type ClientTls } from '../../src/gateway/tls.js';
import { parseUrlList, UrlFlagError } from '../../src/gateway/urls.js';
import { loadMemberConfig, MemberConfigError, parseConfigFile } from '../../src/cli/member-config.js';
import { CLIENT_COMMON_NAME, makeTestCerts, skipWithoutOpenssl, type TestCerts } from './tls-certs.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const etcdctlProbe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skipEtcdctl = skipWithoutOpenssl !== false ? skipWithoutOpenssl : etcdctlProbe.status !== 0 ? 'etcdctl not installed' : false;
const TIMEOUT_MS = 20_000;

async function startTls(material: ClientTls): Promise<Embedded> {
  return startEmbedded({
    name: 'tls',
    engineKind: 'memory',
    listenClient: parseUrlList('listen-client-urls', 'https://127.0.0.1:0', { allowTls: true }),
    clientTls: material,
    listenPeer: { url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 },
    tickMs: 10,
    onInternalError: (method, err) => console.error('internal error in', method, err),
  });
}

function etcdctl(endpoint: string, tlsArgs: readonly string[], args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      ETCDCTL,
      [`--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=5s', ...tlsArgs, ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: TIMEOUT_MS },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

/** A unary call of `service/method` over `creds`. */
async function call(address: string, creds: grpc.ChannelCredentials, service: 'etcdserverpb.KV', method: string, req: EtcdMessage): Promise<EtcdMessage> {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition(service), service);
  const c = new Ctor(address, creds) as unknown as grpc.Client & Record<string, (r: EtcdMessage, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: EtcdMessage) => void) => void>;
  try {
    return await new Promise((resolve, reject) => {
      (c[method] as (r: EtcdMessage, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: EtcdMessage) => void) => void).call(
        c,
        req,
        { deadline: Date.now() + 5_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  } finally {
    c.close();
  }
}

/** A JSON gateway request over https: status and body. */
function jsonPost(port: number, path: string, body: unknown, agentOptions: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'POST', timeout: TIMEOUT_MS, headers: { 'content-type': 'application/json' }, ...agentOptions },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(JSON.stringify(body));
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('client TLS', { skip: skipWithoutOpenssl }, () => {
  let certs: TestCerts;
  let pem: { ca: Buffer; cert: Buffer; key: Buffer; strangerCert: Buffer; strangerKey: Buffer };
  before(async () => {
    certs = await makeTestCerts();
    pem = {
      ca: await readFile(certs.caCert),
      cert: await readFile(certs.clientCert),
      key: await readFile(certs.clientKey),
      strangerCert: await readFile(certs.strangerCert),
      strangerKey: await readFile(certs.strangerKey),
    };
  });
  after(() => rm(certs.dir, { recursive: true, force: true }));

  describe('with --client-cert-auth', () => {
    let server: Embedded;
    let port = 0;
    before(async () => {
      server = await startTls(
        await loadClientTls({ certFile: certs.serverCert, keyFile: certs.serverKey, trustedCaFile: certs.caCert, clientCertAuth: true }),
      );
      port = server.server.port;
      assert.deepEqual(server.clientUrls, [`https://127.0.0.1:${port}`]);
    });
    after(() => server.close());

    it('serves etcdctl with a client certificate: put, get, endpoint status', { skip: skipEtcdctl }, async () => {
      const endpoint = `https://127.0.0.1:${port}`;
      const tlsArgs = [`--cacert=${certs.caCert}`, `--cert=${certs.clientCert}`, `--key=${certs.clientKey}`];
      const put = await etcdctl(endpoint, tlsArgs, ['put', 'k', 'v']);
      assert.equal(put.stdout, 'OK\n', put.stderr);
      const get = await etcdctl(endpoint, tlsArgs, ['get', 'k']);
      assert.equal(get.stdout, 'k\nv\n', get.stderr);
      const status = await etcdctl(endpoint, tlsArgs, ['endpoint', 'status']);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`^${endpoint}, 1, `));
      const noCert = await etcdctl(endpoint, [`--cacert=${certs.caCert}`], ['get', 'k']);
      assert.notEqual(noCert.code, 0, 'etcdctl without a client certificate must fail');
    });

    it('serves grpc-js with TLS credentials and refuses it without a trusted certificate', async () => {
      const address = `127.0.0.1:${port}`;
      await call(address, grpc.credentials.createSsl(pem.ca, pem.key, pem.cert), 'etcdserverpb.KV', 'Put', { key: Buffer.from('g'), value: Buffer.from('1') });
      const res = await call(address, grpc.credentials.createSsl(pem.ca, pem.key, pem.cert), 'etcdserverpb.KV', 'Range', { key: Buffer.from('g') });
      assert.equal((res['kvs'] as { value: Buffer }[])[0]?.value.toString(), '1');
      for (const creds of [grpc.credentials.createSsl(pem.ca), grpc.credentials.createSsl(pem.ca, pem.strangerKey, pem.strangerCert)]) {
        await assert.rejects(call(address, creds, 'etcdserverpb.KV', 'Range', { key: Buffer.from('g') }), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
      }
    });

    it('serves the JSON gateway over https (ALPN http/1.1) and refuses clients without a trusted certificate', async () => {
      const withCert = { ca: pem.ca, cert: pem.cert, key: pem.key };
      const put = await jsonPost(port, '/v3/kv/put', { key: b64('j'), value: b64('json') }, withCert);
      assert.equal(put.status, 200, put.body);
      const range = await jsonPost(port, '/v3/kv/range', { key: b64('j') }, withCert);
      assert.equal(range.status, 200);
      assert.equal((JSON.parse(range.body) as { kvs: { value: string }[] }).kvs[0]?.value, b64('json'));
      await assert.rejects(jsonPost(port, '/v3/kv/range', { key: b64('j') }, { ca: pem.ca }));
      await assert.rejects(jsonPost(port, '/v3/kv/range', { key: b64('j') }, { ca: pem.ca, cert: pem.strangerCert, key: pem.strangerKey }));
    });

    // Last: it enables auth on this server.
    it('with auth enabled, takes the client certificate CN as the user name on gRPC (not on the JSON gateway)', { skip: skipEtcdctl }, async () => {
      const endpoint = `https://127.0.0.1:${port}`;
      const tlsArgs = [`--cacert=${certs.caCert}`, `--cert=${certs.clientCert}`, `--key=${certs.clientKey}`];
      const steps = [
        ['user', 'add', 'root', '--new-user-password=rootpw'],
        ['role', 'add', 'root'],
        ['user', 'grant-role', 'root', 'root'],
        ['user', 'add', CLIENT_COMMON_NAME, '--new-user-password=pw'],
        ['role', 'add', 'reader'],
        ['role', 'grant-permission', 'reader', 'read', 'cn/', '--prefix'],
        ['user', 'grant-role', CLIENT_COMMON_NAME, 'reader'],
        ['put', 'cn/x', 'v'],
        ['auth', 'enable'],
      ];
      for (const args of steps) {
        const r = await etcdctl(endpoint, tlsArgs, args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      const get = await etcdctl(endpoint, tlsArgs, ['get', 'cn/x']);
      assert.equal(get.stdout, 'cn/x\nv\n', get.stderr);
      const put = await etcdctl(endpoint, tlsArgs, ['put', 'cn/x', 'w']);
      assert.match(put.stderr, /etcdserver: permission denied/);
      const other = await etcdctl(endpoint, tlsArgs, ['get', 'other']);
      assert.match(other.stderr, /etcdserver: permission denied/);
      const asRoot = await etcdctl(endpoint, [...tlsArgs, '--user=root:rootpw'], ['put', 'cn/x', 'w']);
      assert.equal(asRoot.stdout, 'OK\n', asRoot.stderr);
      // The JSON gateway does not take the CN (as etcd's): no token, no user.
      const json = await jsonPost(port, '/v3/kv/range', { key: b64('cn/x') }, { ca: pem.ca, cert: pem.cert, key: pem.key });
      assert.notEqual(json.status, 200, json.body);
      assert.match(json.body, /user name is empty/);
    });
  });

  describe('without --client-cert-auth', () => {
    let server: Embedded;
    before(async () => {
      server = await startTls(await loadClientTls({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCertAuth: false }));
    });
    after(() => server.close());

    it('serves clients without a certificate; refuses plain-text clients', async () => {
      const port = server.server.port;
      await call(`127.0.0.1:${port}`, grpc.credentials.createSsl(pem.ca), 'etcdserverpb.KV', 'Put', { key: Buffer.from('n'), value: Buffer.from('1') });
      const range = await jsonPost(port, '/v3/kv/range', { key: b64('n') }, { ca: pem.ca });
      assert.equal(range.status, 200);
      await assert.rejects(
        call(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), 'etcdserverpb.KV', 'Range', { key: Buffer.from('n') }),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
      );
    });
  });

  it('refuses unusable settings with the flag named', async () => {
    await assert.rejects(loadClientTls({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCertAuth: true }), /--client-cert-auth needs --trusted-ca-file/);
    await assert.rejects(loadClientTls({ certFile: `${certs.dir}/missing.crt`, keyFile: certs.serverKey, clientCertAuth: false }), (e: unknown) => e instanceof ClientTlsError && /^--cert-file /.test(e.message));
    await assert.rejects(loadClientTls({ certFile: certs.serverKey.replace('.key', '.ext'), keyFile: certs.serverKey, clientCertAuth: false }), /not a PEM file/);
    // A key that does not match the certificate.
    await assert.rejects(startTls({ cert: await readFile(certs.serverCert), key: pem.key, clientCertAuth: false }), ClientTlsError);
    await assert.rejects(
      startEmbedded({
        name: 'x',
        engineKind: 'memory',
        listenClient: parseUrlList('listen-client-urls', 'https://127.0.0.1:0', { allowTls: true }),
        listenPeer: { url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 },
      }),
      /needs --cert-file and --key-file/,
    );
    assert.throws(() => parseUrlList('listen-peer-urls', 'https://127.0.0.1:1'), UrlFlagError);
    assert.equal(parseUrlList('listen-client-urls', 'https://127.0.0.1:1', { allowTls: true })[0]?.secure, true);
  });

  void CLIENT_COMMON_NAME;
});

describe('client TLS flags', () => {
  it('reads etcd\'s flags, the bare boolean included, and requires a certificate for https:// URLs', async () => {
    const base = ['--engine', 'memory', '--listen-client-urls', 'https://127.0.0.1:2379,http://127.0.0.1:2381'];
    const { config } = await loadMemberConfig([...base, '--cert-file', 'c.pem', '--key-file', 'k.pem', '--trusted-ca-file', 'ca.pem', '--client-cert-auth']);
    assert.deepEqual(config.clientTls, { certFile: 'c.pem', keyFile: 'k.pem', trustedCaFile: 'ca.pem', clientCertAuth: true });
    assert.deepEqual(config.listenClient.map((u) => u.secure === true), [true, false]);
    const off = await loadMemberConfig([...base, '--cert-file', 'c.pem', '--key-file', 'k.pem', '--client-cert-auth=false']);
    assert.equal(off.config.clientTls?.clientCertAuth, false);
    await assert.rejects(loadMemberConfig(base), (e: unknown) => e instanceof MemberConfigError && e.message === 'TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme');
    await assert.rejects(loadMemberConfig([...base, '--cert-file', 'c', '--key-file', 'k', '--client-cert-auth=maybe']), /--client-cert-auth must be true or false/);
    await assert.rejects(loadMemberConfig(['--listen-peer-urls', 'https://127.0.0.1:2380']), /TLS is not supported here/);
    const plain = await loadMemberConfig(['--engine', 'memory', '--cert-file', 'c.pem', '--key-file', 'k.pem']);
    assert.equal(plain.config.clientTls, undefined, 'certificates without an https:// URL are not used');
  });

  it('reads client-transport-security from an etcd config file', () => {
    const { settings } = parseConfigFile('client-transport-security:\n  cert-file: /c.pem\n  key-file: /k.pem\n  client-cert-auth: true\n  trusted-ca-file: /ca.pem\n  auto-tls: false\n');
    assert.deepEqual(settings, { 'cert-file': '/c.pem', 'key-file': '/k.pem', 'client-cert-auth': 'true', 'trusted-ca-file': '/ca.pem' });
    assert.throws(() => parseConfigFile('client-transport-security:\n  auto-tls: true\n'), /'auto-tls' is not supported/);
    assert.throws(() => parseConfigFile('client-transport-security:\n  nonsense: 1\n'), /unknown key 'client-transport-security.nonsense'/);
  });
});
