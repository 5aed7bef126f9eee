/**
 * Writes the benchmark tables of docs/benchmarks.md from the JSON the benches wrote, so every figure
 * there comes from a committed bench run whose command the page gives:
 *
 *   npm run bench:readme        (after npm run bench and/or npm run bench:peers, ...)
 *
 * It replaces what sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in docs/benchmarks.md:
 *   native  bench/results/latest.json (npm run bench): native against js, and the FMA peak line
 *   peers   bench/results/peers.json (npm run bench:peers): fastgru beside ORT, tfjs and PyTorch
 *   serve   bench/results/serve.json (npm run bench:serve): the example HTTP server, batching on and off
 *   workers bench/results/workers.json (npm run bench:workers): RSS of worker_threads sharing a model
 *   char-lm examples/char-lm/results/*.json (npm run example:char-lm, pytorch_char_lm.py), compared
 *           like against like (examples/char-lm/compare.mjs)
 *
 * `renderBenchmarks(text)` returns the page with its tables rewritten; test/docs.test.ts checks that
 * the committed page is what it returns from the committed JSON.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../bin/args.mjs';
import { largeForwardShares, truncated } from './common.mjs';
import { serveTable } from './serve.mjs';
import { compareRuns } from '../examples/char-lm/compare.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCHMARKS_PAGE = 'docs/benchmarks.md';

const fmt = (v, d = 1) => v.toFixed(d);
const ms = (v) => `${fmt(v, v < 10 ? 2 : 1)} ms`;
const when = (iso) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

function nativeSection(bench) {
  const keys = Object.keys(bench.rows[0].results);
  const best = keys[keys.length - 1];
  const threads = bench.backendInfo.threads;
  const peak = bench.fmaPeakGflops ?? {};
  const lines = [];
  lines.push(`Measured ${when(bench.date)} (${bench.cpu}, Node ${bench.node}, ${bench.backendInfo.backend} ` +
    `backend, ${bench.backendInfo.isa ?? 'js'}); written to \`bench/results/latest.json\`.`);
  if (peak[String(threads)]) {
    const shares = largeForwardShares(bench.rows, best, peak[String(threads)]);
    const pct = shares.map((s) => `${fmt(s.gflops)} GFLOP/s (${s.form}, ${s.percent}%)`);
    const fastest = shares.map((s) => `${s.bestPercent}% (${s.form})`);
    lines.push(`The machine's FMA peak, measured by the same run with a loop of independent FMAs (the best of five samples): ` +
      `${fmt(peak['1'])} GFLOP/s on one thread, ${fmt(peak[String(threads)])} on ${threads}. ` +
      `The large forward on ${threads} threads: ${pct.join(' and ')} of that peak in the median; ` +
      `its fastest samples reached ${fastest.join(' and ')}.`);
  }
  lines.push('');
  lines.push(`| shape (T, B, I, H) | form | pass | ${keys.map((k) => `${k} (median · GFLOP/s)`).join(' | ')}` +
    (keys.length > 1 ? ` | ${best} / js |` : ' |'));
  lines.push(`|---|---|---|${keys.map(() => '---:|').join('')}${keys.length > 1 ? '---:|' : ''}`);
  for (const r of bench.rows) {
    const cells = [`${r.shape} (${r.T}, ${r.B}, ${r.I}, ${r.H})`, r.resetAfter ? 'after' : 'before',
      r.pass === 'forward' ? 'forward' : 'fwd+bwd'];
    for (const k of keys) cells.push(`${ms(r.results[k].medianMs)} · ${fmt(r.results[k].gflops)}`);
    if (keys.length > 1) cells.push(`**${truncated(r.results.js.medianMs / r.results[best].medianMs, 0)}×**`);
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function peersSection(peers) {
  const v = peers.versions ?? {};
  const lines = [];
  lines.push(`Measured ${when(peers.date)} (${peers.cpu}, ${peers.cores} cores, Node ${peers.node}; ` +
    `onnxruntime-node ${v['onnxruntime-node']}, @tensorflow/tfjs ${v['@tensorflow/tfjs']}, PyTorch ${v.torch} ` +
    `with ${String(v.pytorchBlas ?? '?').split(':')[0]}); written to \`bench/results/peers.json\` and drawn in ` +
    '`bench/results/peers.svg`. GFLOP/s at 2 threads unless marked 1t; † a single run (tfjs takes tens of ' +
    'seconds a run on the larger shapes):');
  lines.push('');
  lines.push('| shape | form | fastgru | fastgru 1t | ORT | ORT 1t | tfjs | PyTorch | **fastgru / ORT** | ' +
    'fastgru fwd+bwd | PyTorch fwd+bwd | **fastgru / PyTorch** |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const g = (d, k) => (d?.[k] ? `${fmt(d[k].gflops)}${d[k].note ? ' †' : ''}` : '–');
  const ratio = (d, a, b, digits) => (d?.[a] && d?.[b] ? `**${truncated(d[a].gflops / d[b].gflops, digits)}×**` : '–');
  for (const c of peers.cells) {
    const f = c.results.forward;
    const t = c.results.train;
    lines.push(`| ${c.shape} (${c.T}, ${c.B}, ${c.I}, ${c.H}) | ${c.form} | ${g(f, 'fastgru')} | ${g(f, 'fastgru-1t')} | ` +
      `${g(f, 'ort')} | ${g(f, 'ort-1t')} | ${g(f, 'tfjs')} | ${g(f, 'pytorch')} | ${ratio(f, 'fastgru', 'ort', 2)} | ` +
      `${g(t, 'fastgru')} | ${g(t, 'pytorch')} | ${ratio(t, 'fastgru', 'pytorch', 1)} |`);
  }
  return lines.join('\n');
}

function serveSection(serve) {
  const o = serve.options;
  const info = serve.backendInfo;
  const lines = [];
  lines.push(`Measured ${when(serve.date)} (${serve.cpu}, ${serve.cores} cores, Node ${serve.node}, ${info.backend} backend, ` +
    `${info.isa ?? 'js'}, ${info.threads} threads); written to \`bench/results/serve.json\`. One server process per setting, ` +
    `autocannon in another process on the same machine, ${o.duration} s per row; each request one sequence of T = ${o.T}, ` +
    `I = ${o.I} (${o.body}, ${o.bodyBytes} bytes), H = ${o.H}. Latencies in ms, as autocannon sees them:`);
  lines.push('');
  lines.push(serveTable(serve));
  const e = serve.engine;
  if (e) {
    lines.push('');
    lines.push(`The engine alone, in the bench's process with no HTTP: ${e.sequences} of these sequences as one batch run at ` +
      `${e.batchedSeqPerSec.toFixed(0)} sequences/s, and as ${e.sequences} separate \`forwardAsync\` calls in flight at once at ` +
      `${e.separateSeqPerSec.toFixed(0)}/s (medians of ${e.rounds} rounds): **${truncated(e.ratio, 2)}×** is the most batching can add here.`);
  }
  return lines.join('\n');
}

function replaceSection(text, name, body) {
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`${BENCHMARKS_PAGE}: expected the markers ${open} … ${close}`);
  return `${text.slice(0, a + open.length)}\n${body}\n${text.slice(b)}`;
}

function workersSection(w) {
  const mb = (b) => (b / 2 ** 20).toFixed(0);
  const lines = [`Measured ${when(w.date)} (${w.cpu}, Node ${w.node}, ${w.rows[0].backend} backend); written to \`bench/results/workers.json\`.`, ''];
  lines.push('| workers built | RSS growth | × the parameters |');
  lines.push('|---|---:|---:|');
  for (const r of w.rows) {
    const what = r.mode === 'shared' ? `from one share (\`GRU.fromShared\`)` : 'each from its own copy of the state dict';
    lines.push(`| ${w.workers} ${what} | ${mb(r.rssGrowthBytes)} MiB | ${(r.rssGrowthBytes / r.paramBytes).toFixed(1)}× |`);
  }
  return lines.join('\n');
}

function charLmSection(ours, torch) {
  const o = ours.options;
  const compared = compareRuns(ours, torch);
  const torchEpochs = torch?.options?.epochs ?? '–';
  const lines = [`Measured ${when(ours.date)} (${ours.cpu}, Node ${ours.node}, ${ours.backendInfo.backend} backend, ` +
    `${ours.backendInfo.threads} threads; PyTorch ${torch?.torch ?? '–'} with ${torch?.threads ?? '–'} threads) with ` +
    `\`npm run example:char-lm\` and \`/usr/bin/python3 examples/char-lm/pytorch_char_lm.py\`: ${o.epochs} epochs (PyTorch: ${torchEpochs}) ` +
    `of the first ${o.chars.toLocaleString('en-US')} characters, written to \`examples/char-lm/results/\`. Both runs at the same ` +
    'epoch: the perplexity of that epoch, and tokens/s the median over the epochs up to it.'];
  if (!compared.comparable) lines.push(`Not compared with PyTorch: ${compared.reason}.`);
  lines.push('');
  lines.push('| GRU form | epoch | fastgru perplexity | PyTorch perplexity | fastgru tokens/s | PyTorch tokens/s | fastgru / PyTorch |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  const n = (v) => Math.round(v).toLocaleString('en-US');
  for (const [form, r] of Object.entries(ours.forms)) {
    const c = compared.comparable ? compared.forms[form] : null;
    const epoch = c ? c.epoch : r.perplexity.length;
    const mine = c ? c.ours : { perplexity: r.perplexity[epoch - 1], tokensPerSecond: r.medianTokensPerSecond };
    const t = c?.torch;
    lines.push(`| resetAfter ${form === 'after'} | ${epoch} | ${mine.perplexity.toFixed(2)} | ${t ? t.perplexity.toFixed(2) : '–'} | ` +
      `${n(mine.tokensPerSecond)} | ${t ? n(t.tokensPerSecond) : '–'} | ${t ? `**${truncated(mine.tokensPerSecond / t.tokensPerSecond, 1)}×**` : '–'} |`);
  }
  lines.push('');
  for (const [form, r] of Object.entries(ours.forms)) lines.push(`Generated (resetAfter ${form === 'after'}): \`${r.sample}\``, '');
  return lines.join('\n').trimEnd();
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/**
 * The benchmarks page with every table rewritten from the JSON under `root`; `log` hears which.
 * @param {string} text
 * @param {{ root?: string, log?: (line: string) => void }} [options]
 */
