/**
 * The real etcdctl 3.4 against keyspan over a scripted dataset: `get` with
 * combinations of --prefix, --from-key, ranges, --sort-by/--order, --limit,
 * --rev, --keys-only, --print-value-only, --hex and -w json/fields; `txn` fed
 * on stdin (interactive and not) with several compares and both branches;
 * `compaction --physical`, `defrag` and `endpoint health -w json/table`. Where the real etcd server is installed the same script
 * must give the same outputs against a real etcd 3.4 (addresses, ids, terms
 * and timings normalised). `endpoint status -w table` and `endpoint hashkv`
 * carry per-server values (DB size, raft index, hash) and are checked on
 * keyspan alone. `check perf --load=s` runs only with KEYSPAN_CHECK_PERF=1:
 * it takes about a minute by design.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { etcdctl, normalizeEtcdctl, skipDiff, skipEtcdctl, startReferenceEtcd } from './etcd-diff.js';

/** One etcdctl step of the shared script. */
interface Step {
  readonly args: readonly string[];
  readonly stdin?: string;
}

const put = (k: string, v: string): Step => ({ args: ['put', k, v] });

/** Revisions 2..11: keys with different create/mod revisions, versions and values. */
const DATASET: readonly Step[] = [
  put('d/a', '1'),
  put('d/b', '2'),
  put('d/c', '3'),
  put('d/d', '4'),
  put('e', '5'),
  put('d/b', '22'),
  put('d/a', '11'),
  put('d/a', '111'),
  put('z', '0'),
  put('d/', 'root'),
];

const TXN_PROMPT = 'compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n';

/** The script after the dataset; outputs are compared step by step. */
const SCRIPT: readonly Step[] = [
  { args: ['get', 'd/', '--prefix', '--sort-by=KEY', '--order=DESCEND'] },
  { args: ['get', 'd/', '--prefix', '--order=DESCEND'] },
  { args: ['get', 'd/', '--prefix', '--sort-by=VERSION', '--order=ASCEND'] },
  { args: ['get', 'd/', '--prefix', '--sort-by=VALUE', '--order=DESCEND', '--print-value-only'] },
  { args: ['get', 'd/', '--prefix', '--sort-by=MODIFY', '--order=ASCEND', '--limit=2', '-w', 'json'] },
  { args: ['get', 'd/', '--prefix', '--sort-by=CREATE', '--order=DESCEND', '--keys-only'] },
  { args: ['get', 'd/', '--prefix', '--rev=5'] },
  { args: ['get', 'd/', '--prefix', '--rev=7', '--sort-by=VALUE', '--keys-only', '-w', 'json'] },
  { args: ['get', 'd/b', '--from-key', '--limit=3'] },
  { args: ['get', 'd/b', '--from-key', '--keys-only', '-w', 'json'] },
  { args: ['get', '', '--from-key', '--print-value-only'] },
  { args: ['get', 'd/a', 'd/c'] },
  { args: ['get', 'd/a', 'd/c', '-w', 'json'] },
  { args: ['get', 'd/', '--prefix', '--print-value-only', '-w', 'json', '--limit=1'] },
  { args: ['get', 'd/', '--prefix', '--limit=1', '-w', 'fields'] },
  { args: ['get', 'nothing', '-w', 'json'] },
  { args: ['get', 'nothing', '--prefix', '--keys-only'] },
  { args: ['--hex', 'get', 'd/a'] },
  { args: ['get', 'd/a', '--rev=8', '-w', 'fields'] },
  { args: ['get', 'd/', '--prefix', '--rev=1'] },
  { args: ['txn', '-i'], stdin: 'value("d/a") = "111"\nversion("d/b") = "2"\nmod("e") < "7"\n\nput d/x xv\nget d/ --prefix --keys-only\n\ndel d/ --prefix\n\n' },
  { args: ['txn', '-i'], stdin: 'create("d/a") != "2"\n\nput never x\n\nget d/a\nput d/y yv\nget d/y\n\n' },
  { args: ['txn', '-i', '-w', 'json'], stdin: 'value("d/x") > "a"\n\ndel d/x --prev-kv\nget d/x\n\n\n' },
  { args: ['txn'], stdin: 'value("z") = "0"\n\nput z 1\n\n\n' },
  { args: ['txn', '-w', 'fields'], stdin: 'version("z") = "2"\n\nget z\n\n\n' },
  { args: ['txn', '-i'], stdin: '\nput d/empty ok\n\n\n' },
  { args: ['get', 'd/empty', 'z', '--print-value-only'] },
  { args: ['compaction', '--physical', '6'] },
  { args: ['get', 'd/', '--prefix', '--rev=5'] },
  { args: ['get', 'd/', '--prefix', '--rev=6', '--keys-only'] },
  { args: ['compaction', '3'] },
  { args: ['defrag'] },
  { args: ['endpoint', 'health', '-w', 'json'] },
  { args: ['endpoint', 'health', '-w', 'table'] },
];

