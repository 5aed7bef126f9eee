#!/usr/bin/env node
// The release command (`npm run prebuilds`): builds the prebuilt engine of every platform the package
// ships from the commit at hand, on a Linux x64 machine, checks each (scripts/prebuild/check.mjs:
// architecture, exports, glibc and C++ runtime versions, DLL imports), puts it where the loader
// and node-gyp-build look (prebuilds/<platform>-<arch>/), and prints what `npm pack` will ship and
// its size. Missing toolchains are installed from Debian's packages (apt-get) unless --no-install.
// Prebuilds are never committed: CI builds and tests the linux-x64 one from source on every run.
//   node scripts/prebuild.mjs [--targets linux-x64,linux-arm64,win32-x64] [--no-install] [--pack DIR]
// --pack also packs the package into DIR once every check has passed, from a staging copy whose
// package.json has no lifecycle script: a clone's `npm install` builds the engine through `prepare`,
// and npm 11 warns about any such script in a dependency (it counts `prepare` too). Publish that
// tarball (`npm publish DIR/fastgru-X.tgz`), never the folder. Before publishing, run the emulator
// checks of the other platforms' binaries: .ci/arm-addon.sh and .ci/wine.sh.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listOf, parseCli } from '../bin/args.mjs';
import { LIFECYCLE_SCRIPTS, TARGETS } from './prebuild/targets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const values = parseCli(process.argv.slice(2), {
  usage: `usage: node scripts/prebuild.mjs [--targets ${Object.keys(TARGETS).join(',')}] [--no-install] [--pack DIR]`,
  options: {
    targets: { type: 'string', value: listOf(Object.keys(TARGETS)), default: Object.keys(TARGETS) },
    'no-install': { type: 'boolean' },
    pack: { type: 'string' },
  },
});
const targets = values.targets;
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`prebuild: the release command runs on Linux x64 (this is ${process.platform}-${process.arch})`);
  process.exit(2);
}

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.error?.message}`);
};
const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

// Toolchains: one apt-get for everything missing.
const missing = [...new Set(targets.flatMap((t) => (has(TARGETS[t].compiler) && has('cmake') ? [] : TARGETS[t].apt)))];
if (missing.length) {
  if (values.noInstall) throw new Error(`prebuild: missing toolchains (--no-install): apt-get install ${missing.join(' ')}`);
  console.log(`== prebuild: installing ${missing.join(' ')} (apt-get)`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

// dist/ as this commit makes it: it is what gets packed, and check.mjs reads the loader's glibc floor.
run('npm', ['run', 'build', '--silent']);
const { checkPrebuild } = await import('./prebuild/check.mjs');
// Packing takes every folder under prebuilds/: start from none, so only what this run built and
// checked can ship.
if (values.pack) rmSync(join(root, 'prebuilds'), { recursive: true, force: true });

const require = (await import('node:module')).createRequire(import.meta.url);
const headers = dirname(require.resolve('node-api-headers/package.json'));
const addonApi = dirname(require.resolve('node-addon-api/package.json'));
const jobs = String(Math.max(1, (await import('node:os')).availableParallelism()));
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout?.trim() || 'no git';

let failed = 0;
for (const name of targets) {
  const t = TARGETS[name];
  const start = Date.now();
  const dir = join(root, 'build-prebuild', name);
  console.log(`== prebuild: ${name} (${t.toolchain ? `cross, ${t.toolchain}` : 'native'}) from ${commit}`);
  // A failed build must not leave the last run's binary behind.
  rmSync(join(root, 'prebuilds', t.folder), { recursive: true, force: true });
  run('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DFASTGRU_TESTS=OFF', '-DFASTGRU_PREBUILD=ON',
    `-DNODE_API_HEADERS_DIR=${headers}`, `-DNODE_ADDON_API_DIR=${addonApi}`,
    ...(t.toolchain ? [`-DCMAKE_TOOLCHAIN_FILE=${join(root, t.toolchain)}`] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  run('cmake', ['--build', dir, '-j', jobs, '--target', 'fastgru_prebuild']);
  const dest = join(root, 'prebuilds', t.folder, t.file);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(join(dir, 'Release', 'fastgru.node'), dest);
  const { problems, summary } = checkPrebuild(name, dest);
  console.log(`   ${summary} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  if (problems.length) {
    failed++;
    for (const p of problems) console.error(`== prebuild: ${name}: FAILED: ${p}`);
    rmSync(join(root, 'prebuilds', t.folder), { recursive: true, force: true }); // never pack a binary that failed
  } else {
    console.log(`   -> prebuilds/${t.folder}/${t.file}`);
  }
}
if (failed) {
  console.error(`== prebuild: ${failed} of ${targets.length} prebuilds failed their checks`);
  process.exit(1);
}

// What npm pack will ship, and its size.
const dry = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }))[0];
const engines = dry.files.filter((f) => f.path.startsWith('prebuilds/')).map((f) => `${f.path} (${(f.size / 1024).toFixed(0)} KiB)`);
console.log(`== prebuild: npm pack would ship ${dry.entryCount} files, ${(dry.size / 1024).toFixed(0)} KiB packed, ` +
  `${(dry.unpackedSize / 1024).toFixed(0)} KiB unpacked; engines: ${engines.join(', ')}`);
if (values.pack) {
  const stray = readdirSync(join(root, 'prebuilds')).filter((f) => !targets.some((t) => TARGETS[t].folder === f));
  if (stray.length) throw new Error(`prebuild: prebuilds/ holds ${stray.join(', ')}, not built in this run: not packing`);
  const dest = resolve(values.pack);
  const stage = mkdtempSync(join(tmpdir(), 'fastgru-pack-'));
  try {
    for (const f of dry.files) {
      mkdirSync(dirname(join(stage, f.path)), { recursive: true });
      copyFileSync(join(root, f.path), join(stage, f.path));
    }
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    for (const script of LIFECYCLE_SCRIPTS) delete manifest.scripts?.[script];
    writeFileSync(join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
    mkdirSync(dest, { recursive: true });
    const out = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], { cwd: stage, encoding: 'utf8' }))[0];
    console.log(`== prebuild: packed ${join(dest, out.filename)}: ${out.entryCount} files, ${(out.size / 1024).toFixed(0)} KiB`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
