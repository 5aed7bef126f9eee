#!/usr/bin/env node
// `npx fastgru info`: which backend runs here and why; `npx fastgru bench [args]`: the
// native-vs-js benchmark (bench/bench.mjs), so a server can be checked in one command.
import { backendInfo } from '../dist/index.js';

const [command = 'help', ...rest] = process.argv.slice(2);
if (command === 'info') {
  const info = backendInfo();
  console.log(JSON.stringify(info, null, 2));
} else if (command === 'bench') {
  const { runBench } = await import('../bench/bench.mjs');
  await runBench(rest);
} else {
  console.log('usage: fastgru info | fastgru bench [--shapes stream,serve,large,d2l] [--passes forward,train] [--budget s]');
  process.exit(command === 'help' || command === '--help' ? 0 : 1);
}
