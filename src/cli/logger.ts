/**
 * The CLI's structured log: JSON lines on stderr in the shape of etcd's zap
 * logger — `{"level":"info","ts":"2026-…Z","msg":"…", …fields}` — through
 * pino. stderr keeps stdout free for command output; writes are synchronous
 * so the lines before an exit are never lost.
 */
import { pino, type Logger as PinoLogger } from 'pino';

/** Log levels, as etcd's --log-level names them. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Fields of one log line. */
export type LogFields = Record<string, unknown>;

/** The CLI's logger: a message and fields per line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** A logger writing to file descriptor `fd` (default stderr) at `level` and above. */
export function createLogger(options: { level?: LogLevel; fd?: number } = {}): Logger {
  const level = options.level === 'panic' ? 'fatal' : (options.level ?? 'info');
  const p: PinoLogger = pino(
    {
      level,
      base: null,
      // zap's key and format: "ts" with an ISO-8601 time.
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
  // The message goes in the object ahead of the fields, so lines read as
  // etcd's do: level, ts, msg, then fields.
  const at = (write: (obj: object) => void) => (msg: string, fields: LogFields = {}) => write({ msg, ...fields });
  return {
    debug: at((o) => p.debug(o)),
    info: at((o) => p.info(o)),
    warn: at((o) => p.warn(o)),
    error: at((o) => p.error(o)),
  };
}

/** The text of an error for a log field. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
