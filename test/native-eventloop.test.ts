// forwardAsync runs off the event loop (design: "without blocking the event loop"): while a job of
// about a second runs, timers keep firing on time.
import { describe, expect, it } from 'vitest';
import { GRU, backendInfo } from '../src/index.js';
import { expectResponsive } from './helpers/eventloop.js';
import { prng, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const I = 64;
const H = 256;
const B = 8;
const TARGET_MS = 1000;
const LIMIT_MS = 20;

function input(T: number) {
  return { data: uniform(prng(T), T * B * I, 1), shape: [T, B, I] };
}

describe.skipIf(!native)('native forwardAsync and the event loop', () => {
  // A timing test on a machine that may be shared: test/helpers/eventloop.ts measures a control
  // (plain worker threads spinning) around each attempt and skips, with the numbers, when the
  // machine delays the loop as much without fastgru.
  it(`keeps the event loop responsive (p99 delay < ${LIMIT_MS} ms) during a ~1 s job`, async (ctx) => {
    const threads = backendInfo().threads;
    const gru = new GRU({ inputSize: I, hiddenSize: H, backend: 'native', seed: 1 });
    const report = await expectResponsive({
      limitMs: LIMIT_MS,
      // The histogram records the whole interval between samples (10 ms when on time).
      resolutionMs: 10,
      attempts: 3,
      controlThreads: threads,
      controlMs: 500,
      job: () => {
        // Size the job from this machine's speed now: the time per step of a short run, scaled up.
        const probeT = 200;
        const probe = input(probeT);
        gru.forward(probe);
        const t0 = performance.now();
        gru.forward(probe);
        const perStep = (performance.now() - t0) / probeT;
        const T = Math.max(probeT, Math.min(200_000, Math.round(TARGET_MS / perStep)));
        const x = input(T);
        return async () => {
          const result = await gru.forwardAsync(x);
          // The job computed something: the right shape, finite and not all zero at the last step.
          expect(result.output.shape).toEqual([T, B, H]);
          const last = result.output.data.subarray((T - 1) * B * H);
          expect(last.every(Number.isFinite)).toBe(true);
          expect(last.some((v) => v !== 0)).toBe(true);
          return `T ${T} (${perStep.toFixed(3)} ms/step), ${threads} threads`;
        };
      },
      // The job must be long enough for the measurement to mean something, and timers must have
      // fired throughout: at least half the 5 ms ticks and 10 ms samples an idle loop would see.
      check: (job, report) => {
        expect(job.elapsed, report).toBeGreaterThanOrEqual(500);
        expect(job.ticks, report).toBeGreaterThanOrEqual(Math.floor(job.elapsed / 5 / 2));
        expect(job.histogram.count, report).toBeGreaterThanOrEqual(Math.floor(job.elapsed / 10 / 2));
      },
    }, (note) => ctx.skip(note));
    console.log(report);
  });
});
