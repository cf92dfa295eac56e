/**
 * The `keyspan` command line. Subcommands live in a dispatch table
 * ({@link COMMANDS}): each is a module of its own exporting one
 * `(args) => Promise<exitCode>` function; adding one is one row here.
 *
 * Runs as `keyspan <command>` (bin/keyspan.js) or directly as
 * `node dist/src/cli/main.js <command>`.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLUSTER_USAGE, clusterCommand } from './cluster.js';
import { SNAPSHOT_USAGE, snapshotCommand } from './snapshot.js';
import { START_USAGE, startCommand } from './start.js';

/** The version `keyspan version` prints. */
export const VERSION = '0.1.0';

/** One subcommand: a one-line summary, its help text, and its runner. */
export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(args: readonly string[]): Promise<number>;
}

/** Every subcommand, by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  start: {
    summary: 'Run one member (the embedded default, or a member of --initial-cluster)',
    usage: START_USAGE,
    run: startCommand,
  },
  cluster: {
    summary: 'Start or stop a local 3-member cluster in the background (cluster start|stop)',
    usage: CLUSTER_USAGE,
    run: clusterCommand,
  },
  snapshot: {
    summary: 'Restore a data dir from a backup, or describe a backup (snapshot restore|status)',
    usage: SNAPSHOT_USAGE,
    run: snapshotCommand,
  },
  version: {
    summary: 'Print the version',
    usage: 'Usage: keyspan version\n',
    run: async () => {
      process.stdout.write(`keyspan ${VERSION}\n`);
      return 0;
    },
  },
};

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`);
  return `Usage: keyspan <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun 'keyspan <command> --help' for a command's flags.\n`;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return COMMANDS['version']?.run([]) ?? 0;
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`keyspan: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
    process.stdout.write(command.usage);
    return 0;
  }
  return await command.run(rest);
}

/** Whether this module is the process's entry script (not imported). */
function isEntryScript(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryScript()) process.exitCode = await main(process.argv.slice(2));
