// The two native builds (binding.gyp for node-gyp, CMakeLists.txt for cmake-js and the C++ tests)
// must compile the same sources: a file added to one and forgotten in the other would make the two
// addons differ. Also every .cpp of native/core and native/addon on disk is in the lists, and every
// native/test/test_*.cpp is registered with ctest.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

/** Both files use `#` comments; a path named only in a comment is not a source. */
function stripComments(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .join('\n');
}

/**
 * The native/**\/*.cpp paths a build file names, tests excluded (the addon does not link them), and
 * so is native/prebuild/ (what only the self-contained prebuilds link: CMakeLists.txt's FASTGRU_PREBUILD).
 */
function nativeSources(text: string): Set<string> {
  const paths = stripComments(text).match(/native\/[A-Za-z0-9_./-]+\.cpp\b/g) ?? [];
  return new Set(paths.filter((p) => !p.startsWith('native/test/') && !p.startsWith('native/prebuild/')));
}

/** Sources one list has and the other lacks, as messages; empty when the lists agree. */
function compareSources(gyp: Set<string>, cmake: Set<string>): string[] {
  const problems: string[] = [];
  for (const p of gyp) if (!cmake.has(p)) problems.push(`${p}: in binding.gyp, missing from CMakeLists.txt`);
  for (const p of cmake) if (!gyp.has(p)) problems.push(`${p}: in CMakeLists.txt, missing from binding.gyp`);
  return problems.sort();
}

function cppFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...cppFilesUnder(path));
    else if (entry.name.endsWith('.cpp')) out.push(relative(root, join(root, path)).split('\\').join('/'));
  }
  return out;
}

describe('native build files', () => {
  const gyp = nativeSources(read('binding.gyp'));
  const cmake = nativeSources(read('CMakeLists.txt'));

  it('binding.gyp and CMakeLists.txt list the same native sources', () => {
    expect(gyp.size, 'binding.gyp: expected native sources').toBeGreaterThanOrEqual(5);
    expect(compareSources(gyp, cmake)).toEqual([]);
    expect([...cmake].sort()).toEqual([...gyp].sort());
  });

  it('the addon gets the same preprocessor definitions from both (N-API version, exceptions, unthrowable errors)', () => {
    const gypDefines = new Set((read('binding.gyp').match(/"defines":\s*\[([^\]]*)\]/)?.[1] ?? '').match(/[A-Z_][A-Z0-9_=]*/g) ?? []);
    expect(gypDefines.size).toBeGreaterThan(0);
    // The cmake-js addon and the prebuilds' addon.
    for (const target of ['fastgru', 'fastgru_prebuild']) {
      const line = read('CMakeLists.txt').match(new RegExp(`target_compile_definitions\\(${target} PRIVATE ([^)]*)\\)`))?.[1] ?? '';
      const cmakeDefines = new Set(line.split(/\s+/).filter((d) => d && d !== 'BUILDING_NODE_EXTENSION'));
      expect([...cmakeDefines].sort(), target).toEqual([...gypDefines].sort());
    }
  });

  it('every .cpp under native/core and native/addon is built', () => {
    const onDisk = [...cppFilesUnder('native/core'), ...cppFilesUnder('native/addon')].sort();
    expect(onDisk.length).toBeGreaterThanOrEqual(5);
    expect(onDisk.filter((p) => !gyp.has(p)), 'on disk, missing from binding.gyp').toEqual([]);
    expect(onDisk.filter((p) => !cmake.has(p)), 'on disk, missing from CMakeLists.txt').toEqual([]);
  });

  it('every native/test/test_*.cpp is registered with ctest', () => {
    const text = stripComments(read('CMakeLists.txt'));
    const list = /set\(FASTGRU_TESTS_LIST([^)]*)\)/.exec(text);
    expect(list, 'CMakeLists.txt: expected set(FASTGRU_TESTS_LIST ...)').not.toBeNull();
    const registered = new Set(list![1].split(/\s+/).filter(Boolean));
    const tests = readdirSync(join(root, 'native/test'))
      .filter((f) => /^test_.*\.cpp$/.test(f))
      .map((f) => f.slice('test_'.length, -'.cpp'.length))
      .sort();
    expect(tests.length).toBeGreaterThanOrEqual(1);
    expect([...registered].sort()).toEqual(tests);
  });

  it('the comparison catches a source listed in only one file', () => {
    const gypText = `# native/core/ghost.cpp is only named in a comment
      "sources": ["native/core/a.cpp", "native/core/kernels/b.cpp", "native/addon/addon.cpp"]`;
    const cmakeText = `set(SOURCES native/core/a.cpp native/core/c.cpp)  # native/core/ghost.cpp
      add_library(fastgru SHARED native/addon/addon.cpp)
      add_executable(test_x native/test/test_x.cpp)`;
    expect(compareSources(nativeSources(gypText), nativeSources(cmakeText))).toEqual([
      'native/core/c.cpp: in CMakeLists.txt, missing from binding.gyp',
      'native/core/kernels/b.cpp: in binding.gyp, missing from CMakeLists.txt',
    ]);
    expect(compareSources(nativeSources(gypText), nativeSources(gypText))).toEqual([]);
  });
});
