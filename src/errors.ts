/**
 * fastgru's error classes. Each has a stable `code`; messages name the argument, what was expected
 * and what came, e.g. `x: expected shape [T, B, 64], got [10, 3, 32]`.
 */

export class FastGruError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A tensor's shape does not fit (wrong rank, a wrong size, a product that does not match). */
export class ShapeError extends FastGruError {
  constructor(message: string) {
    super('ERR_SHAPE', message);
  }
}

/** A value has the wrong element type (for example Float64Array where Float32Array is needed). */
export class DTypeError extends FastGruError {
  constructor(message: string) {
    super('ERR_DTYPE', message);
  }
}

/** An argument has the wrong kind or value (lengths out of range, a non-object, a missing tensor). */
export class ArgumentError extends FastGruError {
  constructor(message: string) {
    super('ERR_ARGUMENT', message);
  }
}

/** A constructor or call option is missing, of the wrong type, or out of range. */
export class OptionError extends FastGruError {
  constructor(message: string) {
    super('ERR_OPTION', message);
  }
}

/** A state dict has a missing, unexpected or wrongly shaped entry. */
export class StateDictError extends FastGruError {
  constructor(message: string) {
    super('ERR_STATE_DICT', message);
  }
}

/** The requested backend cannot run here; the message says why. */
export class BackendUnavailableError extends FastGruError {
  constructor(message: string) {
    super('ERR_BACKEND_UNAVAILABLE', message);
  }
}

/** A result or working buffer could not be allocated. */
export class OutOfMemoryError extends FastGruError {
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

/** An async call was aborted through its AbortSignal before it ran; `cause` is the signal's reason. */
export class AbortedError extends FastGruError {
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

/** A batcher's queue is full: the request was not queued (retry later, or raise maxQueue). */
export class QueueFullError extends FastGruError {
  constructor(message: string) {
    super('ERR_QUEUE_FULL', message);
  }
}

/** A batcher or session was closed: the request was not run. */
export class ClosedError extends FastGruError {
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
