// The fuzz suite's harness: the library under test (dist/, as the other child-process tests load it),
// the oracles every property shares (what a fastgru error must look like, how results are
// compared) and seeded data. Properties live in test/fuzz/props-*.mjs; test/fuzz/child.mjs runs them.
//
// Design §5 is the contract checked here: every call either returns a correct result or throws one
// of fastgru's error classes (with a code from the README's table and a message that starts with
// the argument's name); the process never dies.
import { loadNative } from '../../dist/backend/native.js';
import { jsBackend } from '../../dist/backend/js/index.js';
import * as api from '../../dist/index.js';
import { prng } from '../helpers/prng.mjs';

export { api, jsBackend };
/** mulberry32 (test/helpers/prng.mjs): data are a function of a seed the counterexample shows. */
export { prng };

/** The codes of the README's errors table, and the class each belongs to. */
export const API_CODES = {
  ERR_SHAPE: 'ShapeError',
  ERR_DTYPE: 'DTypeError',
  ERR_ARGUMENT: 'ArgumentError',
  ERR_OPTION: 'OptionError',
  ERR_STATE_DICT: 'StateDictError',
  ERR_BACKEND_UNAVAILABLE: 'BackendUnavailableError',
  ERR_ABORTED: 'AbortedError',
  ERR_OUT_OF_MEMORY: 'OutOfMemoryError',
  ERR_QUEUE_FULL: 'QueueFullError',
  ERR_CLOSED: 'ClosedError',
};
/** The codes the addon may throw when called directly (it builds them through init's makeError). */
export const ADDON_CODES = ['ERR_SHAPE', 'ERR_DTYPE', 'ERR_ARGUMENT', 'ERR_OPTION', 'ERR_STATE_DICT', 'ERR_OUT_OF_MEMORY', 'ERR_ABORTED'];
/** Errors that are about the call, not an argument: their messages need not start with a name. */
const NAMELESS = new Set(['ERR_ABORTED', 'ERR_OUT_OF_MEMORY', 'ERR_QUEUE_FULL', 'ERR_CLOSED', 'ERR_BACKEND_UNAVAILABLE']);

const nativeLoad = loadNative();
/** The addon, or null where it did not load (the addon properties then skip). */
export const addon = nativeLoad.addon;
export const nativeReason = nativeLoad.reason;
/** The backend a GRU built with backend 'native' gets; 'js' stands in where the addon is missing. */
export const NATIVE = addon ? 'native' : 'js';

/**
 * Known crashes to steer around (FASTGRU_FUZZ_AVOID, from `--avoid`), so that a long run can look
 * past them: 'empty' leaves out calls in which no sequence has a step (steps 0, batch 0 or every
 * length 0), which corrupt the native heap when the model is bidirectional or dropout masks are
 * given (native/core Run::phase_count undercounts phases when the schedule has no step).
 */
export const AVOID = new Set((process.env.FASTGRU_FUZZ_AVOID ?? '').split(',').map((s) => s.trim()).filter(Boolean));

// ------------------------------------------------------------------------------------------------
// Failures and counting
// ------------------------------------------------------------------------------------------------

/**
 * A property's verdict. kind is one of:
 *   wrong-class       an error that is not a fastgru error class with a code of the table
 *   wrong-message     a fastgru error whose message does not start with the argument's name
 *   wrong-result      a result that differs from the oracle
 *   wrong-acceptance  a valid call rejected, or an invalid one accepted
 *   disagreement      the native and js backends disagree on whether a call is valid
 *   hang              a promise that did not settle in time
 *   unhandled         an unhandled rejection or uncaught exception while the property ran
 * (crashes and hangs of the whole process are found by the parent runner, scripts/fuzz.mjs).
 */
export class Failure extends Error {
  constructor(kind, message) {
    super(`[${kind}] ${message}`);
    this.kind = kind;
  }
}

export const fail = (kind, message) => {
  throw new Failure(kind, message);
};

/** Calls per area: each invocation of a fastgru function or addon method with fuzzed arguments. */
export const counts = Object.create(null);
let area = 'misc';
export function setArea(name) {
  area = name;
}
export function count(n = 1) {
  counts[area] = (counts[area] ?? 0) + n;
}