export function renderBenchmarks(text, { root = ROOT, log = () => {} } = {}) {
  const sources = [
    ['native', `${root}bench/results/latest.json`, nativeSection],
    ['peers', `${root}bench/results/peers.json`, peersSection],
    ['serve', `${root}bench/results/serve.json`, serveSection],
    ['workers', `${root}bench/results/workers.json`, workersSection],
  ];
  for (const [name, file, section] of sources) {
    if (!existsSync(file)) {
      log(`skipped ${name}: no ${file}`);
      continue;
    }
    text = replaceSection(text, name, section(readJson(file)));
    log(`${BENCHMARKS_PAGE}: ${name} figures from ${file}`);
  }
  const charLm = `${root}examples/char-lm/results/`;
  if (existsSync(`${charLm}fastgru.json`)) {
    const torch = existsSync(`${charLm}pytorch.json`) ? readJson(`${charLm}pytorch.json`) : null;
    text = replaceSection(text, 'char-lm', charLmSection(readJson(`${charLm}fastgru.json`), torch));
    log(`${BENCHMARKS_PAGE}: char-lm figures from ${charLm}`);
  }
  return text;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // It takes no arguments: one that looks like a flag (--help, a mistyped option) must not rewrite the page.
  parseCli(process.argv.slice(2), { usage: `usage: npm run bench:readme   (node bench/readme.mjs): the tables of ${BENCHMARKS_PAGE} from bench/results/*.json`, options: {} });
  const page = `${ROOT}${BENCHMARKS_PAGE}`;
  writeFileSync(page, renderBenchmarks(readFileSync(page, 'utf8'), { log: (line) => console.log(line) }));
}
