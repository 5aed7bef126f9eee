/**
 * Installs the pinned dependencies of a side folder (bench/peers, examples/char-lm: things fastgru
 * does not depend on) when they are missing or at another version, and does nothing otherwise.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The names of the folder's pinned dependencies that are absent or at another version. */
function stale(dir, manifest) {
  return Object.entries(manifest.dependencies).filter(([name, version]) => {
    const file = `${dir}/node_modules/${name}/package.json`;
    return !existsSync(file) || JSON.parse(readFileSync(file, 'utf8')).version !== version;
  }).map(([name]) => name);
}

/** dir: the folder holding package.json; env: extra environment for npm; label: for messages. */
export function ensureDeps(dir, { env = {}, label = dir, quiet = false } = {}) {
  const manifest = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
  const missing = stale(dir, manifest);
  if (missing.length === 0) return;
  const verb = existsSync(`${dir}/package-lock.json`) ? 'ci' : 'install';
  if (!quiet) console.log(`${label}: installing (${missing.join(', ')} missing or at another version) with npm ${verb}`);
  // Under `npm run`, npm_execpath is npm's own CLI script: running it with this node avoids
  // depending on an `npm` shim on PATH (npm.cmd on Windows).
  const npmCli = process.env.npm_execpath;
  const args = [verb, '--no-audit', '--no-fund', '--loglevel=error'];
  const fullEnv = { ...process.env, ...env };
  const result = npmCli && /\.c?js$/.test(npmCli)
    ? spawnSync(process.execPath, [npmCli, ...args], { cwd: dir, env: fullEnv, stdio: 'inherit' })
    : spawnSync('npm', args, { cwd: dir, env: fullEnv, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) throw new Error(`${label}: npm ${verb} failed (exit ${result.status ?? result.signal})`);
  const still = stale(dir, manifest);
  if (still.length) throw new Error(`${label}: after npm ${verb}, still missing or at another version: ${still.join(', ')}`);
}

// node scripts/ensure-deps.mjs <folder>
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node scripts/ensure-deps.mjs <folder with a package.json>');
  ensureDeps(resolve(dir), { label: dir });
}
