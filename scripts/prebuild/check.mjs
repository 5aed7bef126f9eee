#!/usr/bin/env node
// Checks a prebuilt engine before `npm pack` takes it: the architecture in its header, the
// module's registration among its exports and nothing else, and what it needs from the system.
//   Linux: `objdump -T` shows no GLIBC version above 2.28 and no GLIBCXX or CXXABI version at all
//     (libstdc++ and libgcc are linked in), and it needs no shared library but glibc's.
//   Windows: `objdump -p` shows imports from node.exe and Windows' own DLLs only (no MinGW runtime
//     DLL such as libstdc++-6.dll or libwinpthread-1.dll).
//   node scripts/prebuild/check.mjs TARGET FILE     (TARGET: linux-x64, linux-arm64, win32-x64)
// Prints one line of findings; exits 1 naming each problem.
import { execFileSync } from 'node:child_process';
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { TARGETS } from './targets.mjs';

// The loader's own floor and comparison (src/backend/locate.ts), so the release checks the version
// the loader promises: `npm run build` comes first.
let locate;
try {
  locate = await import('../../dist/backend/locate.js');
} catch {
  console.error('check: dist/ is missing: run npm run build first');
  process.exit(2);
}
const { PREBUILD_MIN_GLIBC: MAX_GLIBC, compareVersions } = locate;
const versionLess = (a, b) => compareVersions(a, b) < 0;

function readHeader(file, bytes) {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    readSync(fd, buf, 0, bytes, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** The machine field of an ELF or PE header, or null when the file is neither. */
function machineOf(file, format) {
  const h = readHeader(file, 1024);
  if (format === 'elf') return h.readUInt32BE(0) === 0x7f454c46 ? h.readUInt16LE(18) : null;
  if (h.toString('latin1', 0, 2) !== 'MZ') return null;
  const pe = h.readUInt32LE(0x3c);
  return pe + 6 <= h.length && h.toString('latin1', pe, pe + 4) === 'PE\0\0' ? h.readUInt16LE(pe + 4) : null;
}

const WINDOWS_DLLS = /^(node\.exe|kernel32\.dll|msvcrt\.dll|ucrtbase\.dll|api-ms-win-[a-z0-9-]+\.dll|advapi32\.dll|user32\.dll|ws2_32\.dll|bcrypt\.dll|ntdll\.dll)$/i;
const GLIBC_LIBS = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux-(x86-64|aarch64)\.so\.[12])$/;

/** { problems: string[], summary: string } for one prebuild. */
export function checkPrebuild(target, file) {
  const t = TARGETS[target];
  if (!t) return { problems: [`unknown target ${target} (one of ${Object.keys(TARGETS).join(', ')})`], summary: '' };
  const problems = [];
  const machine = machineOf(file, t.format);
  if (machine !== t.machine) problems.push(`${file}: machine ${machine === null ? `not an ${t.format.toUpperCase()} file` : '0x' + machine.toString(16)}, expected 0x${t.machine.toString(16)}`);
  const size = statSync(file).size;
  let summary = `${target}: ${(size / 1024).toFixed(0)} KiB`;
  if (t.format === 'elf') {
    const dynsyms = execFileSync(t.objdump, ['-T', file], { encoding: 'utf8' });
    const versions = new Map();
    const exported = [];
    for (const line of dynsyms.split('\n')) {
      const v = /\(?(GLIBC|GLIBCXX|CXXABI)_([0-9A-Z_.]+)\)?\s+(\S+)$/.exec(line);
      if (v) versions.set(`${v[1]}_${v[2]}`, [...(versions.get(`${v[1]}_${v[2]}`) ?? []), v[3]]);
      if (/\s(DF|DO)\s/.test(line) && !/\*UND\*/.test(line)) exported.push(line.trim().split(/\s+/).pop());
    }
    const some = (list) => list.slice(0, 4).join(', ') + (list.length > 4 ? ` and ${list.length - 4} more` : '');
    let newest = '0';
    for (const [key, symbols] of versions) {
      const [lib, version] = key.split('_');
      if (lib === 'GLIBC' && !/^\d+(\.\d+)*$/.test(version)) problems.push(`${key} asked for by ${some(symbols)}: not a public glibc version`);
      else if (lib !== 'GLIBC') problems.push(`${key} asked for by ${some(symbols)}: libstdc++ must be linked statically`);
      else if (versionLess(MAX_GLIBC, version)) problems.push(`${key} asked for by ${some(symbols)} (newer than ${MAX_GLIBC})`);
      if (lib === 'GLIBC' && /^\d/.test(version) && versionLess(newest, version)) newest = version;
    }
    if (!exported.includes('napi_register_module_v1')) problems.push('napi_register_module_v1 is not exported');
    const extra = exported.filter((s) => !/^(napi_register_module_v1|node_api_module_get_api_version_v1)$/.test(s));
    if (extra.length) problems.push(`exports more than the module's registration: ${extra.slice(0, 5).join(', ')}`);
    const needed = [...execFileSync(t.objdump, ['-p', file], { encoding: 'utf8' }).matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]);
    const foreign = needed.filter((n) => !GLIBC_LIBS.test(n));
    if (foreign.length) problems.push(`needs shared libraries beyond glibc's: ${foreign.join(', ')}`);
    summary += `, newest GLIBC_${newest}, no GLIBCXX/CXXABI: ${[...versions.keys()].every((k) => k.startsWith('GLIBC_'))}, needs ${needed.join(' ')}`;
  } else {
    const pe = execFileSync(t.objdump, ['-p', file], { encoding: 'utf8' });
    const dlls = [...pe.matchAll(/DLL Name:\s+(\S+)/g)].map((m) => m[1]);
    const foreign = dlls.filter((d) => !WINDOWS_DLLS.test(d));
    if (foreign.length) problems.push(`imports DLLs that a plain Windows lacks: ${foreign.join(', ')}`);
    if (!dlls.some((d) => /^node\.exe$/i.test(d))) problems.push('imports nothing from node.exe (Node-API)');
    // The export directory's name table: lines such as "\t[   0] napi_register_module_v1", up to the
    // first line that is not one.
    const at = pe.indexOf('[Ordinal/Name Pointer] Table');
    const names = [];
    for (const line of at < 0 ? [] : pe.slice(at).split('\n').slice(1)) {
      const m = /^\s*\[\s*\d+\]\s+(\S+)/.exec(line);
      if (!m) break;
      names.push(m[1]);
    }
    if (!names.includes('napi_register_module_v1')) problems.push('napi_register_module_v1 is not exported');
    const extra = names.filter((s) => !/^(napi_register_module_v1|node_api_module_get_api_version_v1)$/.test(s));
    if (extra.length) problems.push(`exports more than the module's registration: ${extra.slice(0, 5).join(', ')}`);
    summary += `, imports ${dlls.join(' ')}`;
  }
  return { problems, summary };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [target, file] = process.argv.slice(2);
  if (!target || !file) {
    console.error('usage: node scripts/prebuild/check.mjs TARGET FILE');
    process.exit(2);
  }
  const { problems, summary } = checkPrebuild(target, file);
  console.log(summary);
  for (const p of problems) console.error(`check: ${target}: ${p}`);
  process.exit(problems.length ? 1 : 0);
}
