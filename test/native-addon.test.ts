// Bad calls straight into the addon (design §5: "the addon checks again (it can be called directly)
// and never crashes the process: a bad call throws a JS error"). Every call runs in a child process
// (test/workers/addon-bad-calls.mjs) so that a crash fails a test here instead of killing vitest.
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GRU, backendInfo } from '../src/index.js';
import { distWarning, fromBase64, ROOT, runNode } from './helpers/native.js';

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const native = backendInfo().backend === 'native';
const SCRIPT = 'test/workers/addon-bad-calls.mjs';
const CODES = ['ERR_SHAPE', 'ERR_DTYPE', 'ERR_ARGUMENT', 'ERR_OPTION', 'ERR_STATE_DICT', 'ERR_OUT_OF_MEMORY'];

interface Line {
  case: string;
  arg?: string;
  outcome: 'threw' | 'rejected' | 'returned' | 'resolved';
  ctor?: string;
  code?: unknown;
  message?: string;
  fastGru?: boolean;
  isError?: boolean;
  ok?: boolean;
  detail?: string;
}

interface Run {
  status: number | null;
  signal: string | null;
  stderr: string;
  lines: Line[];
}

function parse(stdout: string): Line[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
}

/** Runs the child synchronously (at collection time, so that each case becomes a test). */
function runSync(args: string[]): Run {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 50_000 });
  return { status: r.status, signal: r.signal, stderr: r.stderr, lines: parse(r.stdout) };
}

async function runOne(args: string[], nodeFlags: string[] = []): Promise<Run> {
  const r = await runNode([...nodeFlags, SCRIPT, ...args]);
  return { status: r.code, signal: r.signal, stderr: r.stderr, lines: parse(r.stdout) };
}

function expectCleanExit(run: Run, what: string): void {
  const last = run.lines[run.lines.length - 1];
  expect(
    { status: run.status, signal: run.signal },
    `${what}: the child must exit 0 (a crash shows here); last case printed: ${last?.case ?? 'none'}; ` +
      `stderr: ${run.stderr.trim().split('\n').slice(0, 4).join(' | ')}`,
  ).toEqual({ status: 0, signal: null });
  expect(last?.case, `${what}: the child must reach the end`).toBe('end');
}

/** A coded fastgru error naming the argument: `${arg}: expected ...`. */
function expectArgumentError(line: Line): void {
  const what = `${line.case}: ${line.outcome} ${line.ctor} ${String(line.code)} "${line.message}"`;
  expect(['threw', 'rejected'], what).toContain(line.outcome);
  expect(line.isError, what).toBe(true);
  expect(line.fastGru, `${what}: an instance of an exported FastGruError class`).toBe(true);
  expect(CODES, what).toContain(line.code);
  expect(line.message!.startsWith(`${line.arg}: expected `), `${what}: the message names ${line.arg}`).toBe(true);
}

describe.skipIf(!native)('the addon called directly with bad arguments', () => {
  const warning = distWarning();
  if (warning) console.warn(warning);
  const run = native ? runSync(['args']) : { status: 0, signal: null, stderr: '', lines: [] };
  const cases = run.lines.filter((l) => l.case !== 'end');

  it('the child making every bad call exits cleanly, having tried them all', () => {
    expectCleanExit(run, 'args');
    expect(cases.length).toBeGreaterThan(200);
  });

  // Every case, a method called on the wrong object ("this: expected a fastgru Model") and a class
  // called without new included, is a FastGruError with a code that names the argument.
  it.each(cases.map((l) => [l.case, l] as const))('%s', (_name, line) => {
    expectArgumentError(line);
    if (line.case.includes('steps*batch*inputSize')) expect(line.message).toMatch(/steps \d+ and batch \d+/);
  });
});

describe.skipIf(!native)('the addon called directly with valid but extreme arguments', () => {
  const run = native ? runSync(['edges']) : { status: 0, signal: null, stderr: '', lines: [] };
  it('the child exits cleanly', () => expectCleanExit(run, 'edges'));
  it.each(run.lines.filter((l) => l.case !== 'end').map((l) => [l.case, l] as const))('%s', (_name, line) => {
    expect(line, `${line.case}: ${line.detail ?? line.message}`).toMatchObject({ outcome: 'returned', ok: true });
  });
});

