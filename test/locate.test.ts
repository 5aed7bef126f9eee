// Where the native engine comes from (src/backend/locate.ts): the prebuild chosen for each platform,
// architecture and libc; a source build winning over a prebuild; FASTGRU_ADDON; and the reason given
// when nothing loads. The choice follows prebuildify's names as node-gyp-build reads them, and
// node-gyp-build itself is asked the same questions as an oracle.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BUILD_COMMAND,
  choosePrebuild,
  compareVersions,
  detectHost,
  listPrebuilds,
  resolveAddon,
  type Host,
  type LocateInputs,
  type PrebuildListing,
} from '../src/backend/locate.js';

/** What `npm run prebuilds` ships. */
const SHIPPED: PrebuildListing = {
  'linux-x64': ['node.napi.glibc.node'],
  'linux-arm64': ['node.napi.glibc.node'],
  'win32-x64': ['node.napi.node'],
};

const glibc = (arch: string, glibcVersion = '2.36'): Host => ({ platform: 'linux', arch, libc: 'glibc', glibcVersion, abi: '115' });
const musl = (arch: string): Host => ({ platform: 'linux', arch, libc: 'musl', abi: '115' });
const other = (platform: string, arch: string): Host => ({ platform, arch, libc: null, abi: '115' });

describe('choosePrebuild: the shipped prebuilds', () => {
  it.each([
    ['linux x64 glibc', glibc('x64'), 'linux-x64/node.napi.glibc.node'],
    ['linux arm64 glibc', glibc('arm64'), 'linux-arm64/node.napi.glibc.node'],
    ['linux x64 glibc 2.28 (the oldest supported)', glibc('x64', '2.28'), 'linux-x64/node.napi.glibc.node'],
    ['windows x64', other('win32', 'x64'), 'win32-x64/node.napi.node'],
  ])('%s loads %s', (_name, host, file) => {
    expect(choosePrebuild(SHIPPED, host)).toEqual({ file });
  });

  it.each([
    ['linux x64 musl (Alpine): never a glibc binary', musl('x64'), /^no prebuilt engine for linux-x64 \(musl\) \(the linux-x64 prebuilds are for glibc\)/],
    ['linux arm64 musl', musl('arm64'), /^no prebuilt engine for linux-arm64 \(musl\) \(the linux-arm64 prebuilds are for glibc\)/],
    ['macOS arm64', other('darwin', 'arm64'), /^no prebuilt engine for darwin-arm64: the package ships linux-arm64, linux-x64, win32-x64$/],
    ['windows arm64', other('win32', 'arm64'), /^no prebuilt engine for win32-arm64:/],
    ['freebsd x64', other('freebsd', 'x64'), /^no prebuilt engine for freebsd-x64:/],
    ['linux riscv64', glibc('riscv64'), /^no prebuilt engine for linux-riscv64 \(glibc 2\.36\):/],
    ['glibc older than 2.28', glibc('x64', '2.27'), /needs glibc 2\.28 or newer; linux-x64 \(glibc 2\.27\) has 2\.27/],
  ])('%s: none, and the reason says why', (_name, host, reason) => {
    const choice = choosePrebuild(SHIPPED, host);
    expect(choice.file).toBeNull();
    expect(choice.reason).toMatch(reason);
  });

  it('an empty or missing prebuilds folder: none', () => {
    expect(choosePrebuild({}, glibc('x64'))).toEqual({ file: null, reason: 'no prebuilt engine for linux-x64 (glibc 2.36): the package ships no prebuilt engine' });
  });
});

describe('choosePrebuild: the naming convention', () => {
  it('prefers a musl-tagged file on musl and a glibc-tagged one on glibc', () => {
    const listing = { 'linux-x64': ['node.napi.glibc.node', 'node.napi.musl.node'] };
    expect(choosePrebuild(listing, musl('x64')).file).toBe('linux-x64/node.napi.musl.node');
    expect(choosePrebuild(listing, glibc('x64')).file).toBe('linux-x64/node.napi.glibc.node');
  });

  it('an untagged file fits any libc', () => {
    expect(choosePrebuild({ 'linux-x64': ['node.napi.node'] }, musl('x64')).file).toBe('linux-x64/node.napi.node');
  });

  it('a single-architecture folder over a universal one; a universal one when alone', () => {
    const both = { 'darwin-x64+arm64': ['node.napi.node'], 'darwin-arm64': ['node.napi.node'] };
    expect(choosePrebuild(both, other('darwin', 'arm64')).file).toBe('darwin-arm64/node.napi.node');
    expect(choosePrebuild({ 'darwin-x64+arm64': ['node.napi.node'] }, other('darwin', 'x64')).file).toBe('darwin-x64+arm64/node.napi.node');
  });

  it('a matching abi tag over napi; a foreign abi, Electron build or other file never', () => {
    const listing = { 'linux-x64': ['node.abi115.glibc.node', 'node.napi.glibc.node', 'electron.abi115.node', 'README.md', 'node.abi99.node'] };
    expect(choosePrebuild(listing, glibc('x64')).file).toBe('linux-x64/node.abi115.glibc.node');
    expect(choosePrebuild(listing, { ...glibc('x64'), abi: '127' }).file).toBe('linux-x64/node.napi.glibc.node');
    expect(choosePrebuild({ 'linux-x64': ['electron.abi115.node', 'node.abi99.node'] }, glibc('x64')).file).toBeNull();
  });

  it('compares versions numerically', () => {
    expect(compareVersions('2.28', '2.28')).toBe(0);
    expect(compareVersions('2.9', '2.28')).toBeLessThan(0);
    expect(compareVersions('2.36', '2.28')).toBeGreaterThan(0);
    expect(compareVersions('3', '2.99')).toBeGreaterThan(0);
  });
});

