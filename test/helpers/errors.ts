// What a call throws or a promise rejects with, for tests that then check its class and message.
import { expect } from 'vitest';

/** The error `call` throws; fails the test if it returns. */
export function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return expect.fail('expected the call to throw, but it returned');
}

/**
 * The reason a promise rejects; fails the test if it resolves. Given a function, it also checks that
 * the call returns a promise and does not throw synchronously (an async API reports every error by
 * rejecting).
 */
export async function rejectionOf(promiseOrCall: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  let promise: Promise<unknown> | undefined;
  if (typeof promiseOrCall === 'function') {
    expect(() => {
      promise = promiseOrCall();
    }, 'an async call must reject, not throw synchronously').not.toThrow();
    expect(promise).toBeInstanceOf(Promise);
  } else {
    promise = promiseOrCall;
  }
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return expect.fail('expected the promise to reject, but it resolved');
}
