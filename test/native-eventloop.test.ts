// forwardAsync runs off the event loop (design: "without blocking the event loop"): while a job of
// about a second runs, timers keep firing on time.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GRU, backendInfo } from '../src/index.js';
import { prng, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const I = 64;
const H = 256;
const B = 8;
const TARGET_MS = 1000;
const LIMIT_MS = 20;
const ATTEMPTS = 3;

function input(T: number) {
  return { data: uniform(prng(T), T * B * I, 1), shape: [T, B, I] };
}

interface Measured {
  elapsed: number;
  ticks: number;
  histogram: IntervalHistogram;
}

/** Runs job() with a 10 ms delay monitor and a 5 ms interval counting ticks. */
async function measure(job: () => Promise<unknown>): Promise<Measured> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  let ticks = 0;
  const interval = setInterval(() => ticks++, 5);
  histogram.enable();
  const start = performance.now();
  await job();
  const elapsed = performance.now() - start;
  histogram.disable();
  clearInterval(interval);
  return { elapsed, ticks, histogram };
}

/** The same CPU pressure without fastgru: `threads` worker threads spinning for `ms`. */
function spin(threads: number, ms: number): Promise<unknown> {
  const source = `const end = Date.now() + ${ms}; let n = 0; while (Date.now() < end) n++;
    require('node:worker_threads').parentPort.postMessage(n);`;
  return Promise.all(Array.from({ length: threads }, () => new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  })));
}

const p99 = (m: Measured) => m.histogram.percentile(99) / 1e6;
const describeRun = (m: Measured) =>
  `${m.elapsed.toFixed(0)} ms, ${m.ticks} ticks of 5 ms, ${m.histogram.count} samples, p99 ${p99(m).toFixed(1)} ms, ` +
  `max ${(m.histogram.max / 1e6).toFixed(1)} ms`;

describe.skipIf(!native)('native forwardAsync and the event loop', () => {
  // A timing test on a machine that may be shared. Each attempt first measures the loop under the
  // same CPU pressure from plain worker threads (the control), then under the GRU job. The job must
  // keep p99 below 20 ms; when it does not, but neither did the control, the machine is too loaded
  // to tell, and after three such attempts the test is skipped (with the numbers) rather than failed.
  it(`keeps the event loop responsive (p99 delay < ${LIMIT_MS} ms) during a ~1 s job`, async (ctx) => {
    const threads = backendInfo().threads;
    const gru = new GRU({ inputSize: I, hiddenSize: H, backend: 'native', seed: 1 });
    const records: string[] = [];
    let calmControl = false;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      // Size the job from this machine's speed now: the time per step of a short run, scaled up.
      const probeT = 200;
      const probe = input(probeT);
      gru.forward(probe);
      const t0 = performance.now();
      gru.forward(probe);
      const perStep = (performance.now() - t0) / probeT;
      const T = Math.max(probeT, Math.min(200_000, Math.round(TARGET_MS / perStep)));
      const x = input(T);

      const control = await measure(() => spin(threads, 500));
      let result: Awaited<ReturnType<GRU['forwardAsync']>> | undefined;
      const job = await measure(async () => {
        result = await gru.forwardAsync(x);
      });
      const report = `attempt ${attempt}: T ${T} (${perStep.toFixed(3)} ms/step), ${threads} threads; ` +
        `job ${describeRun(job)}; control (${threads} spinning workers) ${describeRun(control)}`;
      records.push(report);

      // The job must be long enough for the measurement to mean something, and timers must have
      // fired throughout: at least half the 5 ms ticks and 10 ms samples an idle loop would see.
      expect(job.elapsed, report).toBeGreaterThanOrEqual(500);
      expect(job.ticks, report).toBeGreaterThanOrEqual(Math.floor(job.elapsed / 5 / 2));
      expect(job.histogram.count, report).toBeGreaterThanOrEqual(Math.floor(job.elapsed / 10 / 2));
      // And the job computed something: the right shape, finite and not all zero at the last step.
      expect(result!.output.shape).toEqual([T, B, H]);
      const last = result!.output.data.subarray((T - 1) * B * H);
      expect(last.every(Number.isFinite)).toBe(true);
      expect(last.some((v) => v !== 0)).toBe(true);

      // The histogram records the whole interval between samples (10 ms when on time).
      if (p99(job) < LIMIT_MS) {
        console.log(report);
        return;
      }
      if (p99(control) < LIMIT_MS) calmControl = true;
    }
    if (!calmControl) {
      ctx.skip(`inconclusive: the machine delayed the loop as much without fastgru: ${records.join(' | ')}`);
    }
    expect.fail(`p99 event-loop delay >= ${LIMIT_MS} ms in every attempt: ${records.join(' | ')}`);
  });
});
