/**
 * fastgru's error classes. Each has a stable `code`; messages name the argument, what was expected
 * and what came, e.g. `x: expected shape [T, B, 64], got [10, 3, 32]`.
 */

/**
 * The base class of every error fastgru throws or rejects with: test `error instanceof FastGruError`
 * for any of them, or `error.code` for one kind. Other errors (a TypeError from a getter of yours, a
 * file system error's cause) pass through unchanged or as a subclass's `cause`.
 *
 * @example
 * ```ts
 * import { GRU, FastGruError } from 'fastgru';
 *
 * try {
 *   new GRU({ inputSize: 8, hiddenSize: 0 });
 * } catch (error) {
 *   if (error instanceof FastGruError) console.log(error.code); // 'ERR_OPTION'
 * }
 * ```
 */
export class FastGruError extends Error {
  /**
   * The kind of error, stable across versions (messages may change): 'ERR_SHAPE', 'ERR_DTYPE',
   * 'ERR_ARGUMENT', 'ERR_OPTION', 'ERR_STATE_DICT', 'ERR_BACKEND_UNAVAILABLE', 'ERR_OUT_OF_MEMORY',
   * 'ERR_ABORTED', 'ERR_QUEUE_FULL' or 'ERR_CLOSED', one per subclass.
   */
  readonly code: string;
  /**
   * Sets `name` to the class's name (`ShapeError`, ...), so stack traces and `String(error)` say which.
   *
   * @param code - The stable code, {@link FastGruError.code}; each subclass passes its own.
   * @param message - The whole message: fastgru's say `${argument}: expected ..., got ...`.
   */
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Code `ERR_SHAPE`: a tensor's shape does not fit (wrong rank, a wrong size, a product that does not match). */
export class ShapeError extends FastGruError {
  /**
   * An error of code `ERR_SHAPE` with this message.
   *
   * @param message - The whole message, naming the argument, what was expected and what came.
   */
  constructor(message: string) {
    super('ERR_SHAPE', message);
  }
}

/** Code `ERR_DTYPE`: a value has the wrong element type (for example Float64Array where Float32Array is needed). */
export class DTypeError extends FastGruError {
  /**
   * An error of code `ERR_DTYPE` with this message.
   *
   * @param message - The whole message, naming the argument, what was expected and what came.
   */
  constructor(message: string) {
    super('ERR_DTYPE', message);
  }
}

/** Code `ERR_ARGUMENT`: an argument has the wrong kind or value (lengths out of range, a non-object, a missing tensor). */
export class ArgumentError extends FastGruError {
  /**
   * An error of code `ERR_ARGUMENT` with this message.
   *
   * @param message - The whole message, naming the argument, what was expected and what came.
   */
  constructor(message: string) {
    super('ERR_ARGUMENT', message);
  }
}

/** Code `ERR_OPTION`: a constructor or call option is missing, unknown, of the wrong type, or out of range. */
export class OptionError extends FastGruError {
  /**
   * An error of code `ERR_OPTION` with this message.
   *
   * @param message - The whole message, naming the argument, what was expected and what came.
   */
  constructor(message: string) {
    super('ERR_OPTION', message);
  }
}

/** Code `ERR_STATE_DICT`: a state dict (or weights in another layout) has a missing, unexpected or wrongly shaped entry. */
export class StateDictError extends FastGruError {
  /**
   * An error of code `ERR_STATE_DICT` with this message.
   *
   * @param message - The whole message, naming the argument, what was expected and what came.
   */
  constructor(message: string) {
    super('ERR_STATE_DICT', message);
  }
}

/** Code `ERR_BACKEND_UNAVAILABLE`: the requested backend cannot run here; the message says why. */
export class BackendUnavailableError extends FastGruError {
  /**
   * An error of code `ERR_BACKEND_UNAVAILABLE` with this message.
   *
   * @param message - The whole message, with what was tried and why it failed.
   */
  constructor(message: string) {
    super('ERR_BACKEND_UNAVAILABLE', message);
  }
}

/** Code `ERR_OUT_OF_MEMORY`: a result or working buffer could not be allocated. */
export class OutOfMemoryError extends FastGruError {
  /**
   * An error of code `ERR_OUT_OF_MEMORY` with this message.
   *
   * @param message - The whole message, with the allocation's own error.
   */
  constructor(message: string) {
    super('ERR_OUT_OF_MEMORY', message);
  }
}

/**
 * Runs a computation, turning the RangeError V8 throws when an array cannot be allocated into an
 * OutOfMemoryError; everything else passes through.
 */
export function withMemoryErrors<T>(compute: () => T): T {
  try {
    return compute();
  } catch (error) {
    throw memoryError(error);
  }
}

export function memoryError(error: unknown): unknown {
  if (error instanceof RangeError && /allocat|array (buffer )?length|out of memory/i.test(error.message)) {
    return new OutOfMemoryError(`fastgru: out of memory: ${error.message}`);
  }
  return error;
}

/** Code `ERR_ABORTED`: an async call was aborted through its AbortSignal before it ran; `cause` is the signal's reason. */
export class AbortedError extends FastGruError {
  /**
   * An error of code `ERR_ABORTED` with this message.
   *
   * @param message - The whole message.
   * @param options - `cause`: the AbortSignal's reason (`signal.reason`), kept as the error's `cause`.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ABORTED', message);
    if (options && 'cause' in options) this.cause = options.cause;
  }
}

type ErrorClass = new (message: string) => FastGruError;

/** `[10, 3, 32]` */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A short description of what the caller passed, for the "got ..." half of a message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    return 'length' in value ? `${name}(${(value as unknown as { length: number }).length})` : name;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
  }
  return typeof value;
}

