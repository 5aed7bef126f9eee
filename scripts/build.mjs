#!/usr/bin/env node
// Builds the native engine from source with node-gyp: `npx fastgru build` where no prebuilt engine
// fits (macOS, musl, FreeBSD, a new architecture), and a clone's `npm install` (the `prepare`
// script; the published package has no install script). node-gyp finds the platform's own
// toolchain (make and g++ or clang++, Xcode, MSVC); nothing here looks for a compiler itself.
// A failed build never breaks a service: it records the reason in build/fastgru-build-failure.txt,
// which backendInfo().reason repeats, and fastgru runs on a prebuilt engine if one fits or on its
// TypeScript backend.
//   node scripts/build.mjs              exit 1 when the build fails (what `npx fastgru build` runs)
//   node scripts/build.mjs --optional   a failed build warns and exits 0 (a clone's `npm install`)
// FASTGRU_REQUIRE_NATIVE=1 makes a failure fatal even with --optional (CI sets it);
// FASTGRU_SKIP_NATIVE=1 skips the build on purpose (recorded like a failure).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const failureFile = join(buildDir, 'fastgru-build-failure.txt');
const logFile = join(buildDir, 'fastgru-build.log');
const optional = process.argv.includes('--optional') && process.env.FASTGRU_REQUIRE_NATIVE !== '1';

/** npm's own node-gyp: the one npm would run (npm_config_node_gyp), or the copy npm bundles. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  for (const candidate of ['node-gyp/bin/node-gyp.js', 'npm/node_modules/node-gyp/bin/node-gyp.js']) {
    try {
      return require.resolve(candidate);
    } catch {}
  }
  const prefix = process.platform === 'win32' ? dirname(process.execPath) : join(dirname(process.execPath), '..', 'lib');
  const bundled = join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? bundled : null;
}

function fail(reason, detail = '') {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(failureFile, reason + '\n');
  const log = existsSync(logFile) ? ` Build log: ${logFile}` : '';
  if (!optional) {
    console.error(`fastgru: the native build failed: ${reason}.${log}`);
    if (detail) console.error(detail);
    process.exit(1);
  }
  console.warn(`fastgru: WARNING: native engine not built (${reason}); fastgru runs on a prebuilt engine if one fits, ` +
    `else on its TypeScript backend. backendInfo() reports which.${log}`);
  process.exit(0);
}

/** The line of node-gyp's output that says what went wrong, for backendInfo().reason. */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const lower = lines.filter((l) => !/^gyp info/.test(l));
  const telling = lower.find((l) => /not found|No such file|not installed|command not found|cannot find/i.test(l)) ??
    lower.find((l) => /error:/i.test(l)) ?? lower.find((l) => /ERR!.*Error/.test(l));
  return telling?.replace(/^gyp ERR! (stack )?/, '') ?? 'see the build log';
}

rmSync(failureFile, { force: true });
if (process.env.FASTGRU_SKIP_NATIVE === '1') fail('FASTGRU_SKIP_NATIVE=1 was set');
const gyp = nodeGyp();
if (!gyp) fail('node-gyp was not found (it comes with npm; or: npm install -g node-gyp)');

const args = [gyp, 'rebuild', '-j', String(Math.max(1, Math.min(4, availableParallelism())))];
// Node's own headers, where its installation has them (official builds do, in include/node), so the
// build needs no download; npm's nodedir setting, when npm or npx started us, wins.
const prefix = join(dirname(process.execPath), process.platform === 'win32' ? '' : '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
console.log('fastgru: building the native engine from source (node-gyp)...');
const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env, maxBuffer: 64 << 20 });
mkdirSync(buildDir, { recursive: true });
writeFileSync(logFile, `${result.stdout ?? ''}\n${result.stderr ?? ''}`);
if (result.error) fail(`node-gyp could not run: ${result.error.message}`);
if (result.status !== 0) {
  const output = `${result.stdout}\n${result.stderr}`;
  fail(`node-gyp exited with ${result.status}: ${firstError(output)}`, output.split('\n').filter((l) => /error/i.test(l)).slice(0, 8).join('\n'));
}
if (!existsSync(join(buildDir, 'Release', 'fastgru.node'))) fail('the build finished without producing build/Release/fastgru.node');
console.log('fastgru: native engine built: build/Release/fastgru.node (it wins over a prebuilt engine).');
