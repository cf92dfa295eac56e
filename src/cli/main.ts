/**
 * The `keyspan` command line: `keyspan start` runs the embedded default,
 * `keyspan version` prints the version.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Engine, type EngineKind, engineKinds, openEngine } from '../storage/index.js';
import { MvccStore } from '../shard/index.js';

const VERSION = '0.1.0';

const USAGE = `Usage: keyspan <command> [flags]

Commands:
  start      Run the embedded default (one process) on ./data
  version    Print the version

Flags of start:
  --data-dir <dir>   Data directory (default ./data)
  --engine <kind>    Storage engine: leveldb (default), rocksdb, memory
`;

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'version':
    case '--version':
      process.stdout.write(`keyspan ${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`keyspan: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

/** One structured log line on stderr, so stdout stays free for command output. */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, ts: new Date().toISOString(), msg, ...fields })}\n`);
}

async function start(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        'data-dir': { type: 'string', default: './data' },
        engine: { type: 'string', default: 'leveldb' },
      },
      strict: true,
    });
  } catch (err: unknown) {
    process.stderr.write(`keyspan start: ${(err as Error).message}\n`);
    return 2;
  }
  const kind = parsed.values.engine as EngineKind;
  if (!engineKinds.includes(kind)) {
    process.stderr.write(`keyspan start: --engine must be one of ${engineKinds.join(', ')}\n`);
    return 2;
  }
  const dataDir = resolve(parsed.values['data-dir']);
  await mkdir(dataDir, { recursive: true });

  const engine: Engine = await openEngine({ kind, path: resolve(dataDir, kind) });
  const store = await MvccStore.open(engine, { prefix: FIRST_RANGE_PREFIX });
  log('info', 'opened storage', {
    dataDir,
    engine: kind,
    revision: store.currentRevision,
    compactRevision: store.compactRevision,
  });
  log('warn', 'the etcd v3 client API is not served yet: this build has the storage engines, the MVCC keyspace and the raft core, not yet the node and the gateway');
  log('info', 'running; press Ctrl-C to stop');

  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      log('info', 'shutting down', { signal });
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await store.close();
  await engine.close();
  log('info', 'stopped');
  return 0;
}

/** MVCC keys of the embedded default's single range. */
const FIRST_RANGE_PREFIX = Buffer.from([0x02, 0, 0, 0, 0, 0, 0, 0, 1]);
