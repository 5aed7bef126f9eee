// The fuzz loop, run in a child process by scripts/fuzz.mjs (and by test/fuzz.test.ts) so that a
// crash of the code under test ends this process, not the runner. It prints one JSON line per event
// on stdout:
//   { type: 'start', properties: [{ id, area, title }], addon, reason? }
//   { type: 'batch', round, index, id, runs, counts }    after each batch of runs of a property
//   { type: 'failure', id, area, kind, seed, path, message, counterexample, shrunk? }
//   { type: 'done', counts, rounds }
// Before every run it writes `<id> <seed> <run> <round> <index>` at the start of the trace file, so
// that the parent can say which run was in flight when the process died (run r of a batch is
// fast-check's path "r" for that batch's seed).
//
//   node test/fuzz/child.mjs [--seed N] [--seconds S | --rounds R] [--batch N] [--only a,b] [--skip a,b]
//                            [--resume ROUND:INDEX] [--trace FILE]
//   node test/fuzz/child.mjs --replay ID --seed N --path P      one run, reported in full
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { addon, counts, Failure, nativeReason, setArea } from './harness.mjs';
import gru from './props-gru.mjs';
import serve from './props-serve.mjs';
import train from './props-train.mjs';
import io from './props-io.mjs';
import addonProps from './props-addon.mjs';
import hardening from './props-hardening.mjs';

const ALL = [...gru, ...serve, ...train, ...io, ...addonProps, ...hardening];

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: '42' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    batch: { type: 'string', default: '20' },
    only: { type: 'string' },
    skip: { type: 'string' },
    resume: { type: 'string' },
    trace: { type: 'string' },
    replay: { type: 'string' },
    path: { type: 'string' },
    shrinkSeconds: { type: 'string', default: '20' },
  },
});

