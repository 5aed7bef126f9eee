/**
 * The command-line parsing of fastgru's CLI, benches, soak, fuzzer, release scripts and examples:
 * node:util's parseArgs (strict: an unknown flag or a flag without its value is an error), then each
 * value converted and checked (numbers finite and in range, lists against their allowed items).
 * A mistake in the arguments is the caller's, not a bug: it prints what was wrong and the usage on
 * stderr and exits 2, never a stack trace. --help (or -h) prints the help on stdout and exits 0.
 *
 * It lives in bin/ because the published package ships bin/ (package.json "files"), and
 * `npx fastgru bench` runs bench/bench.mjs, which parses its flags here.
 *
 *   const args = parseCli(process.argv.slice(2), {
 *     usage: 'usage: node bench/x.mjs [--budget s] [--shapes a,b]',
 *     options: { budget: { type: 'string', value: number({ min: 0 }), default: 2 }, shapes: { type: 'string', value: listOf(['a', 'b']) } },
 *   });
 *   args.budget  // a number ≥ 0; flags with dashes come back in camelCase (--min-runs: args.minRuns)
 */
import { parseArgs } from 'node:util';

/** A mistake in the arguments: parseCli prints its message and the usage and exits 2. */
export class UsageError extends Error {}

const quoted = (text) => JSON.stringify(text);

/** The allowed range of a number flag, as its error message says it. */
function rangeText({ min, max, above }) {
  const lower = above !== undefined ? `(${above}` : min > -Infinity ? `[${min}` : null;
  if (lower && max < Infinity) return ` in ${lower}, ${max}]`;
  if (above !== undefined) return ` greater than ${above}`;
  if (min > -Infinity) return ` of at least ${min}`;
  if (max < Infinity) return ` of at most ${max}`;
  return '';
}

/**
 * A number flag: finite (Number('') is 0 and Number('Infinity') is not a count of anything, so
 * neither passes), a safe integer if `integer`, at least `min`, at most `max`, greater than `above`.
 * @param {{ min?: number, max?: number, above?: number, integer?: boolean }} [range]
 * @returns {(text: string, flag: string) => number}
 */
export function number({ min = -Infinity, max = Infinity, above, integer = false } = {}) {
  const expected = `${integer ? 'an integer' : 'a number'}${rangeText({ min, max, above })}`;
  return (text, flag) => {
    const n = text.trim() === '' ? NaN : Number(text);
    const ok = (integer ? Number.isSafeInteger(n) : Number.isFinite(n)) && n >= min && n <= max && (above === undefined || n > above);
    if (!ok) throw new UsageError(`${flag}: expected ${expected}, got ${quoted(text)}`);
    return n;
  };
}

/**
 * A comma-separated list of numbers, each checked as number(range) checks one.
 * @param {{ min?: number, max?: number, above?: number, integer?: boolean }} [range]
 * @returns {(text: string, flag: string) => number[]}
 */
export function numbers(range) {
  const one = number(range);
  return (text, flag) => text.split(',').map((item) => one(item, flag));
}

/**
 * One of `allowed`.
 * @param {readonly string[]} allowed
 * @returns {(text: string, flag: string) => string}
 */
export function oneOf(allowed) {
  return (text, flag) => {
    if (!allowed.includes(text)) throw new UsageError(`${flag}: expected ${allowed.join(' or ')}, got ${quoted(text)}`);
    return text;
  };
}

/**
 * A comma-separated list of items of `allowed`, spaces around an item ignored (at least one item; an
 * empty one, as in `a,`, is a mistake).
 * @param {readonly string[]} allowed
 * @returns {(text: string, flag: string) => string[]}
 */
export function listOf(allowed) {
  return (text, flag) => {
    const items = text.split(',').map((item) => item.trim());
    for (const item of items) {
      if (!allowed.includes(item)) throw new UsageError(`${flag}: unknown ${quoted(item)}; expected a comma-separated list of ${allowed.join(', ')}`);
    }
    return items;
  };
}

const camel = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());

/**
 * @typedef {object} Option
 * @property {'string' | 'boolean'} type
 * @property {string} [short]
 * @property {unknown} [default] the value when the flag is absent (already converted; booleans: false)
 * @property {(text: string, flag: string) => unknown} [value] converts and checks a string flag's
 *   value, throwing UsageError; without it the value is the text, which must not be empty
 */

/**
 * Parses argv (no positional arguments) against `options`; returns every option's value under its
 * camelCase name. `check(values)` may throw UsageError for what involves several flags. On a
 * mistake: the message and `usage` on stderr, exit 2. On --help / -h: `help` (default `usage`) on
 * stdout, exit 0, whatever else the line holds.
 * @param {string[]} argv
 * @param {{ usage: string, help?: string, options: Record<string, Option>, check?: (values: Record<string, any>) => void }} spec
 * @returns {Record<string, any>}
 */
export function parseCli(argv, { usage, help = usage, options, check }) {
  const end = argv.indexOf('--');
  const flags = end < 0 ? argv : argv.slice(0, end);
  if (flags.includes('--help') || flags.includes('-h')) {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  try {
    const config = Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]));
    const { values } = parseArgs({ args: argv, options: config, strict: true, allowPositionals: false });
    /** @type {Record<string, any>} */
    const out = {};
    for (const [name, o] of Object.entries(options)) {
      const v = values[name];
      const flag = `--${name}`;
      if (v === undefined) out[camel(name)] = 'default' in o ? o.default : o.type === 'boolean' ? false : undefined;
      else if (typeof v === 'boolean') out[camel(name)] = v;
      else if (o.value) out[camel(name)] = o.value(v, flag);
      else if (v === '') throw new UsageError(`${flag}: expected a value, got ""`);
      else out[camel(name)] = v;
    }
    check?.(out);
    return out;
  } catch (error) {
    // parseArgs reports an unknown flag, a missing value or a stray argument with a TypeError whose
    // code starts with ERR_PARSE_ARGS_; anything else is a bug in the script, and keeps its stack.
    const parse = typeof error?.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS_');
    if (!(error instanceof UsageError) && !parse) throw error;
    process.stderr.write(`${error.message}\n${usage}\n`);
    process.exit(2);
  }
}
