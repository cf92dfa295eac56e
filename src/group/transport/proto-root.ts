/**
 * Loads `proto/keyspan/raftpb.proto` once, at runtime, with protobufjs.
 *
 * The .proto file is the single source of truth for the wire format and the
 * gRPC service; nothing is generated at build time. Because tsc moves this
 * module from `src/group/transport/` to `dist/src/group/transport/`, the file
 * is found by walking up from this module to the package root (the first
 * directory holding a package.json), which works in both layouts.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { TransportUsageError } from './errors.js';

/** Path of the raft transport's .proto file, relative to the package root. */
export const RAFT_PROTO_RELATIVE_PATH = join('proto', 'keyspan', 'raftpb.proto');
/** Fully-qualified protobuf package of the raft transport. */
export const RAFT_PROTO_PACKAGE = 'keyspan.raftpb';
/** Directory levels walked up from this module looking for package.json; a bound, not a guess. */
const PACKAGE_ROOT_SEARCH_DEPTH_MAX = 8;

/** The nearest ancestor of `startDir` (inclusive) that holds a package.json. */
export function findPackageRoot(startDir: string): string {
  let dir = startDir;
  for (let i = 0; i < PACKAGE_ROOT_SEARCH_DEPTH_MAX; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new TransportUsageError(`no package.json found above ${startDir}`);
}

/** Absolute path of raftpb.proto in this installation. */
export function raftProtoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(findPackageRoot(here), RAFT_PROTO_RELATIVE_PATH);
}

let cachedRoot: protobuf.Root | undefined;

/** The parsed raftpb.proto (parsed on first use, then cached for the process). */
export function raftProtoRoot(): protobuf.Root {
  if (cachedRoot === undefined) {
    // keepCase: field names stay snake_case exactly as in the .proto, so the
    // codec's field names can be checked against the file by eye.
    cachedRoot = new protobuf.Root().loadSync(raftProtoPath(), { keepCase: true });
    cachedRoot.resolveAll();
  }
  return cachedRoot;
}

/** A message type of the raftpb package, e.g. `lookupRaftType('RaftMessageBatch')`. */
export function lookupRaftType(name: string): protobuf.Type {
  return raftProtoRoot().lookupType(`${RAFT_PROTO_PACKAGE}.${name}`);
}
