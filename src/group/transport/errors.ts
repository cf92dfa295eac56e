/**
 * Typed errors of the raft transport. Each has a stable `code`; messages are
 * for humans and may change.
 *
 * Operating conditions (a peer is down, a queue is full) are never thrown at
 * the host: raft tolerates message loss, so they are counted and reported
 * through callbacks. These errors cover bad bytes from the wire and misuse of
 * the API.
 */

/** Base class: every error thrown by the transport on purpose extends it. */
export class TransportError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
    this.code = code;
  }
}

/** Bytes that do not decode to a valid message (bad protobuf, unsafe integer, unknown enum). */
export class TransportCodecError extends TransportError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT_CODEC', `raft transport codec: ${message}`, options);
    this.name = 'TransportCodecError';
  }
}

/** A value the host asked to encode cannot go on the wire (e.g. an unsafe integer). */
export class TransportEncodeError extends TransportError {
  constructor(message: string) {
    super('TRANSPORT_ENCODE', `raft transport encode: ${message}`);
    this.name = 'TransportEncodeError';
  }
}

/** The transport was used in a way its contract forbids (before start, after close, bad address). */
export class TransportUsageError extends TransportError {
  constructor(message: string) {
    super('TRANSPORT_USAGE', `raft transport: ${message}`);
    this.name = 'TransportUsageError';
  }
}
