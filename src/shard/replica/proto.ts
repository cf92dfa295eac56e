/**
 * Loads `proto/keyspan/rangepb.proto` once, at runtime, with protobufjs, the
 * same way the raft transport loads its own file (src/group/transport/
 * proto-root.ts, whose package-root finder is reused): the .proto file is the
 * single source of truth and nothing is generated at build time.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { findPackageRoot } from '../../group/transport/proto-root.js';

/** Path of the range command .proto file, relative to the package root. */
export const RANGE_PROTO_RELATIVE_PATH = join('proto', 'keyspan', 'rangepb.proto');
/** Fully-qualified protobuf package of range commands. */
export const RANGE_PROTO_PACKAGE = 'keyspan.rangepb';

let cachedRoot: protobuf.Root | undefined;

/** The parsed rangepb.proto (parsed on first use, then cached for the process). */
export function rangeProtoRoot(): protobuf.Root {
  if (cachedRoot === undefined) {
    const here = dirname(fileURLToPath(import.meta.url));
    // keepCase: field names stay snake_case as in the .proto file.
    cachedRoot = new protobuf.Root().loadSync(join(findPackageRoot(here), RANGE_PROTO_RELATIVE_PATH), { keepCase: true });
    cachedRoot.resolveAll();
  }
  return cachedRoot;
}

/** A message type of the rangepb package, e.g. `lookupRangeType('RangeCommand')`. */
export function lookupRangeType(name: string): protobuf.Type {
  // Cached: protobufjs walks the namespace tree per lookup, and every entry is encoded and decoded.
  let type = rangeTypes.get(name);
  if (type === undefined) {
    type = rangeProtoRoot().lookupType(`${RANGE_PROTO_PACKAGE}.${name}`);
    rangeTypes.set(name, type);
  }
  return type;
}

/** Types already looked up, by short name (the root never changes once loaded). */
const rangeTypes = new Map<string, protobuf.Type>();
