/**
 * The real etcdctl (3.4, Debian's etcd-client) against keyspan's etcd server:
 * put/get with every flag, del, interactive txn, compaction and its errors,
 * endpoint status/health/hashkv, member list, alarm list, defrag — asserting
 * on the outputs. Where the real etcd server is installed too, the same
 * script runs against a real etcd 3.4 (started here on loopback ports with a
 * temp data dir) and the outputs must be identical modulo addresses, ids,
 * raft terms and timings. A last test runs `keyspan start` as a child process
 * (LevelDB in a temp dir) and checks data survives a restart.
 *
 * Skipped, with a message, where etcdctl is not installed (CI installs it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import {
  etcdctl,
  freePort,
  normalizeEtcdctl as normalize,
  skipDiff,
  skipEtcdctl as skip,
  startReferenceEtcd,
  stopChild,
  until,
} from './etcd-diff.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Running compiled (dist/): start the compiled CLI; from source: through tsx. */
const COMPILED = fileURLToPath(import.meta.url).endsWith('.js');
const CLI_MAIN = join(REPO, COMPILED ? 'src/cli/main.js' : 'src/cli/main.ts');
const NODE_LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];

/** One etcdctl step of the shared script. */
interface Step {
  readonly args: readonly string[];
  readonly stdin?: string;
}

/** The script run against keyspan (and against real etcd for the differential check). */
const SCRIPT: readonly Step[] = [
  { args: ['put', 'foo', 'bar'] },
  { args: ['put', 'foo2', 'bar2', '--prev-kv'] },
  { args: ['put', 'foo2', 'bar3', '--prev-kv'] },
  { args: ['put', 'a/1', 'x1'] },
  { args: ['put', 'a/2', 'x2'] },
  { args: ['put', 'a/3', 'x3'] },
  { args: ['put', 'a/2', 'x22'] },
  { args: ['get', 'foo'] },
  { args: ['get', 'a/', '--prefix'] },
  { args: ['get', 'a/', '--prefix', '--limit=2'] },
  { args: ['get', 'a/', '--prefix', '--sort-by=MODIFY', '--order=DESCEND'] },
  { args: ['get', 'a/', '--prefix', '--sort-by=VALUE', '--order=ASCEND', '--keys-only'] },
  { args: ['get', 'a/', '--prefix', '--sort-by=CREATE', '--order=DESCEND'] },
  { args: ['get', 'a/', '--prefix', '--sort-by=VERSION', '--order=DESCEND', '--limit=1'] },
  { args: ['get', 'a/', '--prefix', '--keys-only'] },
  { args: ['get', 'a/', '--prefix', '--print-value-only'] },
  { args: ['get', 'a/', '--prefix', '--limit=1', '-w', 'json'] },
  { args: ['get', 'a/2', '--rev=6'] },
  { args: ['get', 'a/', '--from-key'] },
  { args: ['get', 'foo', '-w', 'json'] },
  { args: ['get', 'foo', '--consistency=s'] },
  { args: ['get', 'foo', '-w', 'fields'] },
  { args: ['put', 'foo2', 'bar4', '--prev-kv', '-w', 'json'] },
  { args: ['del', 'a/1', '--prev-kv'] },
  { args: ['del', 'a/', '--prefix'] },
  { args: ['del', 'nothing'] },
  { args: ['txn', '-i'], stdin: 'value("foo") = "bar"\n\nput foo baz\nget foo\n\nput nope nope\n\n' },
  { args: ['txn', '-i'], stdin: 'version("foo") = "0"\n\nput x y\n\nget foo\n\n' },
  { args: ['txn', '-i', '-w', 'json'], stdin: 'mod("foo") > "1"\ncreate("foo2") != "0"\n\nput t1 1\nput t2 2\n\n\n' },
  { args: ['txn', '-i'], stdin: 'create("foo") > "0"\nversion("t1") < "2"\n\ndel t1 --prev-kv\n\n\n' },
  { args: ['compaction', '5'] },
  { args: ['compaction', '5'] },
  { args: ['compaction', '1000'] },
  { args: ['get', 'foo', '--rev=3'] },
  { args: ['get', 'foo', '--rev=1000'] },
  { args: ['put', '', 'x'] },
  { args: ['put', 'k', 'v', '--lease=1234'] },
  { args: ['put', 'kk', '--ignore-value'] },
  { args: ['put', 'foo', 'nv', '--ignore-lease'] },
  { args: ['get', 'foo'] },
  { args: ['endpoint', 'health'] },
  { args: ['alarm', 'list'] },
  { args: ['defrag'] },
];

