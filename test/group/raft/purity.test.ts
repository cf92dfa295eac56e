import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Works from the source tree (tsx) and from dist/ (compiled: dist/test/group/raft -> src/group/raft).
function coreDir(): string {
  for (const up of ['../../../src/group/raft', '../../../../src/group/raft']) {
    const d = join(here, up);
    try {
      if (readdirSync(d).includes('raft.ts')) return d;
    } catch {
      // try the next candidate
    }
  }
  throw new Error('src/group/raft not found');
}

/** Removes comments so that prose ("no timers") does not trip the checks. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

test('the raft core imports no I/O, clock, timer or global randomness', () => {
  const dir = coreDir();
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 10, `found ${files.length} files`);
  const forbidden: Array<[RegExp, string]> = [
    [/from\s+['"]node:/, 'node: import'],
    [/import\s*\(\s*['"]node:/, 'node: dynamic import'],
    [/from\s+['"](fs|net|timers|os|child_process|dgram|http|https|tls|crypto|worker_threads|path)(\/[^'"]*)?['"]/, 'I/O module import'],
    [/require\s*\(/, 'require'],
    [/\bDate\b/, 'Date'],
    [/Math\.random/, 'Math.random'],
    [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, 'timer'],
    [/\bprocess\b/, 'process'],
    [/\bperformance\b/, 'performance'],
    [/\bBuffer\b/, 'Buffer'],
  ];
  for (const f of files) {
    const src = stripComments(readFileSync(join(dir, f), 'utf8'));
    for (const [re, what] of forbidden) assert.ok(!re.test(src), `${f} uses ${what}`);
    // Only relative imports of sibling modules.
    for (const m of src.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
      assert.ok(m[1]!.startsWith('./'), `${f} imports ${m[1]}`);
    }
  }
});
