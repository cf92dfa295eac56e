/**
 * The test side of a node child process: forks test/node/node-process
 * (.ts under tsx, .js when compiled — resolved next to this file), waits for
 * its ready message, sends commands with per-request timeouts, and kills it
 * with SIGKILL. Every pending request fails at once when the child exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command, NodeProcessConfig, Reply, ReadyMessage } from './protocol.js';

/** How long a child may take to open its node (tsx compiles on the fly). */
export const START_TIMEOUT_MS = 20_000;
/** Default per-request timeout. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** How long a graceful close may take before SIGKILL. */
const CLOSE_TIMEOUT_MS = 5_000;
/** Output lines of a child kept for failure reports. */
const LOG_LINES_MAX = 80;

const here = fileURLToPath(import.meta.url);
/** The child entry next to this module, with this module's extension (.ts under tsx, .js compiled). */
const ENTRY = join(dirname(here), `node-process${here.endsWith('.ts') ? '.ts' : '.js'}`);
/** The parent's loader flags (e.g. --import tsx) without the test runner's own flags. */
const EXEC_ARGV = process.execArgv.filter((a) => !a.startsWith('--test'));

/** Why a request got no reply. */
export class ProcError extends Error {
  override readonly name = 'ProcError';
  constructor(
    readonly code: 'EXITED' | 'TIMEOUT' | 'START_FAILED',
    message: string,
  ) {
    super(message);
  }
}

/** One running node child process. */
export class NodeProc {
  private readonly pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;
  /** The last lines the child wrote to stdout/stderr. */
  readonly log: string[] = [];

  private constructor(
    readonly nodeId: number,
    private readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        this.log.push(line);
        if (this.log.length > LOG_LINES_MAX) this.log.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (m: Reply) => {
      if (typeof (m as { id?: unknown }).id !== 'number') return;
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      p.resolve(m);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new ProcError('EXITED', `node ${nodeId} exited (${this.exitInfo}) before answering request ${id}`));
        }
        this.pending.clear();
        resolve();
      });
    });
  }

  /** Forks a node with `config` and waits until it is open and listening. */
  static async start(config: NodeProcessConfig): Promise<NodeProc> {
    const child = fork(ENTRY, [JSON.stringify(config)], { execArgv: EXEC_ARGV, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const proc = new NodeProc(config.nodeId, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new ProcError('START_FAILED', `node ${config.nodeId} not ready after ${START_TIMEOUT_MS} ms:\n${proc.log.join('\n')}`));
      }, START_TIMEOUT_MS);
      const onMessage = (m: ReadyMessage): void => {
        if (m.ready !== true) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      void proc.exited.then(() => {
        clearTimeout(timer);
        reject(new ProcError('START_FAILED', `node ${config.nodeId} exited during start (${proc.exitInfo}):\n${proc.log.join('\n')}`));
      });
    });
    return proc;
  }

  /** True until the child has exited. */
  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Sends a command; resolves with the reply, rejects with ProcError on exit or timeout. */
  request(cmd: Command, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Reply> {
    if (!this.alive || !this.child.connected) {
      return Promise.reject(new ProcError('EXITED', `node ${this.nodeId} is not running`));
    }
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProcError('TIMEOUT', `node ${this.nodeId}: no reply to ${cmd.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ ...cmd, id }, (err) => {
        if (err === null) return;
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new ProcError('EXITED', `node ${this.nodeId}: send failed: ${err.message}`));
      });
    });
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful close (flushes and closes the node), falling back to SIGKILL. */
  async close(): Promise<void> {
    if (!this.alive) return;
    await this.request({ op: 'close' }, CLOSE_TIMEOUT_MS).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), CLOSE_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