/** A short, safe description of any value (for messages; never throws). */
export function show(value) {
  try {
    if (value instanceof Error) return `${value.constructor?.name ?? 'Error'}(${value.code ?? ''}) "${String(value.message).slice(0, 300)}"`;
    if (value === null || value === undefined || typeof value === 'boolean') return String(value);
    if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value);
    if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.length ?? value.byteLength})`;
    if (Array.isArray(value)) return `Array(${value.length})`;
    return typeof value === 'object' ? `${value.constructor?.name ?? 'Object'}{${Object.keys(value).slice(0, 6).join(',')}}` : typeof value;
  } catch {
    return '<unprintable>';
  }
}

// ------------------------------------------------------------------------------------------------
// Calling
// ------------------------------------------------------------------------------------------------

/** Milliseconds a promise may take to settle before the property reports a hang. */
export const SETTLE_MS = 20_000;

/**
 * Runs fn (counted as one call): { ok: true, value } or { ok: false, error }. A returned promise is
 * awaited, bounded by SETTLE_MS.
 */
export async function attempt(fn, what = 'the call') {
  count();
  let value;
  try {
    value = fn();
  } catch (error) {
    return { ok: false, error, sync: true };
  }
  if (!value || typeof value.then !== 'function') return { ok: true, value, sync: true };
  try {
    return { ok: true, value: await within(value, what), sync: false };
  } catch (error) {
    if (error instanceof Failure) throw error;
    return { ok: false, error, sync: false };
  }
}

/** Synchronous attempt, for calls that must not return promises. */
export function attemptSync(fn) {
  count();
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

export function within(promise, what = 'a promise', ms = SETTLE_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure('hang', `${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------------------------------------
// What an error must look like
// ------------------------------------------------------------------------------------------------

/** The argument a message names: `options.lengths[1]: expected ...` -> `options`. */
export function rootOf(message) {
  const head = String(message).split(':')[0];
  return head.split(/[.[ (]/)[0];
}

/**
 * A public function's error: an instance of FastGruError, of the class its code belongs to, with a
 * code of the README's table and (unless the error is about the call itself) a message whose first
 * word is one of `roots`.
 */
export function checkApiError(error, roots, what) {
  if (!(error instanceof api.FastGruError)) {
    fail('wrong-class', `${what}: threw ${show(error)}, not a FastGruError\n${stackHead(error)}`);
  }
  const cls = API_CODES[error.code];
  if (!cls) fail('wrong-class', `${what}: threw ${show(error)}, whose code is not in the README's errors table`);
  if (error.constructor.name !== cls) fail('wrong-class', `${what}: threw ${show(error)}: code ${error.code} belongs to ${cls}`);
  if (typeof error.message !== 'string' || error.message.length === 0) fail('wrong-message', `${what}: an empty message`);
  if (!NAMELESS.has(error.code) && roots && !roots.includes(rootOf(error.message))) {
    fail('wrong-message', `${what}: threw ${show(error)}; expected a message naming ${roots.join(' or ')}`);
  }
}

/** An addon error: a FastGruError (made through init's makeError) with one of the addon's codes. */
export function checkAddonError(error, roots, what) {
  if (!(error instanceof Error)) fail('wrong-class', `${what}: threw a non-Error ${show(error)}`);
  if (!ADDON_CODES.includes(error.code) || !(error instanceof api.FastGruError)) {
    fail('wrong-class', `${what}: threw ${show(error)} (${error.constructor?.name}); expected a FastGruError with a code in ${ADDON_CODES.join(', ')}\n${stackHead(error)}`);
  }
  if (!NAMELESS.has(error.code) && roots && !roots.includes(rootOf(error.message))) {
    fail('wrong-message', `${what}: threw ${show(error)}; expected a message naming ${roots.join(' or ')}`);
  }
}

function stackHead(error) {
  return String(error?.stack ?? '').split('\n').slice(1, 4).join('\n');
}

/**
 * Checks an outcome against a prediction: `expected` is { valid: true } or { valid: false, roots }.
 * Returns the value of a successful call.
 */
export function expectOutcome(outcome, expected, what, { addonCall = false, allowOom = false } = {}) {
  if (outcome.ok) {
    if (!expected.valid) fail('wrong-acceptance', `${what}: accepted, but ${expected.why ?? 'the arguments are invalid'}`);
    return outcome.value;
  }
  const e = outcome.error;
  if (e instanceof Failure) throw e;
  if (addonCall) checkAddonError(e, expected.valid ? null : expected.roots, what);
  else checkApiError(e, expected.valid ? null : expected.roots, what);
  if (expected.valid && !(allowOom && e.code === 'ERR_OUT_OF_MEMORY')) {
    fail('wrong-acceptance', `${what}: rejected a valid call with ${show(e)}`);
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------------
// Comparing results
// ------------------------------------------------------------------------------------------------

/** The first element where a and b differ by more than tol (relative to max(1, |b|)); NaN must meet NaN. */
export function firstMismatch(a, b, tol) {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return `element ${i}: ${x} vs ${y}`;
      continue;
    }
    if (x === y) continue;
    if (!Number.isFinite(x) || !Number.isFinite(y) || Math.abs(x - y) > tol * Math.max(1, Math.abs(y))) {
      return `element ${i}: ${x} vs ${y}`;
    }
  }
  return null;
}

export function expectClose(a, b, tol, what) {
  const m = firstMismatch(a, b, tol);
  if (m) fail('wrong-result', `${what}: ${m} (tolerance ${tol})`);
}

export function expectBits(a, b, what) {
  if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) fail('wrong-result', `${what}: ${show(a)} vs ${show(b)}`);
  if (a.length !== b.length) fail('wrong-result', `${what}: length ${a.length} vs ${b.length}`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) {
    // NaNs may differ in payload (the engines make their own); any NaN matches any NaN.
    if (x[i] !== y[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      fail('wrong-result', `${what}: element ${i} is ${a[i]}, expected ${b[i]} bit for bit`);
    }
  }
}

export function expectShape(actual, expected, what) {
  if (!Array.isArray(actual) && !Object.isFrozen(actual)) fail('wrong-result', `${what}: shape ${show(actual)}`);
  if (actual.length !== expected.length || expected.some((d, i) => actual[i] !== d)) {
    fail('wrong-result', `${what}: shape [${[...actual].join(', ')}], expected [${expected.join(', ')}]`);
  }
}

export function expectTensor(t, shape, what) {
  if (!t || !(t.data instanceof Float32Array)) fail('wrong-result', `${what}: not a tensor (${show(t)})`);
  expectShape(t.shape, shape, what);
  const n = shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) fail('wrong-result', `${what}: ${t.data.length} elements for shape [${shape.join(', ')}]`);
}

// ------------------------------------------------------------------------------------------------
// Seeded data
// ------------------------------------------------------------------------------------------------

/** Values that stress float handling without overflowing a float32 product. */
const SPECIALS = [NaN, Infinity, -Infinity, -0, 0, 1e-40, -1e-40, 1.17549435e-38, 3, -3];

/**
 * n floats of a kind: 'uniform' in (-1, 1); 'special' mostly uniform with NaN, ±Infinity, -0 and
 * subnormals mixed in; 'zero'.
 */
export function floats(n, seed, kind = 'uniform', scale = 1) {
  const out = new Float32Array(n);
  const r = prng(seed);
  for (let i = 0; i < n; i++) {
    if (kind === 'zero') out[i] = 0;
    else if (kind === 'special' && r() < 0.3) out[i] = SPECIALS[Math.floor(r() * SPECIALS.length)];
    else out[i] = (2 * r() - 1) * scale;
  }
  return out;
}

/**
 * Whether an ArrayBuffer is detached, asked in a way V8 cannot get wrong: Node 20's V8 (11.3) has
 * a bug where optimised code that has seen length-tracking views of resizable buffers reports a
 * detached Float32Array's old length (see STORAGES).
 */
export function detachedBuffer(buffer) {
  if (!(buffer instanceof ArrayBuffer)) return false;
  try {
    buffer.slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Detaches a buffer (as a transfer to another thread does) and returns what moved. */
export function detach(buffer) {
  return structuredClone(buffer, { transfer: [buffer] });
}

/**
 * A Float32Array (or other typed array) of `values` in one of several storages: 'plain'; 'offset'
 * (a view at an offset into a larger buffer); 'shared' (a SharedArrayBuffer); 'resizable' (a
 * length-tracking view of a resizable ArrayBuffer); 'growable' (of a growable SharedArrayBuffer);
 * 'detached' (a detached buffer: length 0).
 */
export function stored(values, storage = 'plain', Type = Float32Array) {
  const n = values.length;
  const bytes = n * Type.BYTES_PER_ELEMENT;
  let out;
  switch (storage) {
    case 'offset': {
      const pad = 3;
      out = new Type(new ArrayBuffer(bytes + 2 * pad * Type.BYTES_PER_ELEMENT), pad * Type.BYTES_PER_ELEMENT, n);
      break;
    }
    case 'shared':
      out = new Type(new SharedArrayBuffer(bytes), 0, n);
      break;
    case 'resizable':
      out = new Type(new ArrayBuffer(bytes, { maxByteLength: bytes + 64 }));
      break;
    case 'growable':
      out = new Type(new SharedArrayBuffer(bytes, { maxByteLength: bytes + 64 }));
      break;
    default:
      out = new Type(n);
  }
  out.set(values);
  if (storage === 'detached') detach(out.buffer);
  return out;
}

export function copyOf(a) {
  return a instanceof Float32Array ? Float32Array.from(a) : a;
}

export const product = (dims) => dims.reduce((a, b) => a * b, 1);
