#!/usr/bin/env node
// The fuzz runner (issue 6): fast-check properties of the public API and of the addon called
// directly (test/fuzz/), run in a child process until the time is up. The child's crash (a signal,
// an abort) or hang is caught here: the runner says which property, seed and run were in flight,
// replays the runs of that batch one by one in fresh processes to find the one that crashes, and
// carries on with the next batch. At the end it prints the calls made per area and every failure
// with the command that replays it, and exits non-zero if there was any.
//
//   node scripts/fuzz.mjs --seconds 120 --seed 42          (npm run fuzz -- --seconds 600)
//   node scripts/fuzz.mjs --rounds 2 --batch 10            a fixed amount of work instead of a time
//   node scripts/fuzz.mjs --only forward,addon --skip addon.receivers
//   node scripts/fuzz.mjs --avoid empty                     leave out calls of a known crash: no sequence
//                                                           with a step (steps 0, batch 0, every length 0)
//   node scripts/fuzz.mjs --resizable                       tensors in resizable / growable buffers too
//                                                           (Node 20's V8 then misreports detached lengths)
//   node scripts/fuzz.mjs --replay forward.valid --seed 123 --path 4
//   node scripts/fuzz.mjs --list
//
// It runs the built package (dist/) and the addon in build/Release: `npm run build` first.
// FASTGRU_POISON=1 (uninitialised native buffers read as NaN) and FASTGRU_THREAD_WORK=0 (small calls
// use every thread they ask for) are set for the child unless the environment sets them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listOf, number, parseCli, UsageError } from '../bin/args.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHILD = join(ROOT, 'test/fuzz/child.mjs');

const USAGE = `usage: node scripts/fuzz.mjs [--seconds S | --rounds R] [--seed N] [--batch N] [--only a,b] [--skip a,b] [--avoid empty]
                             [--resizable] [--hang-seconds S] [--max-crashes N] [--no-isolate] [--json FILE] [--quiet]
       node scripts/fuzz.mjs --replay ID --seed N --path P
       node scripts/fuzz.mjs --list [--only a,b] [--skip a,b]`;
// --help: the usage, then this file's opening comment (the lines of // after the #! line).
const SOURCE = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
const HELP = `${USAGE}\n\n${SOURCE.slice(0, SOURCE.findIndex((l) => !l.startsWith('//'))).map((l) => l.slice(3)).join('\n')}`;

/** fast-check's path of a run: its run, then the shrink steps (`4`, `4:0:1`). */
const runPath = (text, flag) => {
  if (!/^\d+(:\d+)*$/.test(text)) throw new UsageError(`${flag}: expected a run path such as 4 or 4:0:1, got ${JSON.stringify(text)}`);
  return text;
};

const opts = parseCli(process.argv.slice(2), {
  usage: USAGE,
  help: HELP,
  options: {
    seconds: { type: 'string', value: number({ above: 0 }) },
    rounds: { type: 'string', value: number({ integer: true, min: 0 }) },
    // fast-check's seeds are 32-bit.
    seed: { type: 'string', value: number({ integer: true, min: 0, max: 2 ** 32 - 1 }), default: 42 },
    batch: { type: 'string', value: number({ integer: true, min: 1 }), default: 20 },
    only: { type: 'string' },
    skip: { type: 'string' },
    // The known crashes --avoid can steer around (test/fuzz/harness.mjs AVOID).
    avoid: { type: 'string', value: listOf(['empty']) },
    resizable: { type: 'boolean' },
    replay: { type: 'string' },
    path: { type: 'string', value: runPath, default: '0' },
    'hang-seconds': { type: 'string', value: number({ above: 0 }), default: 60 },
    'max-crashes': { type: 'string', value: number({ integer: true, min: 1 }), default: 25 },
    isolate: { type: 'boolean', default: true },
    'no-isolate': { type: 'boolean' },
    json: { type: 'string' },
    list: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
});

if (!existsSync(join(ROOT, 'dist/index.js'))) {
  console.error('fuzz: dist/index.js is missing: run `npm run build` first');
  process.exit(2);
}

const env = { ...process.env };
env.FASTGRU_POISON ??= '1';
env.FASTGRU_THREAD_WORK ??= '0';
if (opts.avoid) env.FASTGRU_FUZZ_AVOID = opts.avoid.join(',');
if (opts.resizable) env.FASTGRU_FUZZ_RESIZABLE = '1';

const log = (s) => {
  if (!opts.quiet) process.stderr.write(`${s}\n`);
};
const filterArgs = () => [
  ...(opts.only ? ['--only', opts.only] : []),
  ...(opts.skip ? ['--skip', opts.skip] : []),
];

function parseLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a line cut short by a crash
    }
  }
  return out;
}

function replayCommand(id, seed, path) {
  return `node scripts/fuzz.mjs --replay ${id} --seed ${seed} --path ${path}`;
}

// ------------------------------------------------------------------------------------------------
// One child: runs until done, crash or hang; reports through callbacks
// ------------------------------------------------------------------------------------------------

