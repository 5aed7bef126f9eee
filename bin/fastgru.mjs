#!/usr/bin/env node
// `npx fastgru info`: which backend runs here, from which engine, or why not native;
// `npx fastgru build`: builds the native engine from source (scripts/build.mjs), where no prebuilt
// engine fits this platform; `npx fastgru bench [args]`: the native-vs-js benchmark
// (bench/bench.mjs), so a server can be checked in one command. A bad command line prints the
// usage and exits 2 (bin/args.mjs).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseCli } from './args.mjs';

const USAGE = `usage: fastgru info | fastgru build | fastgru bench [--shapes stream,serve,large,d2l] [--passes forward,train] [--forms after,before] [--budget s] [--min-runs n] [--out name]
  info    the backend that runs here, from which engine, or why not native
  build   build the native engine from source (node-gyp and a C++ toolchain)
  bench   forward and forward+backward on the standard shapes, every backend side by side (fastgru bench --help)`;

const [command = 'help', ...rest] = process.argv.slice(2);
if (command === 'info') {
  parseCli(rest, { usage: USAGE, options: {} });
  const { backendInfo } = await import('../dist/index.js');
  console.log(JSON.stringify(backendInfo(), null, 2));
} else if (command === 'build') {
  // --optional (a failed build warns and exits 0) is scripts/build.mjs's, passed on.
  parseCli(rest, { usage: USAGE, options: { optional: { type: 'boolean' } } });
  const script = fileURLToPath(new URL('../scripts/build.mjs', import.meta.url));
  const result = spawnSync(process.execPath, [script, ...rest], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  // A fresh process loads what was just built: this one has not loaded any engine.
  const check = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { backendInfo } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
     const i = backendInfo(); console.log(JSON.stringify(i, null, 2)); if (i.backend !== 'native') process.exit(1);`], { stdio: 'inherit' });
  process.exit(check.status ?? 1);
} else if (command === 'bench') {
  const { runBench } = await import('../bench/bench.mjs');
  await runBench(rest, 'fastgru bench');
} else if (command === 'help' || command === '--help' || command === '-h') {
  console.log(USAGE);
} else {
  process.stderr.write(`unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
  process.exit(2);
}
