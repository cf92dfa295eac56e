/**
 * `keyspan start`'s etcd flags for the space quota, metrics listeners,
 * automatic compaction and watch progress notifications: parsed from flags
 * and from etcd's YAML config file alike, with etcd's defaults, and refused
 * with a clear message when malformed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMemberConfig, parseConfigFile, parseDurationMs, resolveMemberConfig } from '../../src/cli/member-config.js';
import { DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS } from '../../src/gateway/watch/index.js';

describe('etcd flags: quota, metrics, compaction, progress notify', () => {
  it('defaults to etcd 3.4: default quota, no metrics listener, no auto-compaction, 10m progress notify', () => {
    const c = resolveMemberConfig({});
    assert.equal(c.quotaBackendBytes, 0);
    assert.deepEqual(c.listenMetrics, []);
    assert.equal(c.autoCompaction, undefined);
    assert.equal(c.progressNotifyIntervalMs, DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS);
  });

  it('parses the flags', async () => {
    const { config, warnings } = await loadMemberConfig([
      '--quota-backend-bytes=-1',
      '--listen-metrics-urls',
      'http://127.0.0.1:2381,http://[::1]:2382',
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=1000',
      '--experimental-watch-progress-notify-interval=1m30s',
    ]);
    assert.deepEqual(warnings, []);
    assert.equal(config.quotaBackendBytes, -1);
    assert.deepEqual(
      config.listenMetrics.map((u) => [u.host, u.port]),
      [['127.0.0.1', 2381], ['::1', 2382]],
    );
    assert.deepEqual(config.autoCompaction, { mode: 'revision', retentionRevisions: 1000 });
    assert.equal(config.progressNotifyIntervalMs, 90_000);
  });

  it('takes periodic retention as a duration or as a bare number of hours; 0 is off', () => {
    const periodic = (r: string, mode?: string) =>
      resolveMemberConfig({ 'auto-compaction-retention': r, ...(mode !== undefined ? { 'auto-compaction-mode': mode } : {}) }).autoCompaction;
    assert.deepEqual(periodic('1'), { mode: 'periodic', retentionMs: 3_600_000 });
    assert.deepEqual(periodic('72'), { mode: 'periodic', retentionMs: 72 * 3_600_000 });
    assert.deepEqual(periodic('30m', 'periodic'), { mode: 'periodic', retentionMs: 1_800_000 });
    assert.deepEqual(periodic('1h30m'), { mode: 'periodic', retentionMs: 5_400_000 });
    assert.equal(periodic('0'), undefined);
    assert.equal(periodic('0', 'revision'), undefined);
    assert.equal(periodic('0s'), undefined);
  });

  it('reads the same keys from an etcd config file (durations there as nanoseconds or strings)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-flags-'));
    try {
      const file = join(dir, 'etcd.yml');
      await writeFile(
        file,
        [
          'quota-backend-bytes: 4096',
          'listen-metrics-urls: http://127.0.0.1:2381',
          'auto-compaction-mode: periodic',
          'auto-compaction-retention: "10m"',
          'experimental-watch-progress-notify-interval: 5000000000',
          '',
        ].join('\n'),
      );
      const { config, warnings } = await loadMemberConfig(['--config-file', file]);
      assert.deepEqual(warnings, []);
      assert.equal(config.quotaBackendBytes, 4096);
      assert.deepEqual(config.listenMetrics.map((u) => u.url), ['http://127.0.0.1:2381']);
      assert.deepEqual(config.autoCompaction, { mode: 'periodic', retentionMs: 600_000 });
      assert.equal(config.progressNotifyIntervalMs, 5_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const parsed = parseConfigFile('auto-compaction-retention: 2\nexperimental-watch-progress-notify-interval: "2m"\n');
    assert.deepEqual(parsed.settings, { 'auto-compaction-retention': '2', 'experimental-watch-progress-notify-interval': '2m' });
    assert.deepEqual(parsed.warnings, []);
  });

  it('parses Go durations', () => {
    assert.equal(parseDurationMs('10m'), 600_000);
    assert.equal(parseDurationMs('1.5s'), 1_500);
    assert.equal(parseDurationMs('500ms'), 500);
    assert.equal(parseDurationMs('2h45m10s'), 2 * 3_600_000 + 45 * 60_000 + 10_000);
    assert.equal(parseDurationMs('1500000us'), 1_500);
    assert.equal(parseDurationMs('0'), 0);
    for (const bad of ['', '5', 'm', '1x', '-1s', '1h 2m', 'ten']) assert.equal(parseDurationMs(bad), undefined, bad);
  });

  it('refuses bad values with a message naming the flag', () => {
    assert.throws(() => resolveMemberConfig({ 'quota-backend-bytes': '1GB' }), /--quota-backend-bytes must be an integer/);
    assert.throws(() => resolveMemberConfig({ 'listen-metrics-urls': 'http://127.0.0.1' }), /--listen-metrics-urls: 'http:\/\/127\.0\.0\.1': a port is required/);
    assert.throws(() => resolveMemberConfig({ 'listen-metrics-urls': 'https://127.0.0.1:2381' }), /--listen-metrics-urls: .*TLS is not supported/);
    assert.throws(() => resolveMemberConfig({ 'auto-compaction-mode': 'hourly' }), /--auto-compaction-mode must be 'periodic' or 'revision', not 'hourly'/);
    assert.throws(
      () => resolveMemberConfig({ 'auto-compaction-mode': 'revision', 'auto-compaction-retention': '1h' }),
      /--auto-compaction-retention must be a number of revisions in revision mode, not '1h'/,
    );
    assert.throws(() => resolveMemberConfig({ 'auto-compaction-retention': '-1' }), /--auto-compaction-retention must be a duration/);
    assert.throws(() => resolveMemberConfig({ 'auto-compaction-retention': '5ms' }), /--auto-compaction-retention must be at least 10ms/);
    assert.throws(() => resolveMemberConfig({ 'auto-compaction-retention': '100000000' }), /--auto-compaction-retention must be at most 87600h/);
    assert.throws(
      () => resolveMemberConfig({ 'experimental-watch-progress-notify-interval': '10' }),
      /--experimental-watch-progress-notify-interval must be a duration such as 10m, 1h or 500ms, not '10'/,
    );
    assert.throws(
      () => resolveMemberConfig({ 'experimental-watch-progress-notify-interval': '50ms' }),
      /--experimental-watch-progress-notify-interval must be at least 100ms/,
    );
  });

  it('--auth-token-ttl: seconds, default 300, 0 = the default (etcd)', () => {
    assert.equal(resolveMemberConfig({}).authTokenTtlSeconds, 300);
    assert.equal(resolveMemberConfig({ 'auth-token-ttl': '60' }).authTokenTtlSeconds, 60);
    assert.equal(resolveMemberConfig({ 'auth-token-ttl': '0' }).authTokenTtlSeconds, 300);
    assert.throws(() => resolveMemberConfig({ 'auth-token-ttl': '-1' }), /--auth-token-ttl/);
    assert.throws(() => resolveMemberConfig({ 'auth-token-ttl': '5m' }), /--auth-token-ttl must be an integer/);
  });
});
