/**
 * Where the native engine comes from, in this order: the file FASTGRU_ADDON names (the sanitizer
 * runs), a source build in `build/` (found by `bindings`, as `npx fastgru build` or a clone's
 * `npm install` leave it), then the prebuilt engine that fits this machine. The package ships one addon per platform in
 * `prebuilds/<platform>-<arch>/`, named by prebuildify's convention as node-gyp-build reads it:
 * dot-separated tags before `.node` (`node.napi.glibc.node`): the runtime, `napi` (ABI-stable, any
 * Node version), `abi<N>`, `uv<N>`, `armv<N>` and the libc. A folder may name several
 * architectures (`darwin-x64+arm64`); a file whose libc tag differs from this machine's is never
 * chosen, so a glibc binary is never loaded on musl (Alpine). Everything here is a pure function of
 * what it is given, so every case is testable on any machine; `detectHost` reads the real one.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The C library of a Linux machine; null elsewhere. */
export type Libc = 'glibc' | 'musl' | null;

/** What decides which prebuild fits. */
export interface Host {
  readonly platform: string;
  readonly arch: string;
  readonly libc: Libc;
  /** glibc's version at run time ("2.36"), when the libc is glibc. */
  readonly glibcVersion?: string;
  /** The Node-API ABI (process.versions.modules), for prebuilds tagged abi<N> rather than napi. */
  readonly abi?: string;
  readonly uv?: string;
  readonly armv?: string;
}

/** The oldest glibc our Linux prebuilds load on (their symbol versions are checked at release). */
export const PREBUILD_MIN_GLIBC = '2.28';

/** A prebuilds folder as listed: folder name (`linux-x64`) to the file names in it. */
export type PrebuildListing = Readonly<Record<string, readonly string[]>>;

export type PrebuildChoice =
  | { readonly file: string; readonly reason?: undefined }
  | { readonly file: null; readonly reason: string };

interface Tags {
  file: string;
  runtime?: string;
  napi?: boolean;
  abi?: string;
  uv?: string;
  armv?: string;
  libc?: string;
  specificity: number;
}

function parseTags(file: string): Tags | null {
  const parts = file.split('.');
  if (parts.pop() !== 'node') return null;
  const tags: Tags = { file, specificity: 0 };
  for (const tag of parts) {
    if (tag === 'node' || tag === 'electron' || tag === 'node-webkit') tags.runtime = tag;
    else if (tag === 'napi') tags.napi = true;
    else if (tag.startsWith('abi')) tags.abi = tag.slice(3);
    else if (tag.startsWith('uv')) tags.uv = tag.slice(2);
    else if (tag.startsWith('armv')) tags.armv = tag.slice(4);
    else if (tag === 'glibc' || tag === 'musl') tags.libc = tag;
    else continue; // a name such as the package's: not a tag
    tags.specificity++;
  }
  return tags;
}

function fits(tags: Tags, host: Host): boolean {
  if (tags.runtime && tags.runtime !== 'node') return false; // an Electron or NW.js build
  if (tags.abi && !tags.napi && tags.abi !== host.abi) return false;
  if (tags.uv && tags.uv !== host.uv) return false;
  if (tags.armv && tags.armv !== host.armv) return false;
  if (tags.libc && tags.libc !== (host.libc ?? undefined)) return false;
  return true;
}

