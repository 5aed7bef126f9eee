/**
 * What the bench scripts share: the deterministic inputs, the median, the machine a run describes
 * and the writing of bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

/** n numbers in [-1, 1) from a linear congruential generator, so every run and library sees the same inputs. */
export function input(n, seed) {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 2 - 1;
  }
  return x;
}

/**
 * Each turn of a timed engine starts with one untimed run when a run takes less than this: the
 * first run after another engine pays for its threads waking and its caches refilling (and runs
 * beside V8 sweeping the last turn's garbage), which is not the engine's steady state. Slower
 * runs (the js backend, tfjs) are timed from the first, or a bench would take hours.
 */
export const PRIME_BELOW_MS = 1000;

/**
 * One turn of a timed engine, as both benches take them: an untimed run when its runs take under
 * PRIME_BELOW_MS (warmMs is its warm-up run), then timed runs, back to back for about burstMs when a
 * run takes under burstMs / 2 and one otherwise, each time passed to record(ms), until done().
 * `run` may return a promise, which is awaited inside the timing; a plain return is not awaited,
 * so a synchronous engine's timing holds no microtask turn.
 * @param {() => unknown} run @param {number} warmMs @param {number} burstMs
 * @param {(ms: number) => void} record @param {() => boolean} done
 */
export async function timedTurn(run, warmMs, burstMs, record, done) {
  const once = async () => {
    const t0 = performance.now();
    const r = run();
    if (r && typeof r.then === 'function') await r;
    return performance.now() - t0;
  };
  if (warmMs < PRIME_BELOW_MS) await once();
  const fast = warmMs < burstMs / 2;
  const start = performance.now();
  do record(await once());
  while (fast && performance.now() - start < burstMs && !done());
}

/**
 * x to `digits` decimals, rounded toward zero, for every speed ratio and share of the peak the
 * benches and docs/benchmarks.md print (the acceptance targets are stated in them): a figure is never printed above its value (1.198 prints as 1.19, not as a 1.20
 * that reads as meeting a 1.2 target). The 1e-9 keeps 1.15 (114.999… hundredths) at 1.15.
 */
export function truncated(x, digits) {
  const scale = 10 ** digits;
  return (Math.trunc(x * scale + Math.sign(x) * 1e-9) / scale).toFixed(digits);
}

/**
 * The large forward of a bench run's rows, per form, with its GFLOP/s on `engine` and its share of
 * the FMA peak in percent, to one decimal (a whole percent would show 69.6% as a 70% target met):
 * of the median (the figure the bench stands by) and of the fastest sample (what the code does when
 * the shared host leaves the cores alone; the gap between the two is the host's noise).
 */
export function largeForwardShares(rows, engine, peakGflops) {
  return rows
    .filter((r) => r.shape === 'large' && r.pass === 'forward')
    .map((r) => {
      const { gflops, minMs } = r.results[engine];
      const bestGflops = r.flops / minMs / 1e6;
      return {
        form: r.resetAfter ? 'after' : 'before',
        gflops,
        percent: truncated((100 * gflops) / peakGflops, 1),
        bestGflops,
        bestPercent: truncated((100 * bestGflops) / peakGflops, 1),
      };
    });
}

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The machine, as a bench's first line prints it: `cpu model · N cores · node vX`. */
export function machineLine() {
  return `${os.cpus()[0]?.model ?? 'cpu'} · ${os.availableParallelism()} cores · node ${process.version}`;
}

/** The head of a results file: when, the command, and the machine. */
export function runHeader(command) {
  return { date: new Date().toISOString(), command, cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version };
}

/** Writes bench/results/<name>.json (indented by `indent` spaces) and returns its path. */
export function writeResult(name, report, indent = 2) {
  mkdirSync(RESULTS, { recursive: true });
  const file = `${RESULTS}${name}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, indent)}\n`);
  return file;
}
