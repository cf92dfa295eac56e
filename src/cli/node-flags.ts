/**
 * Node.js flags a server process runs best with; `npm start`, `keyspan
 * cluster start` and `bench:compare` start members with them, and
 * docs/operations.md recommends them for every other way of starting one.
 *
 * A young generation of 2 × 32 MiB (V8's default semi-space is 16 MiB):
 * reads of many keys (a page of a list: a Buffer per key and per value, and
 * the objects around them) fill the young generation quickly, and each
 * scavenge copies what is still live. 500-key pages of 1 KiB values at
 * 10 × 100 clients: +17 % pages/s, −14 % CPU per page; puts unchanged
 * (docs/benchmarks.md). V8 reads the size only at startup, so it must be a
 * command-line flag (or in NODE_OPTIONS), not set at run time.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** `execArgv` plus whichever of {@link SERVER_NODE_FLAGS} it does not already set. */
export function serverNodeArgs(execArgv: readonly string[]): string[] {
  const set = (flag: string): boolean => execArgv.some((a) => a.split('=')[0] === flag.split('=')[0]);
  return [...execArgv, ...SERVER_NODE_FLAGS.filter((f) => !set(f))];
}