function runChild(args, { hangMs, onLine }) {
  const dir = mkdtempSync(join(tmpdir(), 'fastgru-fuzz-'));
  const traceFile = join(dir, 'trace');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, ...args, '--trace', traceFile], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let lastTrace = '';
    let lastChange = Date.now();
    let hung = false;
    child.stdout.setEncoding('utf8').on('data', (s) => {
      buffered += s;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of parseLines(lines.join('\n'))) onLine(line);
    });
    child.stderr.setEncoding('utf8').on('data', (s) => {
      stderr = (stderr + s).slice(-8000);
    });
    const readTrace = () => {
      try {
        return readFileSync(traceFile, 'utf8').trim();
      } catch {
        return '';
      }
    };
    const watchdog = setInterval(() => {
      const t = readTrace();
      if (t !== lastTrace) {
        lastTrace = t;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > hangMs) {
        hung = true;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      for (const line of parseLines(buffered)) onLine(line);
      const trace = readTrace();
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, hung, stderr, trace });
    });
  });
}

/** `<id> <seed> <run> <round> <index>` -> its parts. */
function parseTrace(trace) {
  const [id, seed, run, round, index] = trace.split(/\s+/);
  if (!id) return null;
  return { id, seed: Number(seed), run: Number(run), round: Number(round), index: Number(index) };
}

