import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseFlags } from '../../bench/etcd/flags.js';

const seed = (): number => 7;

test('parseFlags() applies etcd-like defaults', () => {
  const o = parseFlags(['put'], seed);
  assert.equal(o.workload, 'put');
  assert.deepEqual(o.endpoints, ['127.0.0.1:2379']);
  assert.equal(o.conns, 1);
  assert.equal(o.clients, 1);
  assert.equal(o.total, 10_000);
  assert.equal(o.durationSec, undefined);
  assert.equal(o.keySize, 8);
  assert.equal(o.valSize, 8);
  assert.equal(o.keySpaceSize, 1);
  assert.equal(o.sequentialKeys, false);
  assert.equal(o.consistency, 'l');
  assert.equal(o.json, false);
  assert.equal(o.workers, 1);
  assert.equal(o.seed, 7);
});

test('parseFlags() reads --name value and --name=value forms', () => {
  const o = parseFlags(
    ['range', '--endpoints', 'http://127.0.0.1:23790,10.0.0.2:2379', '--conns=10', '--clients', '100', '--duration', '2.5',
      '--consistency=s', '--sequential-keys', '--json', '--workers', '2', '--key-space-size', '1000', '--seed', '3'],
    seed,
  );
  assert.deepEqual(o.endpoints, ['127.0.0.1:23790', '10.0.0.2:2379']);
  assert.equal(o.conns, 10);
  assert.equal(o.clients, 100);
  assert.equal(o.total, undefined);
  assert.equal(o.durationSec, 2.5);
  assert.equal(o.consistency, 's');
  assert.equal(o.sequentialKeys, true);
  assert.equal(o.json, true);
  assert.equal(o.workers, 2);
  assert.equal(o.keySpaceSize, 1000);
  assert.equal(o.seed, 3);
});

test('parseFlags() gives compare-and-put workloads a key space of 1000 by default', () => {
  assert.equal(parseFlags(['txn-put'], seed).keySpaceSize, 1000);
  assert.equal(parseFlags(['mixed'], seed).keySpaceSize, 1000);
});

test('parseFlags() rejects bad command lines with messages naming the flag', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /missing workload/],
    [['get'], /unknown workload "get"/],
    [['put', 'range'], /unexpected argument "range"/],
    [['put', '--bogus', '1'], /unknown flag --bogus/],
    [['put', '--conns'], /--conns needs a value/],
    [['put', '--conns', '0'], /--conns must be a positive integer, got 0/],
    [['put', '--clients', '-3'], /--clients must be a positive integer, got "-3"/],
    [['put', '--clients', 'ten'], /--clients must be a positive integer, got "ten"/],
    [['put', '--total', '10', '--duration', '5'], /--total or --duration, not both/],
    [['put', '--duration', 'abc'], /--duration must be a positive number/],
    [['put', '--conns', '10', '--clients', '5'], /--conns \(10\) must not exceed --clients \(5\)/],
    [['put', '--conns', '2', '--clients', '4', '--workers', '3'], /--workers \(3\) must not exceed --conns \(2\)/],
    [['range', '--consistency', 'x'], /--consistency must be l or s, got "x"/],
    [['put', '--endpoints', 'localhost'], /--endpoints: "localhost" is not host:port/],
    [['put', '--endpoints', 'a:99999'], /is not host:port/],
    [['watch-latency', '--val-size', '4'], /--val-size must be at least 8 for watch-latency/],
    [['put', '--json=maybe'], /--json takes no value/],
    [['put', '--total', '1', '--total', '2'], /--total given twice/],
    [['put', '--total', '1000000000000'], /--total must be at most/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseFlags(argv, seed), (err: unknown) => err instanceof FlagError && re.test(err.message), argv.join(' '));
  }
});
