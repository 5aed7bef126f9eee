#!/usr/bin/env node
/**
 * Installs bench/peers (onnxruntime-node, @tensorflow/tfjs) when it is missing or not at the pinned
 * versions, and does nothing otherwise, so `npm run bench:peers` is fast once installed.
 *
 * ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's postinstall would otherwise try to download
 * extra (CUDA) binaries; the CPU binary it needs ships inside the npm package.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const manifest = JSON.parse(readFileSync(`${dir}package.json`, 'utf8'));

/** The names of pinned dependencies that are absent or at another version. */
function stale() {
  return Object.entries(manifest.dependencies).filter(([name, version]) => {
    const file = `${dir}node_modules/${name}/package.json`;
    return !existsSync(file) || JSON.parse(readFileSync(file, 'utf8')).version !== version;
  }).map(([name]) => name);
}

export function ensurePeers({ quiet = false } = {}) {
  const missing = stale();
  if (missing.length === 0) return;
  const verb = existsSync(`${dir}package-lock.json`) ? 'ci' : 'install';
  if (!quiet) console.log(`bench/peers: installing (${missing.join(', ')} missing or at another version) with npm ${verb}`);
  // Under `npm run`, npm_execpath is npm's own CLI script: running it with this node avoids
  // depending on an `npm` shim on PATH (npm.cmd on Windows).
  const npmCli = process.env.npm_execpath;
  const args = [verb, '--no-audit', '--no-fund', '--loglevel=error'];
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
  const result = npmCli && /\.c?js$/.test(npmCli)
    ? spawnSync(process.execPath, [npmCli, ...args], { cwd: dir, env, stdio: 'inherit' })
    : spawnSync('npm', args, { cwd: dir, env, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) throw new Error(`bench/peers: npm ${verb} failed (exit ${result.status ?? result.signal})`);
  const still = stale();
  if (still.length) throw new Error(`bench/peers: after npm ${verb}, still missing or at another version: ${still.join(', ')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) ensurePeers();
