#!/usr/bin/env node
/**
 * Before and after: the native engine of a git revision against this checkout's, on the bench's
 * shapes (bench/bench.mjs), in one run. Each side runs in its own process (one addon a process),
 * the sides take turns round by round (ABBA...), and each round times every case for --budget
 * seconds; the table gives each side's median over the rounds and their ratio, and the spread of
 * the per-round ratios, which says how much of the difference is the machine's noise.
 *
 *   node bench/ab.mjs --before main~3                     builds both addons (cmake-js) and compares
 *   node bench/ab.mjs --before-addon A.node --after-addon B.node --rounds 6 --shapes serve,large
 *
 * It runs dist/ (`npm run build` first) on the native backend with the host's threads (or
 * --threads), and writes bench/results/<--out>.json (default ab). On a machine that other jobs
 * share, `nice -n -20` (as root) keeps them from taking the cores mid-round.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listOf, number, parseCli } from '../bin/args.mjs';
import { COMPARE_OPTIONS, COMPARE_USAGE, comparedAddons } from '../scripts/addon-builds.mjs';
import { SHAPES, forwardFlops, timeInterleaved } from './bench.mjs';
import { input, machineLine, median, runHeader, writeResult } from './common.mjs';

const SELF = fileURLToPath(import.meta.url);
const USAGE = `usage: node bench/ab.mjs ${COMPARE_USAGE} [--rounds n] [--threads n] ` +
  `[--shapes ${Object.keys(SHAPES).join(',')}] [--passes forward,train] [--forms after,before] [--budget s] [--out name]`;
const args = parseCli(process.argv.slice(2), {
  usage: USAGE,
  options: {
    ...COMPARE_OPTIONS,
    rounds: { type: 'string', value: number({ integer: true, min: 1 }), default: 4 },
    shapes: { type: 'string', value: listOf(Object.keys(SHAPES)), default: Object.keys(SHAPES) },
    passes: { type: 'string', value: listOf(['forward', 'train']), default: ['forward', 'train'] },
    forms: { type: 'string', value: listOf(['after', 'before']), default: ['after', 'before'] },
    budget: { type: 'string', value: number({ above: 0 }), default: 1 },
    // The engine's threads (default: the host's).
    threads: { type: 'string', value: number({ integer: true, min: 1 }) },
    out: { type: 'string', default: 'ab' },
    // Internal: time the cases on the addon in FASTGRU_ADDON and print them as JSON.
    child: { type: 'boolean' },
  },
});

const cases = () => args.shapes.flatMap((shape) => args.forms.flatMap((form) => args.passes.map((pass) => ({ shape, form, pass }))));
const key = (c) => `${c.shape}/${c.form}/${c.pass}`;

async function child() {
  const { GRU, backendInfo } = await import('../dist/index.js');
  const info = backendInfo();
  if (info.backend !== 'native' || info.addon?.source !== 'FASTGRU_ADDON') {
    throw new Error(`the child runs on ${JSON.stringify(info)}, not the addon FASTGRU_ADDON names`);
  }
  const threads = args.threads ?? info.threads;
  const out = {};
  for (const c of cases()) {
    const { T, B, I, H } = SHAPES[c.shape];
    const x = { data: input(T * B * I, 1), shape: [T, B, I] };
    const dOut = { data: input(T * B * H, 2), shape: [T, B, H] };
    const gru = new GRU({ inputSize: I, hiddenSize: H, backend: 'native', threads, seed: 7, resetAfter: c.form === 'after' });
    const fn = c.pass === 'train' ? () => gru.forwardTrain(x).backward(dOut) : () => gru.forward(x);
    const [timed] = await timeInterleaved([fn], args.budget, 3);
    out[key(c)] = timed.medianMs;
  }
  console.log(JSON.stringify({ isa: info.isa, threads, medians: out }));
}

function side(addon, flags) {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', ...flags], {
    encoding: 'utf8',
    env: { ...process.env, FASTGRU_ADDON: addon },
  });
  if (r.status !== 0) throw new Error(`the timing of ${addon} failed (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function main() {
  const { builds, addons: build } = comparedAddons(args, 'ab', USAGE);
  try {
    const addons = build();
    const flags = [...(args.threads ? ['--threads', String(args.threads)] : []), '--shapes', args.shapes.join(','), '--passes', args.passes.join(','), '--forms', args.forms.join(','), '--budget', String(args.budget)];
    const runs = { before: [], after: [] };
    let isa = null, threads = null;
    console.log(`ab · ${machineLine()}`);
    for (let r = 0; r < args.rounds; r++) {
      // ABBA: neither side always runs first in a round, nor always right after the other.
      for (const name of r % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
        const got = side(addons[name], flags);
        isa ??= got.isa;
        threads ??= got.threads;
        runs[name].push(got.medians);
      }
      console.log(`ab: round ${r + 1} of ${args.rounds} done`);
    }
    console.log(`\nnative ${isa}, ${threads} threads; median ms over ${args.rounds} rounds of ${args.budget} s a case and side`);
    console.log(['case', 'before ms', 'after ms', 'after/before', 'per-round ratios (min..max)'].join('\t'));
    const rows = cases().map((c) => {
      const k = key(c);
      const b = runs.before.map((m) => m[k]);
      const a = runs.after.map((m) => m[k]);
      const ratios = a.map((x, i) => x / b[i]);
      const row = { ...c, ...SHAPES[c.shape], flops: forwardFlops(SHAPES[c.shape]) * (c.pass === 'train' ? 3 : 1),
        beforeMs: median(b), afterMs: median(a), ratio: median(a) / median(b), roundRatios: ratios };
      console.log([k, row.beforeMs.toFixed(2), row.afterMs.toFixed(2), row.ratio.toFixed(3),
        `${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}`].join('\t'));
      return row;
    });
    const overall = median(rows.map((r) => r.ratio));
    console.log(`\nmedian after/before over the ${rows.length} cases: ${overall.toFixed(3)}`);
    const report = { ...runHeader(`node bench/ab.mjs ${process.argv.slice(2).join(' ')}`.trim()),
      before: args.before ?? args.beforeAddon, after: args.afterAddon ?? 'this checkout', isa, threads, rounds: args.rounds, rows, medianRatio: overall };
    console.log(`wrote ${writeResult(args.out, report)}`);
  } finally {
    builds.dispose();
  }
}

if (args.child) await child();
else await main();
