import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { UnaryCallInfo } from '../../src/gateway/context.js';
import type { EtcdMessage } from '../../src/gateway/proto.js';

type UnaryCall = grpc.ServerUnaryCall<EtcdMessage, EtcdMessage>;

/** The part of a grpc-js unary call the CallInfo uses: the `cancelled` flag and event. */
function fakeCall(): EventEmitter & { cancelled: boolean } {
  return Object.assign(new EventEmitter(), { cancelled: false });
}

function cancel(call: EventEmitter & { cancelled: boolean }): void {
  call.cancelled = true;
  call.emit('cancelled', 'cancelled');
}

test('a unary call info listens for cancellation only once its signal is asked for', () => {
  const call = fakeCall();
  const info = new UnaryCallInfo(call as unknown as UnaryCall, new grpc.Metadata());
  assert.equal(call.listenerCount('cancelled'), 0);
  const signal = info.signal;
  assert.equal(info.signal, signal, 'one signal per call');
  assert.equal(call.listenerCount('cancelled'), 1);
  assert.equal(signal.aborted, false);
  cancel(call);
  assert.equal(signal.aborted, true);
});

test('a signal first asked for after the call was cancelled starts aborted', () => {
  const call = fakeCall();
  const info = new UnaryCallInfo(call as unknown as UnaryCall, new grpc.Metadata());
  cancel(call);
  assert.equal(info.signal.aborted, true);
  assert.equal(call.listenerCount('cancelled'), 0);
});

test('an answered call stops listening; one never asked for its signal had nothing to remove', () => {
  const asked = fakeCall();
  const info = new UnaryCallInfo(asked as unknown as UnaryCall, new grpc.Metadata());
  void info.signal;
  info.answered();
  assert.equal(asked.listenerCount('cancelled'), 0);
  const quiet = fakeCall();
  new UnaryCallInfo(quiet as unknown as UnaryCall, new grpc.Metadata()).answered();
  assert.equal(quiet.listenerCount('cancelled'), 0);
});
