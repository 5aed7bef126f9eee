// Event-loop responsiveness on a machine that may be shared (native-eventloop and serve tests).
// A timing limit alone fails whenever the host, or another test file running beside this one,
// takes the CPU. So each attempt first measures the loop under the same CPU pressure from plain
// worker threads (the control), then under the job. The job passes when its p99 delay is under the
// limit in some attempt. An attempt over the limit counts against the job only when the controls
// before and after it were both under: otherwise the machine was too loaded to tell. When no
// attempt passes and none counts, the test is skipped with the numbers rather than failed.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';

export interface Measured {
  elapsed: number;
  /** Ticks of a 5 ms interval that fired during the run. */
  ticks: number;
  histogram: IntervalHistogram;
}

/** Runs job() with a delay monitor of the given resolution and a 5 ms interval counting ticks. */
export async function measure(job: () => Promise<unknown>, resolutionMs: number): Promise<Measured> {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
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
export function spin(threads: number, ms: number): Promise<unknown> {
  const source = `const end = Date.now() + ${ms}; let n = 0; while (Date.now() < end) n++;
    require('node:worker_threads').parentPort.postMessage(n);`;
  return Promise.all(Array.from({ length: threads }, () => new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  })));
}

export const p99 = (m: Measured) => m.histogram.percentile(99) / 1e6;

export const describeRun = (m: Measured) =>
  `${m.elapsed.toFixed(0)} ms, ${m.ticks} ticks of 5 ms, ${m.histogram.count} samples, p99 ${p99(m).toFixed(1)} ms, ` +
  `max ${(m.histogram.max / 1e6).toFixed(1)} ms`;

export interface ResponsiveOptions {
  /** The p99 event-loop delay the job must stay under, in ms. */
  limitMs: number;
  /** The delay monitor's sampling interval, in ms (the histogram records whole intervals). */
  resolutionMs: number;
  attempts: number;
  /** The control: this many spinning worker threads for this long. */
  controlThreads: number;
  controlMs: number;
  /**
   * Sets up one attempt (not measured) and returns its job (measured), which resolves to a
   * description for the report (sizes, counts).
   */
  job: (attempt: number) => () => Promise<string>;
  /** Checks on the measured job beyond its delay (that it ran long enough, computed something). */
  check?: (job: Measured, report: string) => void;
}

/**
 * Measures attempts until the job's p99 delay is under the limit and returns that attempt's report.
 * Fails when no attempt passes and one of them had calm controls around it; calls skip() otherwise.
 */
export async function expectResponsive(o: ResponsiveOptions, skip: (note: string) => void): Promise<string> {
  const records: string[] = [];
  const calm = (m: Measured) => p99(m) < o.limitMs;
  const control = () => measure(() => spin(o.controlThreads, o.controlMs), o.resolutionMs);
  // Controls are measured between the attempts: an attempt's job is judged against the control
  // before it and the one after it, so a load that came or went during the job counts as noise.
  let before = await control();
  let conclusive = false;
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    const run = o.job(attempt);
    let described = '';
    const job = await measure(async () => {
      described = await run();
    }, o.resolutionMs);
    const head = `attempt ${attempt}: ${described}; job ${describeRun(job)}`;
    o.check?.(job, head);
    if (calm(job)) return `${head}; control before (${o.controlThreads} spinning workers) ${describeRun(before)}`;
    const after = await control();
    records.push(`${head}; controls (${o.controlThreads} spinning workers) before ${describeRun(before)}, after ${describeRun(after)}`);
    if (calm(before) && calm(after)) conclusive = true;
    before = after;
  }
  if (!conclusive) {
    skip(`inconclusive: the machine delayed the loop as much without fastgru: ${records.join(' | ')}`);
    return records.join(' | ');
  }
  expect.fail(`p99 event-loop delay >= ${o.limitMs} ms while the controls around it were under: ${records.join(' | ')}`);
}
