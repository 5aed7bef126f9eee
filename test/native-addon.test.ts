// Bad calls straight into the addon (design §5: "the addon checks again (it can be called directly)
// and never crashes the process: a bad call throws a JS error"). Every call runs in a child process
// (test/workers/addon-bad-calls.mjs) so that a crash fails a test here instead of killing vitest.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { backendInfo } from '../src/index.js';
import { distWarning, ROOT, runNode } from './helpers/native.js';

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
});