async function runScript(endpoint: string): Promise<string[]> {
  const out: string[] = [];
  for (const step of SCRIPT) {
    const r = await etcdctl(endpoint, step.args, step.stdin === undefined ? {} : { stdin: step.stdin });
    out.push(normalize(`$ ${step.args.join(' ')}\n[exit ${r.code}]\n${r.stdout}${r.errors}`, endpoint));
  }
  return out;
}

describe('etcdctl against keyspan', { skip }, () => {
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

  const outputOf = (i: number): string => outputs[i] ?? '';

  it('put and get with --prefix, --limit, --sort-by, --order, --rev, --keys-only, --print-value-only, -w json/fields', () => {
    assert.equal(outputOf(0), '$ put foo bar\n[exit 0]\nOK\n');
    assert.equal(outputOf(2), '$ put foo2 bar3 --prev-kv\n[exit 0]\nOK\nfoo2\nbar2\n');
    assert.equal(outputOf(7), '$ get foo\n[exit 0]\nfoo\nbar\n');
    assert.equal(outputOf(8), '$ get a/ --prefix\n[exit 0]\na/1\nx1\na/2\nx22\na/3\nx3\n');
    assert.equal(outputOf(9), '$ get a/ --prefix --limit=2\n[exit 0]\na/1\nx1\na/2\nx22\n');
    assert.equal(outputOf(10), '$ get a/ --prefix --sort-by=MODIFY --order=DESCEND\n[exit 0]\na/2\nx22\na/3\nx3\na/1\nx1\n');
    assert.equal(outputOf(11), '$ get a/ --prefix --sort-by=VALUE --order=ASCEND --keys-only\n[exit 0]\na/1\n\na/2\n\na/3\n\n');
    assert.equal(outputOf(12), '$ get a/ --prefix --sort-by=CREATE --order=DESCEND\n[exit 0]\na/3\nx3\na/2\nx22\na/1\nx1\n');
    assert.equal(outputOf(13), '$ get a/ --prefix --sort-by=VERSION --order=DESCEND --limit=1\n[exit 0]\na/2\nx22\n');
    assert.equal(outputOf(15), '$ get a/ --prefix --print-value-only\n[exit 0]\nx1\nx22\nx3\n');
    assert.equal(
      outputOf(16),
      '$ get a/ --prefix --limit=1 -w json\n[exit 0]\n{"header":{"revision":8},"kvs":[{"key":"YS8x","create_revision":5,"mod_revision":5,"version":1,"value":"eDE="}],"more":true,"count":3}\n',
    );
    assert.equal(outputOf(17), '$ get a/2 --rev=6\n[exit 0]\na/2\nx2\n');
    assert.equal(
      outputOf(19),
      '$ get foo -w json\n[exit 0]\n{"header":{"revision":8},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}],"count":1}\n',
    );
    assert.equal(outputOf(20), '$ get foo --consistency=s\n[exit 0]\nfoo\nbar\n');
    assert.match(outputOf(21), /"Revision" : 8\n"Key" : "foo"\n"CreateRevision" : 2\n"ModRevision" : 2\n"Version" : 1\n"Value" : "bar"\n"Lease" : 0\n"More" : false\n"Count" : 1\n/);
  });

  it('del with --prev-kv and --prefix', () => {
    assert.equal(outputOf(23), '$ del a/1 --prev-kv\n[exit 0]\n1\na/1\nx1\n');
    assert.equal(outputOf(24), '$ del a/ --prefix\n[exit 0]\n2\n');
    assert.equal(outputOf(25), '$ del nothing\n[exit 0]\n0\n');
  });

  it('interactive txn: compares, success and failure branches', () => {
    const prompt = 'compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n';
    assert.equal(outputOf(26), `$ txn -i\n[exit 0]\n${prompt}SUCCESS\n\nOK\n\nfoo\nbaz\n`);
    assert.equal(outputOf(27), `$ txn -i\n[exit 0]\n${prompt}FAILURE\n\nfoo\nbaz\n`);
    assert.equal(
      outputOf(28),
      `$ txn -i -w json\n[exit 0]\n${prompt}{"header":{"revision":13},"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":13}}}},{"Response":{"ResponsePut":{"header":{"revision":13}}}}]}\n`,
    );
    assert.equal(outputOf(29), `$ txn -i\n[exit 0]\n${prompt}SUCCESS\n\n1\nt1\n1\n`);
  });

  it('compaction, then compacted and future revision errors with etcd’s texts', () => {
    assert.equal(outputOf(30), '$ compaction 5\n[exit 0]\ncompacted revision 5\n');
    assert.equal(outputOf(31), '$ compaction 5\n[exit 1]\nError: etcdserver: mvcc: required revision has been compacted');
    assert.equal(outputOf(32), '$ compaction 1000\n[exit 1]\nError: etcdserver: mvcc: required revision is a future revision');
    assert.equal(outputOf(33), '$ get foo --rev=3\n[exit 1]\nError: etcdserver: mvcc: required revision has been compacted');
    assert.equal(outputOf(34), '$ get foo --rev=1000\n[exit 1]\nError: etcdserver: mvcc: required revision is a future revision');
  });

  it('put errors: empty key, unknown lease, --ignore-value on a missing key; --ignore-lease works', () => {
    assert.equal(outputOf(35), '$ put  x\n[exit 1]\nError: etcdserver: key is not provided');
    assert.equal(outputOf(36), '$ put k v --lease=1234\n[exit 1]\nError: etcdserver: requested lease not found');
    assert.equal(outputOf(37), '$ put kk --ignore-value\n[exit 1]\nError: etcdserver: key not found');
    assert.equal(outputOf(38), '$ put foo nv --ignore-lease\n[exit 0]\nOK\n');
    assert.equal(outputOf(39), '$ get foo\n[exit 0]\nfoo\nnv\n');
  });

  it('endpoint health, alarm list, defrag', () => {
    assert.equal(outputOf(40), '$ endpoint health\n[exit 0]\n<EP> is healthy: successfully committed proposal: took = <T>');
    assert.equal(outputOf(41), '$ alarm list\n[exit 0]\n');
    assert.equal(outputOf(42), '$ defrag\n[exit 0]\nFinished defragmenting etcd member[<EP>]\n');
  });

  it('endpoint status, endpoint hashkv and member list', async () => {
    const status = await etcdctl(ep, ['endpoint', 'status', '-w', 'json']);
    assert.equal(status.code, 0, status.errors);
    const st = JSON.parse(status.stdout) as Array<{ Endpoint: string; Status: Record<string, unknown> }>;
    assert.equal(st[0]?.Endpoint, ep);
    assert.equal(st[0]?.Status['version'], '3.4.0');
    assert.equal(st[0]?.Status['leader'], Number(srv.member.id));
    assert.ok(Number(st[0]?.Status['raftIndex']) > 0);
    const simple = await etcdctl(ep, ['endpoint', 'status']);
    assert.match(simple.stdout, new RegExp(`^${ep}, 1, 3\\.4\\.0, [\\d.]+ (B|kB|MB), true, false, \\d+, \\d+, \\d+, \\n$`));

    const h1 = await etcdctl(ep, ['endpoint', 'hashkv']);
    const h2 = await etcdctl(ep, ['endpoint', 'hashkv']);
    assert.match(h1.stdout, new RegExp(`^${ep}, \\d+\\n$`));
    assert.equal(h1.stdout, h2.stdout, 'the hash is stable while nothing is written');
    const hj = await etcdctl(ep, ['endpoint', 'hashkv', '-w', 'json']);
    assert.match(hj.stdout, /"compact_revision":5/);

    const members = await etcdctl(ep, ['member', 'list']);
    assert.equal(members.code, 0, members.errors);
    assert.equal(members.stdout, `1, started, test, ${srv.member.peerURLs[0]}, http://${ep}, false\n`);
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

describe('keyspan start (child process)', { skip }, () => {
  it('serves etcdctl with LevelDB in --data-dir, stops on SIGTERM, keeps data across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-start-'));
    const run = async (): Promise<{ child: ChildProcess; ep: string; log: () => string }> => {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const entry = `const { main } = await import(${JSON.stringify(CLI_MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
      const child = spawn(
        process.execPath,
        [
          ...NODE_LOADER_ARGS,
          '--input-type=module',
          '-e',
          entry,
          'start',
          `--data-dir=${dir}`,
          `--listen-client-urls=http://127.0.0.1:${clientPort}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        ],
        { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      await until(async () => stderr.includes('ready to serve client requests') || child.exitCode !== null, 'keyspan start');
      assert.equal(child.exitCode, null, stderr);
      return { child, ep: `127.0.0.1:${clientPort}`, log: () => stderr };
    };
    let first: ChildProcess | undefined;
    let second: ChildProcess | undefined;
    try {
      const a = await run();
      first = a.child;
      assert.match(a.log(), /"msg":"ready to serve client requests","clientUrls":\["http:\/\/127\.0\.0\.1:\d+"\]/);
      assert.equal((await etcdctl(a.ep, ['put', 'durable', 'yes'])).stdout, 'OK\n');
      assert.equal(await stopChild(a.child), 0, 'SIGTERM is a clean shutdown');
      assert.match(a.log(), /"msg":"stopped"/);

      const b = await run();
      second = b.child;
      const got = await etcdctl(b.ep, ['get', 'durable']);
      assert.equal(got.stdout, 'durable\nyes\n', got.errors);
      assert.equal(await stopChild(b.child, 'SIGINT'), 0, 'SIGINT too');
    } finally {
      if (first !== undefined) await stopChild(first, 'SIGKILL');
      if (second !== undefined) await stopChild(second, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