/** Timings in JSON fields and table cells; table padding, whose width follows the timings. */
function normalizeTimings(text: string): string {
  return text
    .replace(/"took":"[^"]*"/g, '"took":"<T>"')
    .replace(/\| +[\d.]+(µs|ms|s) +\|/g, '| <T> |')
    .replace(/^[+|].*$/gm, (row) => row.replace(/ +/g, ' ').replace(/-+/g, '-'));
}

async function runScript(ep: string): Promise<string[]> {
  const out: string[] = [];
  for (const step of [...DATASET, ...SCRIPT]) {
    const r = await etcdctl(ep, step.args, step.stdin !== undefined ? { stdin: step.stdin } : {});
    out.push(normalizeTimings(normalizeEtcdctl(`$ ${step.args.join(' ')}\n[exit ${r.code}]\n${r.stdout}${r.errors}`, ep)));
  }
  return out.slice(DATASET.length);
}

describe('etcdctl get, txn, compaction, defrag and endpoint commands over a dataset', { skip: skipEtcdctl }, () => {
  let srv: Embedded;
  let ep = '';
  let outputs: string[] = [];

  before(async () => {
    srv = await startTestServer();
    ep = srv.server.addresses[0] ?? '';
    outputs = await runScript(ep);
  });
  after(async () => {
    await srv?.close();
  });

  const out = (i: number): string => {
    const text = outputs[i] ?? '';
    return text.slice(text.indexOf('\n') + 1);
  };

  it('get sorts, limits, reads past revisions and from-key ranges', () => {
    assert.equal(out(0), '[exit 0]\nd/d\n4\nd/c\n3\nd/b\n22\nd/a\n111\nd/\nroot\n');
    assert.equal(out(1), '[exit 0]\nd/d\n4\nd/c\n3\nd/b\n22\nd/a\n111\nd/\nroot\n', '--order alone sorts by key');
    assert.equal(out(2), '[exit 0]\nd/\nroot\nd/c\n3\nd/d\n4\nd/b\n22\nd/a\n111\n');
    assert.equal(out(3), '[exit 0]\nroot\n4\n3\n22\n111\n');
    assert.equal(
      out(4),
      '[exit 0]\n{"header":{"revision":11},"kvs":[{"key":"ZC9j","create_revision":4,"mod_revision":4,"version":1,"value":"Mw=="},{"key":"ZC9k","create_revision":5,"mod_revision":5,"version":1,"value":"NA=="}],"more":true,"count":5}\n',
    );
    assert.equal(out(5), '[exit 0]\nd/\n\nd/d\n\nd/c\n\nd/b\n\nd/a\n\n');
    assert.equal(out(6), '[exit 0]\nd/a\n1\nd/b\n2\nd/c\n3\nd/d\n4\n');
    assert.equal(out(8), '[exit 0]\nd/b\n22\nd/c\n3\nd/d\n4\n');
    assert.equal(out(10), '[exit 0]\nroot\n111\n22\n3\n4\n5\n0\n');
    assert.equal(out(11), '[exit 0]\nd/a\n111\nd/b\n22\n');
    assert.equal(out(15), '[exit 0]\n{"header":{"revision":11}}\n');
    assert.equal(out(16), '[exit 0]\n');
    assert.equal(out(17), '[exit 0]\n\\x64\\x2f\\x61\n\\x31\\x31\\x31\n');
    assert.match(out(18), /^\[exit 0\]\n"Revision" : 11\n"Key" : "d\/a"\n"CreateRevision" : 2\n"ModRevision" : 8\n"Version" : 2\n"Value" : "11"\n/);
    assert.equal(out(19), '[exit 0]\n');
  });

  it('txn on stdin: several compares, both branches, json and fields output, empty compares', () => {
    assert.equal(out(20), `[exit 0]\n${TXN_PROMPT}SUCCESS\n\nOK\n\nd/\n\nd/a\n\nd/b\n\nd/c\n\nd/d\n\nd/x\n\n`);
    assert.equal(out(21), `[exit 0]\n${TXN_PROMPT}FAILURE\n\nd/a\n111\n\nOK\n\nd/y\nyv\n`);
    assert.match(out(22), /^\[exit 0\]\ncompares:\n.*\{"header":\{"revision":14\},"succeeded":true,"responses":\[\{"Response":\{"ResponseDeleteRange":\{"header":\{"revision":14\},"deleted":1,"prev_kvs":\[\{"key":"ZC94"/s);
    assert.equal(out(23), '[exit 0]\nSUCCESS\n\nOK\n');
    assert.equal(out(25), `[exit 0]\n${TXN_PROMPT}SUCCESS\n\nOK\n`);
    assert.equal(out(26), '[exit 0]\nok\nyv\n5\n');
  });

  it('compaction --physical, compacted reads, defrag and endpoint health', () => {
    assert.equal(out(27), '[exit 0]\ncompacted revision 6\n');
    assert.equal(out(28), '[exit 1]\nError: etcdserver: mvcc: required revision has been compacted');
    assert.equal(out(29), '[exit 0]\nd/a\n\nd/b\n\nd/c\n\nd/d\n\n');
    assert.equal(out(30), '[exit 1]\nError: etcdserver: mvcc: required revision has been compacted');
    assert.equal(out(31), '[exit 0]\nFinished defragmenting etcd member[<EP>]\n');
    assert.match(out(33), /^\[exit 0\]\n\+-\+-\+-\+-\+\n\| ENDPOINT \| HEALTH \| TOOK \| ERROR \|\n\+-\+-\+-\+-\+\n\| <EP> \| true \| <T> \| \|\n\+-\+-\+-\+-\+\n$/);
    assert.equal(out(32), '[exit 0]\n[{"endpoint":"<EP>","health":true,"took":"<T>"}]\n');
  });

  it('endpoint status -w table and endpoint hashkv -w table', async () => {
    const status = await etcdctl(ep, ['endpoint', 'status', '-w', 'table']);
    assert.equal(status.code, 0, status.errors);
    const rows = status.stdout.split('\n');
    assert.match(rows[1] ?? '', /^\| +ENDPOINT +\| +ID +\| VERSION \| DB SIZE \| IS LEADER \| IS LEARNER \| RAFT TERM \| RAFT INDEX \| RAFT APPLIED INDEX \| ERRORS \|$/);
    const cells = (rows[3] ?? '').split('|').map((c) => c.trim());
    assert.equal(cells[1], ep);
    assert.equal(cells[2], BigInt(srv.member.id).toString(16));
    assert.match(cells[4] ?? '', /^[\d.]+ (B|kB|MB)$/);
    assert.deepEqual([cells[5], cells[6], cells[10]], ['true', 'false', '']);
    assert.ok(Number(cells[8]) > 0 && Number(cells[9]) >= Number(cells[8]) - 0, status.stdout);

    const hash = async (): Promise<string> => {
      const r = await etcdctl(ep, ['endpoint', 'hashkv', '-w', 'table']);
      const m = new RegExp(`^\\| ${ep.replaceAll('.', '\\.')} \\| +(\\d+) \\|$`, 'm').exec(r.stdout);
      assert.ok(m !== null, r.stdout + r.errors);
      return m[1]!;
    };
    const h1 = await hash();
    assert.equal(await hash(), h1, 'the hash is stable while nothing is written');
    assert.equal((await etcdctl(ep, ['put', 'hash/k', 'v'])).stdout, 'OK\n');
    assert.notEqual(await hash(), h1, 'a write changes the hash');
  });

  it('gives the same outputs as a real etcd 3.4 for the same script', { skip: skipDiff }, async () => {
    const ref = await startReferenceEtcd();
    try {
      const reference = await runScript(ref.endpoint);
      for (let i = 0; i < SCRIPT.length; i++) assert.equal(outputs[i], reference[i], `step ${i}: ${SCRIPT[i]?.args.join(' ')}`);
    } finally {
      await ref.close();
    }
  });
});

/** `check perf` runs about 60 s by design; it runs only when asked. */
const skipPerf = skipEtcdctl !== false ? skipEtcdctl : process.env['KEYSPAN_CHECK_PERF'] !== '1' ? 'check perf takes ~60 s: set KEYSPAN_CHECK_PERF=1 to run it' : false;

describe('etcdctl check perf against keyspan', { skip: skipPerf }, () => {
  it('runs --load=s to completion and prints its verdict lines', async () => {
    const srv = await startTestServer();
    try {
      const ep = srv.server.addresses[0] ?? '';
      const r = await etcdctl(ep, ['check', 'perf', '--load=s'], { timeoutMs: 180_000 });
      // The verdicts depend on the machine's speed; the lines and their shape do not.
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.errors}`);
      assert.match(r.stdout, /^(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes\/s$/m, r.stdout + r.errors);
      assert.match(r.stdout, /^(PASS: Slowest request took|Slowest request took too long:) [\d.]+s$/m);
      assert.match(r.stdout, /^(PASS: Stddev is|Stddev too high:) [\d.]+s$/m);
      assert.match(r.stdout, /^(PASS|FAIL)\n$/m, 'the final verdict line');
      assert.equal(r.code === 0, /^PASS\n$/m.test(r.stdout), 'exit 0 exactly when the verdict is PASS');
      // The check cleans up its keys.
      assert.equal((await etcdctl(ep, ['get', '/etcdctl-check-perf/', '--prefix', '--keys-only'])).stdout, '');
    } finally {
      await srv.close();
    }
  });
});
