// Native working memory stays proportional to the data (design §5). The engine states the bytes of
// working memory each call reserves (beside struct Forward in native/core/forward.cpp and struct
// Backward in native/core/backward.cpp);
// the addon's diagnostic `workBytes` reports what the latest call reserved, and these tests hold it
// to that formula: for long, thin sequences it is a constant beside the output (forward) and grows
// with the rows only by the gradients backward sums over every row. A long, thin forward's peak
// resident memory stays within 3x of the js backend's.
import { describe, expect, it } from 'vitest';
import { backendInfo } from '../src/index.js';
import { loadNative } from '../src/backend/native.js';
import type { LayerWeights } from '../src/backend/backend.js';
import { distWarning, prng, runNode, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';

// The engine's constants (native/core/kernels/kernels.h, gemm.h, thread_pool.h, schedule.h).
const K_MR = 4;
const K_GATE_BLOCK = 16;
const K_MC = 128;
const K_KC = 512;
const K_EPOCH = 1024;
const WIDTH: Record<string, number> = { ref: 8, avx2: 8, avx512: 16, neon: 4 };
/** The projection's window: FASTGRU_WINDOW_BYTES (vitest.config.ts sets it), else 32 MiB. */
const WINDOW_BYTES = Number(process.env.FASTGRU_WINDOW_BYTES || 32 * 2 ** 20);

interface Shape {
  T: number;
  B: number;
  I: number;
  H: number;
  L: number;
  D: 1 | 2;
  resetAfter: boolean;
  lengths: number[] | null;
  threads: number;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** The sizes every formula uses: padded widths, the schedule's rows and steps, the thread layout. */
function sizes(s: Shape, isa: string) {
  const pw = 3 * WIDTH[isa];
  const padded = (k: number) => roundUp(k, pw);
  const Hp = roundUp(s.H, K_GATE_BLOCK);
  const lengths = s.lengths ?? Array.from({ length: s.B }, () => s.T);
  const P = lengths.reduce((a, b) => a + b, 0);
  const S = Math.max(0, ...lengths);
  const distinct = new Set(lengths.filter((l) => l > 0)).size;
  const n = s.threads; // FASTGRU_THREAD_WORK=0 (vitest.config.ts): a call runs on the threads it asks for
  return {
    padded, Hp, Hn: padded(Hp), P, S, n,
    schedule: 8 * s.B + 24 * (distinct + 1),
    memberRows: roundUp(s.B, 8) + 8,
    cuts: n <= 1 || s.B >= 8 * n ? 8 * n * (n + 1) : 0,
    layers: (s.L > 1 ? 1 : 0) + (s.L > 2 ? 1 : 0),
  };
}

/** Phases::bytes_for: a slot per phase up to 2·kEpoch, 8 bytes a member and 4 a slot; a line a member. */
const phasesBytes = (n: number, phases: number) => Math.min(Math.max(phases, 1), 2 * K_EPOCH) * (8 * n + 4) + 64 * n;

/** Forward's working memory (forward, or forwardTrain's without its tape). */
function forwardBytes(s: Shape, isa: string, train: boolean): number {
  const z = sizes(s, isa);
  const w = Math.max(1, Math.floor(WINDOW_BYTES / (12 * z.Hp * Math.max(s.B, 1))));
  const W = Math.min(z.P, w * s.B);
  const windows = Math.max(1, Math.ceil(z.S / w));
  let floats = W * 3 * z.Hp + s.B * z.padded((s.resetAfter ? 3 : 2) * z.Hp);
  if (!s.resetAfter) floats += s.B * z.Hn + (train ? 0 : 2 * s.B * z.Hp);
  if (!train) floats += 2 * s.B * z.Hp + z.layers * s.T * s.B * s.D * s.H;
  const pointers = W + s.B + z.memberRows * z.n;
  const phases = phasesBytes(z.n, s.L * s.D * (3 * windows + 2 * z.S) + s.L + 1);
  return 4 * floats + 8 * pointers + z.cuts + phases + z.schedule;
}

/** Backward's working memory. */
function backwardBytes(s: Shape, isa: string): number {
  const z = sizes(s, isa);
  const ldX = z.padded(Math.max(s.I, s.D * s.H));
  const hPacks = s.resetAfter ? 1 : 2;
  const K = Math.min(z.P, Math.max(K_KC, Math.floor(Math.floor(WINDOW_BYTES / (4 * (ldX + hPacks * z.padded(s.H)))) / K_KC) * K_KC));
  const windows = z.P > 0 ? Math.ceil(z.P / K) : 1;
  const floats =
    z.P * 3 * z.Hp * (s.resetAfter ? 2 : 1) + s.B * z.Hn * (s.resetAfter ? 1 : 2) +
    z.n * K_MC * ldX + 3 * z.Hp * (ldX + z.Hn) + K * (ldX + hPacks * z.padded(s.H)) +
    z.layers * s.T * s.B * s.D * s.H + z.n * (K_MC * K_KC + K_KC * Math.max(ldX, z.Hn));
  const pointers = K_KC * z.n + z.memberRows * z.n;
  const phases = phasesBytes(z.n, s.L * (2 + s.D * (2 * z.S + 4 + 2 * windows)));
  return 4 * floats + 8 * 6 * z.Hp + 8 * pointers + z.cuts + phases;
}

interface Diagnosed {
  isa: string;
  forward: number;
  train: number;
  backward: number;
  tape: number;
}

/** Runs forward, forwardTrain and backward straight on the addon; the workBytes after each. */
function diagnose(s: Shape, seed: number): Diagnosed {
  const addon = loadNative().addon!;
  const rand = prng(seed);
  const weights: LayerWeights[] = [];
  for (let l = 0; l < s.L; l++)
    for (let d = 0; d < s.D; d++) {
      const I = l === 0 ? s.I : s.D * s.H;
      weights.push({
        wIh: uniform(rand, 3 * s.H * I, 0.5), wHh: uniform(rand, 3 * s.H * s.H, 0.5),
        bIh: uniform(rand, 3 * s.H, 0.5), bHh: uniform(rand, 3 * s.H, 0.5),
      });
    }
  const model = new addon.Model(
    { inputSize: s.I, hiddenSize: s.H, numLayers: s.L, numDirections: s.D, resetAfter: s.resetAfter, bias: true }, weights);
  const x = uniform(rand, s.T * s.B * s.I, 1);
  const lengths = s.lengths ? Int32Array.from(s.lengths) : null;
  model.forward(x, s.T, s.B, false, null, lengths, s.threads);
  const forward = model.workBytes;
  const run = model.forwardTrain(x, s.T, s.B, false, null, lengths, null, s.threads);
  const train = model.workBytes;
  model.backward(run.tape, null, null, s.threads);
  return { isa: model.isa, forward, train, backward: model.workBytes, tape: run.tape.bytes };
}

const shape = (o: Partial<Shape>): Shape =>
  ({ T: 10, B: 1, I: 1, H: 1, L: 1, D: 1, resetAfter: true, lengths: null, threads: 1, ...o });

describe.skipIf(!native)('native working memory', () => {
  const cases: Shape[] = [
    shape({ T: 200_000, threads: 1 }),
    shape({ T: 200_000, threads: 2, resetAfter: false }),
    shape({ T: 50_000, B: 4, threads: 2, lengths: [50_000, 31_337, 50_000, 7] }),
    shape({ T: 37, B: 20, I: 5, H: 33, L: 2, D: 2, resetAfter: false, threads: 3, lengths: [37, 0, 5, 37, 12, 9, 9, 1, 36, 20, 2, 3, 4, 5, 6, 7, 8, 37, 30, 31] }),
    shape({ T: 64, B: 40, I: 8, H: 20, D: 2, threads: 2 }),
    shape({ T: 9, B: 3, I: 70, H: 130, L: 3, threads: 3 }),
    shape({ T: 0, B: 2, I: 3, H: 5, L: 2, threads: 2 }),
  ];
  for (const s of cases) {
    const name = `T ${s.T}, B ${s.B}, I ${s.I}, H ${s.H}, L ${s.L}, D ${s.D}, ${s.resetAfter ? 'after' : 'before'}` +
      `${s.lengths ? ', lengths' : ''}, ${s.threads} threads`;
    it(`reserves the stated bytes: ${name}`, () => {
      const got = diagnose(s, s.T + s.B);
      expect({ forward: got.forward, train: got.train, backward: got.backward }).toEqual({
        forward: forwardBytes(s, got.isa, false),
        train: forwardBytes(s, got.isa, true),
        backward: backwardBytes(s, got.isa),
      });
    });
  }

  it('does not grow with T beyond the output (forward) and the tape (backward)', () => {
    for (const [B, H, resetAfter] of [[1, 1, true], [4, 1, false], [2, 24, true]] as const) {
      const short = shape({ T: 40_000, B, H, resetAfter, threads: 2 });
      const long = { ...short, T: 4 * short.T };
      const a = diagnose(short, 1);
      const b = diagnose(long, 1);
      const rows = (long.T - short.T) * B;
      const Hp = roundUp(H, K_GATE_BLOCK);
      const what = `B ${B}, H ${H}, T ${short.T} -> ${long.T}`;
      // forward and forwardTrain (its tape aside): not a byte more for four times the steps.
      expect({ what, forward: b.forward - a.forward, train: b.train - a.train }).toEqual({ what, forward: 0, train: 0 });
      // backward: the gradient rows of the gate inputs (and of W_hh's product, resetAfter), 3·Hp
      // floats each, which the weight gradients sum in order after the time loop; nothing else.
      expect({ what, backward: b.backward - a.backward }).toEqual({ what, backward: rows * 4 * 3 * Hp * (resetAfter ? 2 : 1) });
      // The tape grows by its 5 rows of Hp floats and the copy of x, per row.
      expect({ what, tape: b.tape - a.tape }).toEqual({ what, tape: rows * 4 * (5 * Hp + 1) });
    }
  });
});

describe.skipIf(!native || process.platform !== 'linux')('peak resident memory of a long, thin forward', () => {
  // The case of issue 15 row 5: I = H = 1, x of 8 MB (T·B = 2^21 floats); the native backend's peak
  // within 3x of the js backend's, each in a child process of its own. Production settings: the
  // default window, no poisoned buffers.
  const env = { FASTGRU_WINDOW_BYTES: undefined, FASTGRU_POISON: undefined, FASTGRU_THREAD_WORK: undefined };
  for (const [T, B] of [[2 ** 21, 1], [2 ** 19, 4]]) {
    it(`T ${T}, B ${B}, I = H = 1: native peak within 3x of js`, async () => {
      const warning = distWarning();
      if (warning) throw new Error(warning);
      const peaks: Record<string, { before: number; peak: number }> = {};
      for (const backend of ['native', 'js']) {
        const r = await runNode(['test/workers/peak-rss.mjs', backend, String(T), String(B), '1', '1'], env, 120_000);
        const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
        expect(line, `${backend} child: ${r.stderr.trim().split('\n').slice(0, 4).join(' | ')}`).toBeDefined();
        const got = JSON.parse(line!) as { backend: string; before: number; peak: number; outputLength: number };
        expect({ backend: got.backend, outputLength: got.outputLength }).toEqual({ backend, outputLength: T * B });
        peaks[backend] = got;
      }
      const summary = (b: string) => `${b} ${peaks[b].before.toFixed(0)} -> ${peaks[b].peak.toFixed(0)} MiB`;
      expect(peaks.native.peak, `${summary('native')}, ${summary('js')}`).toBeLessThanOrEqual(3 * peaks.js.peak);
    }, 120_000);
  }
});
