/**
 * Where the native engine comes from, in this order: the file FASTGRU_ADDON names (the sanitizer
 * runs), a source build in `build/` (found by `bindings`, as `npx fastgru build` or a clone's
 * `npm install` leave it), then the prebuilt engine that fits this machine. The package ships one
 * addon per platform in `prebuilds/<platform>-<arch>/`, named by prebuildify's convention as node-gyp-build reads it:
 * dot-separated tags before `.node` (`node.napi.glibc.node`): the runtime, `napi` (ABI-stable, any
 * Node version), `abi<N>`, `uv<N>`, `armv<N>` and the libc. A folder may name several
 * architectures (`darwin-x64+arm64`); a file whose libc tag differs from this machine's is never
 * chosen, so a glibc binary is never loaded on musl (Alpine). Everything here is a pure function of
 * what it is given, so every case is testable on any machine; `detectHost` reads the real one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The C library of a Linux machine; null elsewhere. */
export type Libc = 'glibc' | 'musl' | null;

/** What decides which prebuild fits. */
export interface Host {
  /** process.platform: `linux`, `win32`, `darwin`, ... */
  readonly platform: string;
  /** process.arch: `x64`, `arm64`, ... */
  readonly arch: string;
  /** The C library on Linux; null elsewhere. */
  readonly libc: Libc;
  /** glibc's version at run time ("2.36"), when the libc is glibc and it could be read. */
  readonly glibcVersion?: string;
  /** The Node-API ABI (process.versions.modules), for prebuilds tagged abi<N> rather than napi. */
  readonly abi?: string;
  /** libuv's major version, for prebuilds tagged uv<N>. */
  readonly uv?: string;
  /** The ARM architecture version (`8` on arm64), for prebuilds tagged armv<N>. */
  readonly armv?: string;
}

/** The oldest glibc our Linux prebuilds load on (their symbol versions are checked at release). */
export const PREBUILD_MIN_GLIBC = '2.28';

/** A prebuilds folder as listed: folder name (`linux-x64`) to the file names in it. */
export type PrebuildListing = Readonly<Record<string, readonly string[]>>;

/** The prebuild that fits (its path under the prebuilds folder), or why none does. */
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
 * This machine. On Linux the libc comes from the diagnostic report: its header names glibc's
 * run-time version, and on musl its list of shared objects names musl's loader (the method
 * detect-libc uses first). A machine is taken for musl only on such evidence: when the report
 * says neither, `/usr/bin/ldd` decides, and failing that glibc is assumed (a prebuild that then
 * fails to load says so in the reason, never a crash).
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
  const report = readReport();
  if (report.glibcVersion) return { ...base, libc: 'glibc', glibcVersion: report.glibcVersion };
  if (report.musl) return { ...base, libc: 'musl' };
  let ldd = '';
  try {
    ldd = readFileSync('/usr/bin/ldd', 'latin1');
  } catch {
    // no ldd: nothing more to read
  }
  return { ...base, libc: /musl/.test(ldd) ? 'musl' : 'glibc' };
}

function readReport(): { glibcVersion?: string; musl: boolean } {
  // excludeNetwork (Node 20.13+) spares the report resolving the host's network interfaces.
  const report = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined;
  if (!report) return { musl: false };
  const excluded = report.excludeNetwork;
  try {
    report.excludeNetwork = true;
    const r = report.getReport() as { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] };
    return {
      glibcVersion: r.header?.glibcVersionRuntime,
      musl: (r.sharedObjects ?? []).some((o) => /ld-musl-|libc\.musl-/.test(o)),
    };
  } catch {
    return { musl: false };
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
  /** This machine; asked only when a prebuild is to be chosen (reading the libc costs a few ms). */
  host(): Host;
  /** The prebuilds folder as listPrebuilds gives it. */
  readonly prebuilds: PrebuildListing;
  /** The prebuilds folder, to make a chosen file's path. */
  readonly prebuildsDir: string;
  /** What `npx fastgru build` recorded when it failed, if it did. */
  readonly buildFailure?: string | null;
  /** Loads the source build; throws bindings' "Could not locate the bindings file" when there is none. */
  loadLocal(): { addon: T; path: string };
  /** Loads the addon at a path (require). */
  loadFile(path: string): T;
  /**
   * Starts a loaded addon (hands it what it needs, asks what it runs). A throw counts as a failed
   * load and the next engine is tried, unless `isFinal` says the error holds for any engine (a
   * FASTGRU_ISA this CPU cannot run): then it is the reason, as it stands.
   */
  start?(addon: T): void;
  /** Whether an error of start() holds for every engine. */
  isFinal?(error: unknown): boolean;
}

/** The engine that loaded, where it came from and its file; or why none did and how to get one. */
export type Located<T> =
  | { readonly addon: T; readonly source: AddonSource; readonly path: string; readonly reason?: undefined }
  | { readonly addon: null; readonly reason: string };

/** `bindings`' message when it finds no build: the one failure of loadLocal that is not an error. */
export function isMissingBuild(error: unknown): boolean {
  return /Could not locate the bindings file/.test(String((error as Error)?.message ?? error));
}

/** The first line of an error's message: what a reason quotes of it. */
export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}

/** An error of `start` that holds for every engine: it ends the search as the reason. */
class FinalError extends Error {}

/** Loads the first engine that loads and starts, in the order above, or says why none did and how to get one. */
export function resolveAddon<T>(inputs: LocateInputs<T>): Located<T> {
  const started = (addon: T): T => {
    try {
      inputs.start?.(addon);
    } catch (error) {
      if (inputs.isFinal?.(error)) throw new FinalError(firstLine(error));
      throw error;
    }
    return addon;
  };
  if (inputs.explicit) {
    try {
      return { addon: started(inputs.loadFile(inputs.explicit)), source: 'FASTGRU_ADDON', path: inputs.explicit };
    } catch (error) {
      if (error instanceof FinalError) return { addon: null, reason: error.message };
      return { addon: null, reason: `FASTGRU_ADDON=${inputs.explicit} did not load: ${firstLine(error)}` };
    }
  }
  const failures: string[] = [];
  try {
    const local = inputs.loadLocal();
    return { addon: started(local.addon), source: 'source build', path: local.path };
  } catch (error) {
    if (error instanceof FinalError) return { addon: null, reason: error.message };
    if (!isMissingBuild(error)) failures.push(`the source build did not load: ${firstLine(error)}`);
  }
  const choice = choosePrebuild(inputs.prebuilds, inputs.host());
  if (choice.file !== null) {
    const path = join(inputs.prebuildsDir, choice.file);
    try {
      return { addon: started(inputs.loadFile(path)), source: 'prebuild', path };
    } catch (error) {
      if (error instanceof FinalError) return { addon: null, reason: error.message };
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
