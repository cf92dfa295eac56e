/**
 * File primitives of the WAL engine (wal.ts) on raw descriptors: positional
 * writes that finish, fdatasync, directory sync, preallocated files, and the
 * directory's lock. Promise wrappers over the callback API, which costs one
 * libuv pool round trip per call and no FileHandle bookkeeping.
 */
import fs from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Chunk of zeros written at a time when preallocating. */
const ZERO_CHUNK_BYTES = 1 << 20;
let zeroChunk: Buffer | undefined;

/** Opens `path` with numeric `flags`. */
export function openFd(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, 0o644, (e, fd) => (e ? reject(e) : resolve(fd))));
}

/** Closes `fd`. */
export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve())));
}

/** Writes all of `buf` at `position` (a short write continues where it stopped). */
export async function writeAt(fd: number, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    done += await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, done, buf.length - done, position + done, (e, n) => (e ? reject(e) : resolve(n))),
    );
  }
}

/** {@link writeAt} on the calling thread: blocks it for the write's duration. */
export function writeAtSync(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

/** fdatasync(2): the file's data (and the size, if it changed) reach the disk. */
export function dataSync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** fsync(2) of `dir`, so names created, renamed or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, fs.constants.O_RDONLY);
  try {
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  } finally {
    await closeFd(fd);
  }
}

/** Truncates `path` to `bytes` and syncs it. */
export async function truncateSynced(path: string, bytes: number): Promise<void> {
  const fd = await openFd(path, fs.constants.O_WRONLY);
  try {
    await new Promise<void>((resolve, reject) => fs.ftruncate(fd, bytes, (e) => (e ? reject(e) : resolve())));
    await dataSync(fd);
  } finally {
    await closeFd(fd);
  }
}

/**
 * Creates `path` holding `bytes` zeros, written (not a sparse hole) and
 * synced: later writes into it allocate no blocks and change no size, so
 * their fdatasync has no file metadata to commit.
 */
export async function createPreallocated(path: string, bytes: number): Promise<void> {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  const fd = await openFd(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC);
  try {
    for (let at = 0; at < bytes; at += ZERO_CHUNK_BYTES) {
      await writeAt(fd, at + ZERO_CHUNK_BYTES <= bytes ? zeroChunk : zeroChunk.subarray(0, bytes - at), at);
    }
    await dataSync(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Removes `path`; a missing file is fine. */
export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** Name of the lock file in a WAL directory. */
export const LOCK_FILE = 'LOCK';

/** Directories this process holds the lock of. */
const lockedHere = new Set<string>();

/**
 * Takes the directory's lock: `LOCK` names the holding process. A lock
 * whose process no longer runs (a crash) is taken over; one held by a
 * running process, this one included, throws.
 */
export async function lockDir(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  if (lockedHere.has(path)) throw new Error(`${dir} is already open in this process`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      lockedHere.add(path);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    const holder = text === undefined ? undefined : Number.parseInt(text, 10);
    if (holder !== undefined && Number.isSafeInteger(holder) && holder !== process.pid && processRuns(holder)) {
      throw new Error(`${dir} is locked by process ${holder} (${path})`);
    }
    await removeFile(path); // left by a process that is gone
  }
  throw new Error(`could not take the lock ${path}`);
}

/** Releases a lock taken by {@link lockDir}. */
export async function unlockDir(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  if (!lockedHere.delete(path)) return;
  await removeFile(path);
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
