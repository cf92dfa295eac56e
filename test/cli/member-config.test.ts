/**
 * `keyspan start`'s configuration: etcd's flags, etcd's YAML config file
 * (keys, defaults, flags ignored when a file is given), and the checks that
 * refuse a bad configuration with a clear message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMemberConfig, parseConfigFile, resolveMemberConfig, MemberConfigError } from '../../src/cli/member-config.js';
import { parseInitialCluster, selfMember, InitialClusterError } from '../../src/node/index.js';

const IC = 'infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380';

const ETCD_SAMPLE = `# etcd's sample config keys
name: infra2
data-dir: /var/lib/keyspan/infra2
listen-client-urls: http://127.0.0.1:22379
advertise-client-urls: http://127.0.0.1:22379
listen-peer-urls: http://127.0.0.1:22380
initial-advertise-peer-urls: http://127.0.0.1:22380
initial-cluster: ${IC}
initial-cluster-state: new
initial-cluster-token: etcd-cluster-1
quota-backend-bytes: 8589934592
max-request-bytes: 2097152
heartbeat-interval: 50
election-timeout: 500
snapshot-count: 10000
enable-v2: false
client-transport-security:
  cert-file:
`;

describe('initial cluster', () => {
  it('derives node ids from the names in sorted order, whatever the order given', () => {
    const a = parseInitialCluster(IC);
    const b = parseInitialCluster('infra3=http://127.0.0.1:32380,infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380');
    assert.deepEqual(a.members.map((m) => [m.name, m.nodeId, m.peerUrls.join()]), [
      ['infra1', 1, 'http://127.0.0.1:12380'],
      ['infra2', 2, 'http://127.0.0.1:22380'],
      ['infra3', 3, 'http://127.0.0.1:32380'],
    ]);
    assert.equal(a.canonical, b.canonical);
  });

  it('refuses malformed lists and a member that is not in the list or advertises other URLs', () => {
    assert.throws(() => parseInitialCluster(''), InitialClusterError);
    assert.throws(() => parseInitialCluster('infra1'), /'infra1' is not name=url/);
    assert.throws(() => parseInitialCluster('a=http://127.0.0.1:1,b=http://127.0.0.1:1'), /listed for both a and b/);
    assert.throws(() => parseInitialCluster('a=https://127.0.0.1:1'), /scheme must be http/);
    const ic = parseInitialCluster(IC);
    assert.throws(() => selfMember(ic, 'infra9', ['http://127.0.0.1:12380']), /no member named 'infra9'/);
    assert.throws(() => selfMember(ic, 'infra1', ['http://127.0.0.1:22380']), /do not match --initial-cluster for 'infra1'/);
    assert.equal(selfMember(ic, 'infra1', ['http://127.0.0.1:12380/']).nodeId, 1);
  });
});

describe('member configuration', () => {
  it('has etcd-like defaults without flags: the embedded default', () => {
    const c = resolveMemberConfig({});
    assert.equal(c.name, 'default');
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.listenClient.map((u) => u.url), ['http://127.0.0.1:2379']);
    assert.equal(c.listenPeer.url, 'http://127.0.0.1:2380');
    assert.equal(c.cluster, undefined);
    assert.equal(c.tickMs, 100);
    assert.equal(c.electionTick, 10);
    assert.equal(c.maxRequestBytes, 1572864);
  });

  it("takes etcd's Procfile flags and finds this member in --initial-cluster", async () => {
    const { config, warnings } = await loadMemberConfig([
      '--name', 'infra2',
      '--listen-client-urls', 'http://127.0.0.1:22379',
      '--advertise-client-urls', 'http://127.0.0.1:22379',
      '--listen-peer-urls', 'http://127.0.0.1:22380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:22380',
      '--initial-cluster-token', 'etcd-cluster-1',
      '--initial-cluster', IC,
      '--initial-cluster-state', 'new',
    ]);
    assert.deepEqual(warnings, []);
    assert.equal(config.cluster?.self.nodeId, 2);
    assert.equal(config.cluster?.token, 'etcd-cluster-1');
    assert.deepEqual(config.advertiseClientUrls, ['http://127.0.0.1:22379']);
  });

  it('reads an etcd YAML config file and ignores every other flag, as etcd does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-config-'));
    try {
      const file = join(dir, 'etcd.conf.yml');
      await writeFile(file, ETCD_SAMPLE);
      const { config, warnings } = await loadMemberConfig(['--config-file', file, '--name', 'ignored', '--data-dir', '/nowhere']);
      assert.equal(config.name, 'infra2');
      assert.equal(config.dataDir, '/var/lib/keyspan/infra2');
      assert.equal(config.cluster?.self.nodeId, 2);
      assert.equal(config.cluster?.token, 'etcd-cluster-1');
      assert.equal(config.maxRequestBytes, 2097152);
      assert.equal(config.quotaBackendBytes, 8589934592);
      assert.equal(config.tickMs, 50);
      assert.equal(config.electionTick, 10);
      assert.deepEqual(warnings, [
        `${file}: 'snapshot-count' is an etcd setting keyspan does not implement; ignored`,
        `${file}: 'enable-v2' is an etcd setting keyspan does not implement; ignored`,
        '--config-file is given: ignoring the flags --name, --data-dir (as etcd does)',
      ]);
      await assert.rejects(loadMemberConfig(['--config-file', join(dir, 'missing.yml')]), /--config-file .*missing\.yml: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad files and values with a clear message', async () => {
    assert.throws(() => parseConfigFile('name: [a', 'f.yml'), /f\.yml: not valid YAML/);
    assert.throws(() => parseConfigFile('- a\n- b\n', 'f.yml'), /expected a mapping/);
    assert.throws(() => parseConfigFile('nmae: x\n', 'f.yml'), /f\.yml: unknown key 'nmae'/);
    assert.throws(() => parseConfigFile('name:\n  a: 1\n', 'f.yml'), /'name' must be a string or a number/);
    assert.throws(() => resolveMemberConfig({ 'max-request-bytes': '0' }), /--max-request-bytes must be an integer in 1\.\.67108864, not '0'/);
    assert.throws(() => resolveMemberConfig({ 'heartbeat-interval': '100', 'election-timeout': '300' }), /should be at least as 5 times as --heartbeat-interval/);
    assert.throws(() => resolveMemberConfig({ 'initial-cluster-state': 'old' }), /must be 'new' or 'existing'/);
    assert.throws(() => resolveMemberConfig({ engine: 'bolt' }), /--engine must be one of/);
    assert.throws(() => resolveMemberConfig({ 'listen-peer-urls': 'http://127.0.0.1:1,http://127.0.0.1:2' }), /exactly one URL/);
    assert.throws(() => resolveMemberConfig({ 'initial-cluster': IC }), (e: unknown) => e instanceof MemberConfigError && /no member named 'default'/.test(e.message));
    await assert.rejects(loadMemberConfig(['--bogus']), /Unknown option '--bogus'/);
  });
});