/** Ordering: a specific ABI over napi, then the file with more tags (more specific) first. */
function compareTags(a: Tags, b: Tags): number {
  if (Boolean(a.abi) !== Boolean(b.abi)) return a.abi ? -1 : 1;
  return b.specificity - a.specificity;
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** `linux-x64 (glibc 2.36)`, `linux-arm64 (musl)`, `win32-x64`. */
export function describeHost(host: Host): string {
  const libc = host.libc === 'glibc' ? ` (glibc${host.glibcVersion ? ' ' + host.glibcVersion : ''})` : host.libc ? ` (${host.libc})` : '';
  return `${host.platform}-${host.arch}${libc}`;
}

/**
 * The prebuild to load on `host`, as a path relative to the prebuilds folder, or why none fits.
 * The reason names the machine and the folders that exist; the caller adds how to build one.
 */
export function choosePrebuild(listing: PrebuildListing, host: Host): PrebuildChoice {
  const folders = Object.keys(listing).sort();
  const shipped = folders.length ? `the package ships ${folders.join(', ')}` : 'the package ships no prebuilt engine';
  const matching = folders
    .map((name) => {
      const [platform, archs, ...rest] = name.split('-');
      const architectures = archs?.split('+') ?? [];
      return rest.length === 0 && platform && architectures.every(Boolean) && platform === host.platform && architectures.includes(host.arch)
        ? { name, count: architectures.length }
        : null;
    })
    .filter((t): t is { name: string; count: number } => t !== null)
    .sort((a, b) => a.count - b.count); // a single-architecture folder over a universal one
  if (matching.length === 0) return { file: null, reason: `no prebuilt engine for ${describeHost(host)}: ${shipped}` };
  const folder = matching[0].name;
  const candidates = listing[folder].map(parseTags).filter((t): t is Tags => t !== null);
  const winner = candidates.filter((t) => fits(t, host)).sort(compareTags)[0];
  if (!winner) {
    const libcs = [...new Set(candidates.map((t) => t.libc).filter(Boolean))];
    const why = libcs.length && host.libc && !libcs.includes(host.libc) ? ` (the ${folder} prebuilds are for ${libcs.join(', ')})` : '';
    return { file: null, reason: `no prebuilt engine for ${describeHost(host)}${why}: ${shipped}` };
  }
  if (winner.libc === 'glibc' && host.glibcVersion && compareVersions(host.glibcVersion, PREBUILD_MIN_GLIBC) < 0) {
    return {
      file: null,
      reason: `the ${folder} prebuild needs glibc ${PREBUILD_MIN_GLIBC} or newer; ${describeHost(host)} has ${host.glibcVersion}`,
    };
  }
  return { file: `${folder}/${winner.file}` };
}

/** Lists `dir` as choosePrebuild takes it; a missing folder is an empty listing. */
export function listPrebuilds(dir: string): PrebuildListing {
  const listing: Record<string, string[]> = {};
  let folders: string[];
  try {
    folders = readdirSync(dir);
  } catch {
    return listing;
  }
  for (const folder of folders) {
    try {
      listing[folder] = readdirSync(join(dir, folder));
    } catch {
      // a file, not a folder: not a prebuild
    }
  }
  return listing;
}

/**
 * This machine. On Linux the libc comes from the diagnostic report's header, which names glibc's
 * run-time version and is absent on musl (the method detect-libc uses first too).
 */
export function detectHost(): Host {
  const base = {
    platform: process.platform,
    arch: process.arch,
    abi: process.versions.modules,
    uv: (process.versions.uv ?? '').split('.')[0],
    armv: process.arch === 'arm64' ? '8' : String((process.config?.variables as Record<string, unknown> | undefined)?.arm_version ?? ''),
  };
  if (process.platform !== 'linux') return { ...base, libc: null };
  const glibcVersion = glibcRuntimeVersion();
  return glibcVersion ? { ...base, libc: 'glibc', glibcVersion } : { ...base, libc: 'musl' };
}

function glibcRuntimeVersion(): string | undefined {
  // excludeNetwork (Node 20.13+) spares the report resolving the host's network interfaces.
  const report = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined;
  if (!report) return undefined;
  const excluded = report.excludeNetwork;
  try {
    report.excludeNetwork = true;
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return header?.glibcVersionRuntime;
  } catch {
    return undefined;
  } finally {
    report.excludeNetwork = excluded;
  }
}

/** The command that builds the engine from source where no prebuild fits. */
export const BUILD_COMMAND = 'npx fastgru build';

/** Where a loaded addon came from. */
export type AddonSource = 'FASTGRU_ADDON' | 'source build' | 'prebuild';

/** What resolveAddon needs from the outside world, injected so that every case can be tested. */
export interface LocateInputs<T> {
  /** The FASTGRU_ADDON path, if set: that file or nothing, no fallback. */
  readonly explicit?: string;
  readonly host: Host;
  readonly prebuilds: PrebuildListing;
  /** The prebuilds folder, to make a chosen file's path. */
  readonly prebuildsDir: string;
  /** What `npx fastgru build` recorded when it failed, if it did. */
  readonly buildFailure?: string | null;
  /** Loads the source build; throws bindings' "Could not locate the bindings file" when there is none. */
  loadLocal(): { addon: T; path: string };
  loadFile(path: string): T;
}

export type Located<T> =
  | { readonly addon: T; readonly source: AddonSource; readonly path: string; readonly reason?: undefined }
  | { readonly addon: null; readonly reason: string };

/** `bindings`' message when it finds no build: the one failure of loadLocal that is not an error. */
export function isMissingBuild(error: unknown): boolean {
  return /Could not locate the bindings file/.test(String((error as Error)?.message ?? error));
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}

/** Loads the first engine that loads, in the order above, or says why none did and how to get one. */
export function resolveAddon<T>(inputs: LocateInputs<T>): Located<T> {
  if (inputs.explicit) {
    try {
      return { addon: inputs.loadFile(inputs.explicit), source: 'FASTGRU_ADDON', path: inputs.explicit };
    } catch (error) {
      return { addon: null, reason: `FASTGRU_ADDON=${inputs.explicit} did not load: ${firstLine(error)}` };
    }
  }
  const failures: string[] = [];
  try {
    const local = inputs.loadLocal();
    return { addon: local.addon, source: 'source build', path: local.path };
  } catch (error) {
    if (!isMissingBuild(error)) failures.push(`the source build did not load: ${firstLine(error)}`);
  }
  const choice = choosePrebuild(inputs.prebuilds, inputs.host);
  if (choice.file !== null) {
    const path = join(inputs.prebuildsDir, choice.file);
    try {
      return { addon: inputs.loadFile(path), source: 'prebuild', path };
    } catch (error) {
      failures.push(`the prebuilt engine prebuilds/${choice.file} did not load: ${firstLine(error)}`);
    }
  } else {
    failures.push(choice.reason);
  }
  const build = inputs.buildFailure
    ? `the source build (${BUILD_COMMAND}) failed: ${inputs.buildFailure}`
    : `build the engine from source with: ${BUILD_COMMAND}`;
  return { addon: null, reason: `${failures.join('; ')}; ${build}` };
}