describe.skipIf(!native)('the addon called directly: crash candidates, each in its own process', () => {
  // A model where a tape is expected, or the reverse: an error (any kind), never a crash or a value
  // read from the wrong object.
  it.each(['bytes-on-model', 'isa-on-tape', 'forward-on-tape', 'self-as-tape'])('confused wrapped objects: %s', async (which) => {
    const run = await runOne(['confused', which]);
    expectCleanExit(run, which);
    const line = run.lines[0];
    expect(['threw', 'rejected'], `${line.case}: ${line.outcome} ${line.message ?? ''}`).toContain(line.outcome);
    expect(line.isError).toBe(true);
  });

  // Results too large to allocate: V8 aborts the process when an ArrayBuffer cannot be allocated,
  // so the addon must refuse such sizes (or allocate them itself) and throw.
  it.each(['hidden', 'output', 'facade-hidden'])('a result too large to allocate (%s) is an error, not a fatal OOM', async (which) => {
    const run = await runOne(['huge', which]);
    expectCleanExit(run, which);
    const line = run.lines[0];
    expect(['threw', 'rejected'], `${line.case}: ${line.outcome}`).toContain(line.outcome);
    expect(line.isError).toBe(true);
    expect(typeof line.code, `${line.case}: "${line.message}" needs a string code`).toBe('string');
  });

  // A getter on one argument that moves another argument's buffer away and frees it, after the addon
  // took that buffer's pointer: the addon must use the values it was passed, or refuse the detached
  // buffer by name; never read freed memory.
  it.each([
    ['weights-getter', 'weights[0].wIh'],
    ['weights-index-getter', 'weights[0].wIh'],
    ['masks-getter', 'x'],
    // A getter that empties dropoutMasks while the addon walks it: the length is read once, so the
    // masks it removed are refused by name (it read past the list: SIGSEGV).
    ['masks-shrink', 'dropoutMasks[1]'],
  ])('an argument getter frees another argument (%s)', async (which, arg) => {
    const run = await runOne(['reentrant', which], ['--expose-gc']);
    expectCleanExit(run, which);
    const line = run.lines[0];
    if (line.outcome === 'threw') {
      expect(line.fastGru, `${line.case}: ${line.message}`).toBe(true);
      expect(line.message!.startsWith(`${arg}: `), `${line.case}: "${line.message}" names ${arg}`).toBe(true);
    } else {
      expect(line, `${line.case}: ${line.detail}`).toMatchObject({ outcome: 'returned', ok: true });
    }
  });

  // A setter user code put on Object.prototype or Array.prototype for a key the addon stores a
  // buffer under: the addon defines own properties, so no setter sees (and frees) a gradient it is
  // about to write or the memory of a tape (both were SIGSEGV).
  it.each(['grads-setter', 'tape-setter'])('a setter on a prototype frees what the addon stores (%s)', async (which) => {
    const run = await runOne(['reentrant', which], ['--expose-gc']);
    expectCleanExit(run, which);
    expect(run.lines[0], `${run.lines[0]?.case}: ${run.lines[0]?.detail ?? run.lines[0]?.message}`).toMatchObject({ outcome: 'returned', ok: true });
  });

  // init() a second time, with an allocator that keeps its arrays: refused by name, and models keep
  // getting memory from the first allocator (the second was taken, and moving its arrays away freed
  // the packed weights: SIGSEGV).
  it('a second init() is refused and cannot change the allocator', async () => {
    const run = await runOne(['reentrant', 'second-init'], ['--expose-gc']);
    expectCleanExit(run, 'second-init');
    expectArgumentError(run.lines[0]);
    expect(run.lines[1], `${run.lines[1]?.case}: ${run.lines[1]?.detail}`).toMatchObject({ outcome: 'returned', ok: true });
  });

  // lengths over a SharedArrayBuffer that a worker keeps changing between a valid length and ones out
  // of range: each call checks and uses one native copy, so it gives the valid lengths' result, bit
  // for bit, or refuses lengths[k] by name (the schedule read past the checked values: SIGSEGV).
  // (Some seconds each; under ASan on a busy machine, more than runNode's default allows.)
  it.each(['forward', 'forwardTrain', 'forwardAsync'])('lengths changed by another thread during %s calls', async (which) => {
    const r = await runNode([SCRIPT, 'shared-lengths', which], {}, 170_000);
    const run: Run = { status: r.code, signal: r.signal, stderr: r.stderr, lines: parse(r.stdout) };
    expectCleanExit(run, which);
    expect(run.lines[0], `${run.lines[0]?.case}: ${run.lines[0]?.detail}`).toMatchObject({ outcome: 'returned', ok: true });
  }, 180_000);

  // WeakMap.prototype.set replaced before fastgru is first imported: the addon ties memory to its
  // owners without it, so the replacement never receives (and cannot detach) the packed weights,
  // and the forward gives the bits of an unpatched process (it received them: SIGSEGV).
  it('WeakMap.prototype.set replaced before the first import sees nothing of the addon', async () => {
    // 60 MB of packed weights: freed, they go back to the OS, and a read of them faults.
    const options = { inputSize: 4096, hiddenSize: 1024, backend: 'native' as const, seed: 3 };
    const x = { data: new Float32Array(2 * 4096).map((_, i) => Math.sin(i)), shape: [2, 1, 4096] };
    const script = `
      const captured = [];
      const set = WeakMap.prototype.set;
      WeakMap.prototype.set = function (key, value) { captured.push(value); return set.call(this, key, value); };
      const { GRU } = await import(${JSON.stringify(pathToFileURL(`${ROOT}dist/index.js`).href)});
      const gru = new GRU(${JSON.stringify(options)});
      const x = { data: new Float32Array(2 * 4096).map((_, i) => Math.sin(i)), shape: [2, 1, 4096] };
      gru.forward(x);
      const arrays = captured.flat().filter((v) => v instanceof Float32Array && v.buffer.byteLength > 0);
      for (const a of arrays) structuredClone(a.buffer, { transfer: [a.buffer] });
      for (let i = 0; i < 3; i++) globalThis.gc();
      const r = gru.forward(x);
      console.log(JSON.stringify({ captured: captured.length, backend: gru.backend, output: Buffer.from(r.output.data.buffer).toString('base64') }));
    `;
    const run = await runNode(['--expose-gc', '--input-type=module', '-e', script]);
    expect({ code: run.code, signal: run.signal }, run.stderr.trim().split('\n').slice(0, 4).join(' | ')).toEqual({ code: 0, signal: null });
    const reply = JSON.parse(run.stdout.trim()) as { captured: number; backend: string; output: string };
    expect(reply).toMatchObject({ captured: 0, backend: 'native' });
    const expected = new GRU(options).forward(x).output.data;
    expect(bitsOf(fromBase64(reply.output))).toEqual(bitsOf(expected));
  });

  // Float32Array replaced after fastgru was imported: the allocator the addon was given took the
  // constructor at import, so the replacement never receives (and cannot keep) the packed weights
  // of a repack (it received them, and moving them away freed what forward reads: SIGSEGV).
  it('Float32Array replaced after the import never receives the addon\'s memory', async () => {
    const script = `
      const { GRU } = await import(${JSON.stringify(pathToFileURL(`${ROOT}dist/index.js`).href)});
      const gru = new GRU({ inputSize: 4096, hiddenSize: 1024, backend: 'native', seed: 3 });
      const x = { data: new Float32Array(2 * 4096).map((_, i) => Math.sin(i)), shape: [2, 1, 4096] };
      const expected = gru.forward(x).output.data;
      const kept = [];
      globalThis.Float32Array = new Proxy(Float32Array, {
        construct(target, args, newTarget) {
          const a = Reflect.construct(target, args, newTarget);
          kept.push(a);
          return a;
        },
      });
      gru.parametersChanged(); // the next forward packs the weights again, into fresh memory
      gru.forward(x);
      const received = kept.length;
      for (const a of kept) if (a.buffer.byteLength > 0) structuredClone(a.buffer, { transfer: [a.buffer] });
      for (let i = 0; i < 3; i++) globalThis.gc();
      const r = gru.forward(x).output.data;
      console.log(JSON.stringify({ received, same: r.length === expected.length && r.every((v, i) => Object.is(v, expected[i])) }));
    `;
    const run = await runNode(['--expose-gc', '--input-type=module', '-e', script]);
    expect({ code: run.code, signal: run.signal }, run.stderr.trim().split('\n').slice(0, 4).join(' | ')).toEqual({ code: 0, signal: null });
    expect(JSON.parse(run.stdout.trim())).toEqual({ received: 0, same: true });
  });

  // require('fastgru') and import('fastgru') are one module, which initializes the addon once: both
  // run on the native backend (a second init would be refused, and that copy would fall back to js).
  it('require and import of fastgru in one process share one initialized addon', async () => {
    const script = `
      const cjs = require(${JSON.stringify(`${ROOT}dist/index.cjs`)});
      import(${JSON.stringify(pathToFileURL(`${ROOT}dist/index.js`).href)}).then((esm) => {
        const gru = new cjs.GRU({ inputSize: 3, hiddenSize: 4, seed: 1 });
        const out = gru.forward({ data: new Float32Array(6).fill(0.5), shape: [2, 1, 3] }).output.data;
        console.log(JSON.stringify({ same: cjs.GRU === esm.GRU, cjs: cjs.backendInfo().backend, esm: esm.backendInfo().backend,
          backend: gru.backend, finite: out.length === 8 && out.every(Number.isFinite) }));
      });
    `;
    const run = await runNode(['-e', script]);
    expect({ code: run.code, signal: run.signal }, run.stderr.trim().split('\n').slice(0, 4).join(' | ')).toEqual({ code: 0, signal: null });
    expect(JSON.parse(run.stdout.trim())).toEqual({ same: true, cjs: 'native', esm: 'native', backend: 'native', finite: true });
  });
});
