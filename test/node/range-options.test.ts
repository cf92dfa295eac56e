/**
 * The node's range options record (src/node/range-options.ts): only ranges
 * off the default engine are written, the record reads back, and a
 * malformed record is refused with DataDirError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataDirError, RANGE_OPTIONS_FILE, RangeOptionsTable } from '../../src/node/index.js';
import { tempDir } from './helpers.js';

test('RangeOptionsTable records non-default engines durably and reads them back', async () => {
  const dir = await tempDir('ropts');
  try {
    const table = await RangeOptionsTable.load(dir.path);
    assert.equal(table.recorded(1), undefined);
    await table.record(1, 'shared'); // the default: nothing written
    assert.deepEqual(await readdir(dir.path), []);
    await table.record(3, 'memory');
    await table.record(2, 'memory');
    assert.deepEqual(JSON.parse(await readFile(join(dir.path, RANGE_OPTIONS_FILE), 'utf8')), {
      format: 1,
      ranges: { '2': { engine: 'memory' }, '3': { engine: 'memory' } },
    });
    const again = await RangeOptionsTable.load(dir.path);
    assert.equal(again.recorded(2), 'memory');
    assert.equal(again.recorded(3), 'memory');
    assert.equal(again.recorded(1), undefined);
  } finally {
    await dir.cleanup();
  }
});

test('RangeOptionsTable refuses a malformed record', async () => {
  const dir = await tempDir('ropts-bad');
  const path = join(dir.path, RANGE_OPTIONS_FILE);
  try {
    for (const [text, why] of [
      ['{', /is not JSON/],
      ['{"format":2,"ranges":{}}', /unsupported or malformed/],
      ['{"format":1,"ranges":{"2":{"engine":"rocksdb"}}}', /malformed entry for range '2'/],
      ['{"format":1,"ranges":{"0":{"engine":"memory"}}}', /malformed entry for range '0'/],
    ] as const) {
      await writeFile(path, text);
      await assert.rejects(RangeOptionsTable.load(dir.path), (e: unknown) => e instanceof DataDirError && why.test(e.message), text);
    }
  } finally {
    await dir.cleanup();
  }
});