describe('resolveAddon: the order and the reasons', () => {
  const missing = () => {
    throw new Error('Could not locate the bindings file. Tried:\n → /x/build/Release/fastgru.node');
  };
  const inputs = (over: Partial<LocateInputs<string>>): LocateInputs<string> => ({
    host: () => glibc('x64'),
    prebuilds: SHIPPED,
    prebuildsDir: '/pkg/prebuilds',
    loadLocal: missing,
    loadFile: (path) => `addon at ${path}`,
    ...over,
  });

  it('a source build wins over a prebuild', () => {
    const located = resolveAddon(inputs({ loadLocal: () => ({ addon: 'local', path: '/pkg/build/Release/fastgru.node' }) }));
    expect(located).toEqual({ addon: 'local', source: 'source build', path: '/pkg/build/Release/fastgru.node' });
  });

  it('without a source build, the prebuild for the machine', () => {
    expect(resolveAddon(inputs({}))).toEqual({
      addon: 'addon at /pkg/prebuilds/linux-x64/node.napi.glibc.node',
      source: 'prebuild',
      path: join('/pkg/prebuilds', 'linux-x64/node.napi.glibc.node'),
    });
    expect(resolveAddon(inputs({ host: () => other('win32', 'x64') })).addon).toBe(`addon at ${join('/pkg/prebuilds', 'win32-x64/node.napi.node')}`);
  });

  it('a source build that fails to load falls back to the prebuild', () => {
    const located = resolveAddon(inputs({ loadLocal: () => { throw new Error('invalid ELF header'); } }));
    expect(located.addon).toBe(`addon at ${join('/pkg/prebuilds', 'linux-x64/node.napi.glibc.node')}`);
  });

  it('FASTGRU_ADDON: that file, and no fallback when it fails', () => {
    expect(resolveAddon(inputs({ explicit: '/asan/fastgru.node' }))).toEqual({ addon: 'addon at /asan/fastgru.node', source: 'FASTGRU_ADDON', path: '/asan/fastgru.node' });
    const failed = resolveAddon(inputs({ explicit: '/nope.node', loadFile: () => { throw new Error('ENOENT\nstack'); } }));
    expect(failed).toEqual({ addon: null, reason: 'FASTGRU_ADDON=/nope.node did not load: ENOENT' });
  });

  it('musl with no source build: the reason names the platform and the build command', () => {
    const located = resolveAddon(inputs({ host: () => musl('x64') }));
    expect(located.addon).toBeNull();
    expect(located.reason).toMatch(/^no prebuilt engine for linux-x64 \(musl\)/);
    expect(located.reason).toMatch(new RegExp(`build the engine from source with: ${BUILD_COMMAND}$`));
  });

  it('a prebuild that fails to load, and a failed source build: both said', () => {
    const located = resolveAddon(inputs({ loadFile: () => { throw new Error('GLIBC_2.99 not found'); }, buildFailure: 'node-gyp exited with 1: make: g++: not found' }));
    expect(located.reason).toBe(
      'the prebuilt engine prebuilds/linux-x64/node.napi.glibc.node did not load: GLIBC_2.99 not found; ' +
        `the source build (${BUILD_COMMAND}) failed: node-gyp exited with 1: make: g++: not found`,
    );
  });

  it('a source build that loads but does not start gives way to the prebuild', () => {
    const started: string[] = [];
    const located = resolveAddon(inputs({
      loadLocal: () => ({ addon: 'local', path: '/pkg/build/Release/fastgru.node' }),
      start: (addon) => {
        started.push(addon);
        if (addon === 'local') throw new TypeError('init is not a function');
      },
    }));
    expect(started).toEqual(['local', `addon at ${join('/pkg/prebuilds', 'linux-x64/node.napi.glibc.node')}`]);
    expect(located.addon).toBe(`addon at ${join('/pkg/prebuilds', 'linux-x64/node.napi.glibc.node')}`);
  });

  it('an error that holds for every engine (FASTGRU_ISA) ends the search as the reason', () => {
    class IsaError extends Error {}
    const tried: string[] = [];
    const located = resolveAddon(inputs({
      loadLocal: () => ({ addon: 'local', path: '/pkg/build/Release/fastgru.node' }),
      start: (addon) => {
        tried.push(addon);
        throw new IsaError("FASTGRU_ISA='avx512': this CPU lacks AVX-512F");
      },
      isFinal: (error) => error instanceof IsaError,
    }));
    expect(tried).toEqual(['local']);
    expect(located).toEqual({ addon: null, reason: "FASTGRU_ISA='avx512': this CPU lacks AVX-512F" });
  });

  it('the machine is read only when a prebuild is to be chosen', () => {
    let reads = 0;
    const host = () => {
      reads++;
      return glibc('x64');
    };
    resolveAddon(inputs({ host, loadLocal: () => ({ addon: 'local', path: '/b' }) }));
    resolveAddon(inputs({ host, explicit: '/asan.node' }));
    expect(reads).toBe(0);
    resolveAddon(inputs({ host }));
    expect(reads).toBe(1);
  });

  it('a source build that fails to load is named even when a prebuild is missing too', () => {
    const located = resolveAddon(inputs({ host: () => other('darwin', 'arm64'), loadLocal: () => { throw new Error('bad'); } }));
    expect(located.reason).toMatch(/^the source build did not load: bad; no prebuilt engine for darwin-arm64/);
  });
});

