/**
 * The option and argument rules every part of the API shares, in one place: an options object, its
 * known keys, integers and numbers in a range, booleans, the backend choice and the seed. Each
 * failure is an OptionError naming the option (`options.maxBatch: expected ..., got ...`); a caller
 * that words a rule its own way passes its wording in `expected`.
 */
import type { BackendChoice } from './backend/index.js';
import { argError, OptionError } from './errors.js';

/** An options object as the checks read it. */
export type Options = Record<string, unknown>;

/** Whether a value can be an options object: an object that is neither null nor an array. */
export function isOptionsObject(value: unknown): value is Options {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value` as an options object, or an OptionError naming `arg` that says what was `expected`
 * ('an object such as { signal }'). With `optional`, undefined and null are no options: `{}`.
 */
export function optionsObject(value: unknown, expected: string, arg = 'options', optional = false): Options {
  if (optional && (value === undefined || value === null)) return {};
  if (!isOptionsObject(value)) throw argError(OptionError, arg, expected, value);
  return value;
}

/**
 * Refuses a key of `options` that is not in `known`: OptionError
 * `options: expected only the options a, b, got unknown option "c"` (one wording, however many).
 */
export function checkKnownKeys(options: object, known: Iterable<string>, arg = 'options'): void {
  const names = [...known];
  for (const key of Object.keys(options)) {
    if (!names.includes(key)) {
      throw argError(OptionError, arg, `only the options ${names.join(', ')}`,
        `unknown option "${key}"`, { gotIsText: true });
    }
  }
}

/**
 * `options[name]` (`fallback` when undefined) as an integer in [min, max]; otherwise an OptionError
 * naming `options.name` that says `expected` (default 'an integer from min to max'). Without a
 * fallback the option is required.
 */
export function integerOption(options: Options, name: string, min: number, max: number, fallback?: number,
  expected = `an integer from ${min} to ${max}`): number {
  const value = options[name] === undefined ? fallback : options[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw argError(OptionError, `options.${name}`, expected, value);
  }
  return value;
}

/** A positive integer option (up to 2^53 − 1 unless `max`), worded 'a positive integer'. */
export function positiveIntegerOption(options: Options, name: string, fallback?: number, max = Number.MAX_SAFE_INTEGER): number {
  return integerOption(options, name, 1, max, fallback, 'a positive integer');
}

/**
 * `options[name]` (`fallback` when undefined) as a number that `ok` accepts (by default one in
 * [min, max], finite when both are); otherwise an OptionError naming `options.name`.
 */
export function numberOption(options: Options, name: string, fallback: number | undefined, expected: string,
  ok: (value: number) => boolean): number {
  const value = options[name] === undefined ? fallback : options[name];
  if (typeof value !== 'number' || !ok(value)) throw argError(OptionError, `options.${name}`, expected, value);
  return value;
}

/** `options[name]` (`fallback` when undefined) as a boolean, or an OptionError 'a boolean'. */
export function booleanOption(options: Options, name: string, fallback: boolean): boolean;
export function booleanOption(options: Options, name: string, fallback?: boolean): boolean | undefined;
export function booleanOption(options: Options, name: string, fallback?: boolean): boolean | undefined {
  const value = options[name] === undefined ? fallback : options[name];
  if (value !== undefined && typeof value !== 'boolean') throw argError(OptionError, `options.${name}`, 'a boolean', value);
  return value;
}

/** `options.backend`: 'auto' (the default), 'native' or 'js'. */
export function backendOption(options: Options): BackendChoice {
  const backend = options.backend === undefined ? 'auto' : options.backend;
  if (backend !== 'auto' && backend !== 'native' && backend !== 'js') {
    throw argError(OptionError, 'options.backend', "'auto', 'native' or 'js'", backend);
  }
  return backend;
}

/** `options.seed`: undefined (random) or a non-negative integer. */
export function seedOption(options: Options): number | undefined {
  const seed = options.seed;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)) {
    throw argError(OptionError, 'options.seed', 'a non-negative integer', seed);
  }
  return seed;
}