/** Replays one run in a fresh process: did it crash (or hang)? */
function replayCrashes(id, seed, path, hangMs) {
  const r = spawnSync(process.execPath, [CHILD, '--replay', id, '--seed', String(seed), '--path', String(path)], {
    cwd: ROOT, env, encoding: 'utf8', timeout: Math.min(hangMs, 30_000), killSignal: 'SIGKILL',
  });
  const lines = parseLines(r.stdout ?? '');
  const finished = lines.some((l) => l.type === 'replay');
  return { crashed: !finished, signal: r.signal, status: r.status, stderr: (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') };
}

/** The run of a crashed batch that crashes on its own (runs up to the traced one, in fresh processes). */
function isolate(t, hangMs) {
  const started = Date.now();
  for (const attempt of [1, 2]) {
    for (let path = t.run; path >= 0; path--) {
      if (Date.now() - started > 60_000) return null;
      const r = replayCrashes(t.id, t.seed, path, hangMs);
      if (r.crashed) return { path, attempt, ...r };
    }
  }
  return null;
}

// ------------------------------------------------------------------------------------------------
// Replay mode
// ------------------------------------------------------------------------------------------------

async function replay() {
  const result = await runChild(['--replay', opts.replay, '--seed', String(opts.seed), '--path', opts.path], {
    hangMs: opts.hangSeconds * 1000,
    onLine(line) {
      if (line.type === 'value') console.log(`value: ${line.value}`);
      if (line.type !== 'replay') return;
      if (!line.failed) console.log(`${line.id} seed ${opts.seed} path ${opts.path}: passed`);
      else {
        console.log(`${line.id} seed ${opts.seed} path ${opts.path}: FAILED (${line.kind})\n${line.message}\ncounterexample: ${line.counterexample}`);
        if (line.stack) console.log(line.stack);
      }
    },
  });
  if (result.signal || result.hung || result.code !== 0) {
    console.log(`the child ${result.hung ? 'hung' : `died (${result.signal ?? `exit ${result.code}`})`} while replaying: ${result.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    process.exit(1);
  }
}

// ------------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------------

async function main() {
  if (opts.list) {
    const r = spawnSync(process.execPath, [CHILD, '--rounds', '0', ...filterArgs()], { cwd: ROOT, env, encoding: 'utf8' });
    const start = parseLines(r.stdout).find((l) => l.type === 'start');
    for (const p of start?.properties ?? []) console.log(`${p.id.padEnd(26)} ${p.area.padEnd(12)} ${p.title}`);
    return;
  }
  if (opts.replay) return replay();
  const seconds = opts.seconds ?? (opts.rounds !== undefined ? Infinity : 60);
  const deadline = Date.now() + seconds * 1000;
  const hangMs = opts.hangSeconds * 1000;
  const started = Date.now();
  const totals = Object.create(null); // calls per area, over every child
  const failures = [];
  const crashes = [];
  let runs = 0;
  let resume = '0:0';
  let properties = [];
  let lastReport = Date.now();
  const total = () => Object.values(totals).reduce((a, b) => a + b, 0);

  for (let incarnation = 0; ; incarnation++) {
    const remaining = Math.max(1, Math.round((deadline - Date.now()) / 1000));
    const budget = opts.seconds !== undefined || opts.rounds === undefined ? ['--seconds', String(remaining)] : ['--rounds', String(opts.rounds)];
    let childCounts = Object.create(null);
    let last = null;
    let done = false;
    const result = await runChild(['--seed', String(opts.seed), '--batch', String(opts.batch), '--resume', resume, ...budget, ...filterArgs()], {
      hangMs,
      onLine(line) {
        if (line.type === 'start') properties = line.properties;
        if (line.type === 'batch') {
          last = line;
          runs += line.runs;
          childCounts = line.counts;
          if (Date.now() - lastReport > 10_000) {
            lastReport = Date.now();
            const calls = total() + Object.values(childCounts).reduce((a, b) => a + b, 0);
            log(`fuzz: ${Math.round((Date.now() - started) / 1000)} s, ${calls} calls, round ${line.round}, ${failures.length} failures, ${crashes.length} crashes`);
          }
        }
        if (line.type === 'failure') {
          failures.push(line);
          if (!line.repeat) log(`fuzz: FAILURE in ${line.id} (${line.kind}): ${line.message.split('\n')[0].slice(0, 300)}`);
        }
        if (line.type === 'done') {
          done = true;
          childCounts = line.counts;
        }
      },
    });
    for (const [k, v] of Object.entries(childCounts)) totals[k] = (totals[k] ?? 0) + v;
    if (done && result.code === 0) break;
    // The child died or hung: find the run, then go on with the next batch.
    const t = parseTrace(result.trace);
    const crash = {
      kind: result.hung ? 'hang' : 'crash',
      signal: result.signal,
      code: result.code,
      stderr: result.stderr.trim().split('\n').slice(-6).join('\n'),
      trace: t,
    };
    log(`fuzz: the child ${result.hung ? 'hung' : `died (${result.signal ?? `exit code ${result.code}`})`} in ${t ? `${t.id} seed ${t.seed} run ${t.run}` : 'an unknown run'}: ${crash.stderr.split('\n').slice(-2).join(' | ')}`);
    if (t && opts.isolate && !opts.noIsolate && crashes.length < 5) {
      crash.isolated = isolate(t, hangMs);
      log(crash.isolated ? `fuzz:   alone, run ${crash.isolated.path} crashes: ${replayCommand(t.id, t.seed, crash.isolated.path)}`
        : 'fuzz:   no single run of that batch crashes alone (the damage may come from an earlier run)');
    }
    crashes.push(crash);
    if (crashes.length >= opts.maxCrashes) {
      log(`fuzz: ${crashes.length} crashes: stopping (--max-crashes)`);
      break;
    }
    if (Date.now() >= deadline) break;
    const round = t ? t.round : last ? last.round : 0;
    const index = t ? t.index : last ? last.index : 0;
    resume = `${round}:${index + 1}`;
    if (!t && !last) break; // it dies before running anything: nothing to resume
  }

  // --------------------------------------------------------------------------------------------
  // Report
  // --------------------------------------------------------------------------------------------
  const elapsed = (Date.now() - started) / 1000;
  const lines = [];
  lines.push(`fuzz: ${total()} calls in ${runs} runs of ${properties.length} properties, ${elapsed.toFixed(0)} s, seed ${opts.seed}`);
  const areas = Object.entries(totals).sort((a, b) => b[1] - a[1]);
  for (const [area, n] of areas) lines.push(`  ${area.padEnd(14)} ${String(n).padStart(9)}`);
  const kinds = {};
  for (const f of failures) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
  for (const c of crashes) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
  const distinct = new Set(failures.map((f) => f.signature ?? f.message)).size + crashes.length;
  lines.push(`failures: ${failures.length + crashes.length}${Object.keys(kinds).length ? ` (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}; ${distinct} distinct)` : ''}`);
  for (const c of crashes) {
    const t = c.trace;
    lines.push(`\n${c.kind.toUpperCase()} (${c.signal ?? `exit code ${c.code}`}) in ${t ? `${t.id}, seed ${t.seed}, run ${t.run}` : 'an unknown run'}`);
    if (c.stderr) lines.push(`  stderr: ${c.stderr.split('\n').join('\n          ')}`);
    if (c.isolated) lines.push(`  crashes alone: ${replayCommand(t.id, t.seed, c.isolated.path)}`);
    else if (t) lines.push(`  replay the batch's run: ${replayCommand(t.id, t.seed, t.run)}`);
  }
  // The same failure found again (in another batch) is listed once, with its count.
  const groups = new Map();
  for (const f of failures) {
    const key = f.signature ?? `${f.id} ${f.kind} ${f.message.split('\n')[0]}`;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { first: f, count: 1 });
  }
  for (const { first: f, count } of groups.values()) {
    const s = f.shrunk ?? f;
    lines.push(`\nFAILURE (${s.kind}) in ${f.id}, seed ${f.seed}, path ${s.path}${count > 1 ? ` (found ${count} times)` : ''}`);
    lines.push(`  ${s.message.split('\n').join('\n  ')}`);
    lines.push(`  counterexample: ${s.counterexample}`);
    lines.push(`  replay: ${replayCommand(f.id, f.seed, s.path)}`);
  }
  console.log(lines.join('\n'));
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify({ seed: opts.seed, seconds: elapsed, calls: total(), runs, counts: totals, failures, crashes, properties }, null, 2));
  }
  process.exitCode = failures.length + crashes.length > 0 ? 1 : 0;
}

await main();