/** One line on stdout, synchronously (a crash right after must not lose it); waits out a full pipe. */
function print(o) {
  const bytes = Buffer.from(JSON.stringify(o) + '\n');
  for (let done = 0; done < bytes.length;) {
    try {
      done += writeSync(1, bytes, done, bytes.length - done);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
const list = (s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
/** --only / --skip name properties by prefixes of their ids: `forward`, `addon.`, `io.safetensors-bytes`. */
const matches = (id, patterns) => patterns.some((p) => id.startsWith(p));
const only = list(opts.only);
const skip = list(opts.skip);
const properties = ALL.filter((p) => (only.length === 0 || matches(p.id, only)) && !matches(p.id, skip))
  .filter((p) => !p.needsAddon || addon);

/** The seed of a property's batch in a round: a function of the run's seed, the round and the id. */
function batchSeed(seed, round, id) {
  let h = (Number(seed) ^ Math.imul(round + 1, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

// The trace: a fixed-size record rewritten in place before each run.
const traceFd = opts.trace ? openSync(opts.trace, 'w') : null;
const TRACE_BYTES = 256;
const traceBuf = Buffer.alloc(TRACE_BYTES);
function trace(text) {
  if (traceFd === null) return;
  traceBuf.fill(0x20);
  traceBuf.write(text.slice(0, TRACE_BYTES - 1));
  writeSync(traceFd, traceBuf, 0, TRACE_BYTES, 0);
}

// A property in flight, for errors that surface outside of it (unhandled rejections, exceptions
// thrown from callbacks): they are failures of that property, and this process goes on.
let current = null;
const stray = [];
process.on('unhandledRejection', (reason) => stray.push(['unhandled rejection', reason]));
process.on('uncaughtException', (error) => stray.push(['uncaught exception', error]));

function describeError(e) {
  if (e instanceof Failure) return { kind: e.kind, message: e.message };
  const frames = e instanceof Error ? String(e.stack).split('\n').slice(1) : [];
  const text = e instanceof Error ? `${e.constructor.name}: ${e.message}\n${frames.slice(0, 5).join('\n')}` : String(e);
  // An exception thrown by the suite's own code (not by a fastgru call it made) is a bug of the suite.
  const suite = /fuzz suite:/.test(text) || (frames[0] ?? '').includes('/test/fuzz/');
  return { kind: suite ? 'suite' : 'wrong-class', message: `[exception in property] ${text}` };
}

/**
 * A failure's identity across runs, to shrink each once: the property, the kind, and what went
 * wrong (the error thrown or the check that failed) without the call's own numbers and names.
 */
const seen = new Map();
const normalize = (text) => text.replace(/\\u[0-9a-f]{4}/gi, '').replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, '#').replace(/\b(native|js)\b/g, '·')
  .replace(/\["(?:[^"\\]|\\.)*"\]/g, '[…]');
function signature(id, f) {
  const line = f.message.split('\n')[0];
  const m = /(threw|rejected a valid call with|rejected with|refuses the file writeSafetensors wrote:|accepted, but|resolved although) (.*)$/.exec(line);
  const core = m ? `${m[1]} ${m[2]}` : line.split(': ').slice(-2).join(': ');
  return `${id} ${f.kind} ${normalize(core).slice(0, 100)}`;
}
/** Shrinking stops when it has taken this share of the child's time, so that fuzzing goes on. */
const SHRINK_SHARE = 0.25;
const childStart = Date.now();
let shrinkMs = 0;

function predicate(prop, seed, round, index) {
  let run = 0;
  return fc.asyncProperty(prop.arbitrary, async (value) => {
    trace(`${prop.id} ${seed} ${run} ${round} ${index}`);
    // Replaying: show the value first, so that a run that crashes the process is still shown.
    if (opts.replay) print({ type: 'value', run, value: stringify(value) });
    run++;
    current = prop;
    setArea(prop.area);
    try {
      await prop.run(value);
    } finally {
      // Let callbacks the run left behind fire while it is still the property in flight.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (stray.length) {
      const [what, error] = stray.shift();
      stray.length = 0;
      throw new Failure('unhandled', `${what}: ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`);
    }
  });
}

function stringify(value) {
  const s = fc.stringify(value);
  return s.length > 4000 ? `${s.slice(0, 4000)}…` : s;
}

async function shrink(prop, seed, path, round, index) {
  const details = await fc.check(predicate(prop, seed, round, index), {
    seed, path, endOnFailure: false, interruptAfterTimeLimit: Number(opts.shrinkSeconds) * 1000, markInterruptAsFailure: false,
  });
  if (!details.failed) return null;
  return { path: details.counterexamplePath, counterexample: stringify(details.counterexample), ...describeError(details.errorInstance) };
}

async function runBatch(prop, round, index, numRuns) {
  const seed = batchSeed(opts.seed, round, prop.id);
  const details = await fc.check(predicate(prop, seed, round, index), { seed, numRuns, endOnFailure: true });
  print({ type: 'batch', round, index, id: prop.id, runs: details.numRuns, counts });
  if (!details.failed) return;
  const first = { ...describeError(details.errorInstance), path: details.counterexamplePath, counterexample: stringify(details.counterexample) };
  const sig = signature(prop.id, first);
  const repeat = seen.get(sig) ?? 0;
  seen.set(sig, repeat + 1);
  // The same failure again: reported (and counted), not shrunk again.
  const budget = shrinkMs < SHRINK_SHARE * (Date.now() - childStart) + 20_000;
  const t0 = Date.now();
  const shrunk = repeat || !budget ? null : await shrink(prop, seed, details.counterexamplePath, round, index).catch(() => null);
  shrinkMs += Date.now() - t0;
  print({ type: 'failure', id: prop.id, area: prop.area, seed, round, ...first, shrunk, signature: sig, repeat });
}

async function replay() {
  const prop = ALL.find((p) => p.id === opts.replay);
  if (!prop) throw new Error(`no property ${opts.replay}; the properties are ${ALL.map((p) => p.id).join(', ')}`);
  const seed = Number(opts.seed);
  const details = await fc.check(predicate(prop, seed, 0, 0), { seed, path: opts.path, endOnFailure: true });
  if (!details.failed) {
    print({ type: 'replay', id: prop.id, failed: false, counts });
    return;
  }
  const e = details.errorInstance;
  print({
    type: 'replay', id: prop.id, failed: true, ...describeError(e), counterexample: stringify(details.counterexample),
    stack: e instanceof Error ? e.stack : undefined, counts,
  });
}

async function main() {
  print({
    type: 'start', addon: Boolean(addon), reason: nativeReason, properties: properties.map((p) => ({ id: p.id, area: p.area, title: p.title })),
  });
  if (opts.replay) return replay();
  const deadline = opts.seconds ? Date.now() + Number(opts.seconds) * 1000 : Infinity;
  const rounds = opts.rounds ? Number(opts.rounds) : Infinity;
  const batch = Number(opts.batch);
  let [round, index] = opts.resume ? opts.resume.split(':').map(Number) : [0, 0];
  for (; round < rounds && Date.now() < deadline; round++, index = 0) {
    for (; index < properties.length && Date.now() < deadline; index++) {
      await runBatch(properties[index], round, index, batch);
    }
  }
  print({ type: 'done', counts, rounds: round });
  if (traceFd !== null) closeSync(traceFd);
}

await main();
// Handles the code under test left open (a timer, a worker) must not keep the process alive.
process.exit(0);