describe('this machine and node-gyp-build', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require.resolve('node-gyp-build');

  /** A package folder holding `listing` as empty prebuild files. */
  function packageWith(listing: PrebuildListing): string {
    const dir = mkdtempSync(join(tmpdir(), 'fastgru-locate-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'package.json'), '{"name":"fastgru-locate-test"}');
    for (const [folder, files] of Object.entries(listing)) {
      mkdirSync(join(dir, 'prebuilds', folder), { recursive: true });
      for (const f of files) writeFileSync(join(dir, 'prebuilds', folder, f), '');
    }
    return dir;
  }

  it('detectHost reads this machine', () => {
    const host = detectHost();
    expect(host.platform).toBe(process.platform);
    expect(host.arch).toBe(process.arch);
    if (process.platform === 'linux') {
      expect(['glibc', 'musl']).toContain(host.libc);
      if (host.libc === 'glibc') expect(host.glibcVersion).toMatch(/^2\.\d+/);
    } else {
      expect(host.libc).toBeNull();
    }
  });

  it('listPrebuilds lists folders and files; a missing folder is empty', () => {
    const dir = packageWith(SHIPPED);
    const listing = listPrebuilds(join(dir, 'prebuilds'));
    expect(Object.keys(listing).sort()).toEqual(['linux-arm64', 'linux-x64', 'win32-x64']);
    expect(listing['win32-x64']).toEqual(['node.napi.node']);
    expect(listPrebuilds(join(dir, 'nowhere'))).toEqual({});
  });

  // node-gyp-build takes the platform, arch and libc from npm_config_platform, npm_config_arch and
  // LIBC when its module loads: one child process per host.
  it.each([
    ['linux', 'x64', 'glibc'],
    ['linux', 'x64', 'musl'],
    ['linux', 'arm64', 'glibc'],
    ['linux', 'arm64', 'musl'],
    ['win32', 'x64', ''],
    ['darwin', 'arm64', ''],
  ])('%s %s %s: the same file as node-gyp-build', (platform, arch, libc) => {
    const listing = {
      ...SHIPPED,
      'linux-x64': ['node.napi.glibc.node', 'node.napi.musl.node', 'electron.abi1.node'],
      'darwin-x64+arm64': ['node.napi.node'],
    };
    const dir = packageWith(listing);
    const theirs = execFileSync(process.execPath, ['-e', `
      try { process.stdout.write(require(${JSON.stringify(nodeGypBuild)}).resolve(${JSON.stringify(dir)})); }
      catch { process.stdout.write('none'); }`], {
      env: { ...process.env, npm_config_platform: platform, npm_config_arch: arch, LIBC: libc || 'glibc', PREBUILDS_ONLY: '1' },
      encoding: 'utf8',
    });
    const host: Host = { platform, arch, libc: platform === 'linux' ? (libc as 'glibc' | 'musl') : null, abi: process.versions.modules };
    const ours = choosePrebuild(listing, host);
    expect(ours.file === null ? 'none' : join(dir, 'prebuilds', ours.file)).toBe(theirs);
  });
});