/**
 * The one builder of argument errors: `${arg}: expected ${expected}, got ${got}`.
 * `got` is described with `describe` unless it is already a string of the caller's making.
 */
export function argError(
  ErrorType: ErrorClass,
  arg: string,
  expected: string,
  got: unknown,
  { gotIsText = false }: { gotIsText?: boolean } = {},
): FastGruError {
  const gotText = gotIsText ? String(got) : describe(got);
  return new ErrorType(`${arg}: expected ${expected}, got ${gotText}`);
}

export function abortedError(signal: AbortSignal): AbortedError {
  return new AbortedError('the call was aborted before it ran', { cause: signal.reason });
}

/** Code `ERR_QUEUE_FULL`: a batcher's queue is full, so the request was not queued (retry later, or raise maxQueue). */
export class QueueFullError extends FastGruError {
  /**
   * An error of code `ERR_QUEUE_FULL` with this message.
   *
   * @param message - The whole message, with what waits and the limit it reached.
   */
  constructor(message: string) {
    super('ERR_QUEUE_FULL', message);
  }
}

/** Code `ERR_CLOSED`: a batcher or session was closed, so the request was not run. */
export class ClosedError extends FastGruError {
  /**
   * An error of code `ERR_CLOSED` with this message.
   *
   * @param message - The whole message, saying what was closed.
   */
  constructor(message: string) {
    super('ERR_CLOSED', message);
  }
}

/**
 * Where an async API was called from, taken when it was called (V8 records the frames; the text is
 * only formatted if an error needs it), so an error that settles the promise later can say where
 * the call came from (the rest of its stack is the event loop's). Pair with `withCallerStack`.
 */
export type CallerStack = { readonly stack?: string };

export function callerStack(): CallerStack {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, callerStack);
  return holder;
}

/** Appends the caller's frames (from `callerStack`) to an error's stack; returns the error. */
export function withCallerStack<E>(error: E, caller: CallerStack): E {
  const stack = caller.stack;
  if (error instanceof Error && stack) {
    const frames = stack.split('\n').slice(1).join('\n');
    if (frames && !error.stack?.includes(frames)) error.stack = `${error.stack ?? String(error)}\n    --- called from ---\n${frames}`;
  }
  return error;
}
