#!/usr/bin/env node
// Runs at `npm install`: builds the native addon with node-gyp. A failed build never fails the
// install: it prints one warning, records the reason in build/fastgru-build-failure.txt (which
// backendInfo() repeats), and fastgru runs on its TypeScript backend. FASTGRU_REQUIRE_NATIVE=1
// makes a failed build fatal (CI sets it); FASTGRU_SKIP_NATIVE=1 skips the build on purpose.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const failureFile = join(buildDir, 'fastgru-build-failure.txt');
const logFile = join(buildDir, 'fastgru-build.log');
const required = process.env.FASTGRU_REQUIRE_NATIVE === '1';

function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  for (const candidate of ['node-gyp/bin/node-gyp.js', 'npm/node_modules/node-gyp/bin/node-gyp.js']) {
    try {
      return require.resolve(candidate);
    } catch {}
  }
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(npmDir) ? npmDir : null;
}

function hasCompiler() {
  for (const cxx of [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean)) {
    const r = spawnSync(cxx, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) return true;
  }
  return false;
}

function fail(reason, detail = '') {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(failureFile, reason + '\n');
  if (required) {
    console.error(`fastgru: the native build failed and FASTGRU_REQUIRE_NATIVE=1 is set: ${reason}`);
    if (detail) console.error(detail);
    process.exit(1);
  }
  console.warn(`fastgru: WARNING: native addon not built (${reason}); using the TypeScript backend. ` +
    `backendInfo() reports this. ${existsSync(logFile) ? `Build log: ${logFile}` : ''}`.trim());
  process.exit(0);
}

rmSync(failureFile, { force: true });
if (process.env.FASTGRU_SKIP_NATIVE === '1') fail('FASTGRU_SKIP_NATIVE=1 was set at install');
if (!hasCompiler()) fail('no C++ compiler (c++, g++ or clang++) on PATH');
const gyp = nodeGyp();
if (!gyp) fail('node-gyp was not found');

const args = [gyp, 'rebuild', `-j`, String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())))];
console.log('fastgru: building the native addon (node-gyp)...');
const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env, maxBuffer: 64 << 20 });
mkdirSync(buildDir, { recursive: true });
writeFileSync(logFile, `${result.stdout ?? ''}\n${result.stderr ?? ''}`);
if (result.error) fail(`node-gyp could not run: ${result.error.message}`);
if (result.status !== 0) {
  const errors = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => /error/i.test(l)).slice(0, 5).join('\n');
  fail(`node-gyp exited with ${result.status}: ${errors.split('\n')[0] || 'see the build log'}`, errors);
}
if (!existsSync(join(buildDir, 'Release', 'fastgru.node'))) fail('the build finished without producing build/Release/fastgru.node');
console.log('fastgru: native addon built.');
