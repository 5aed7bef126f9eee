/** Backend selection: 'auto' takes the native addon where it loads and the js backend otherwise. */
import { BackendUnavailableError } from '../errors.js';
import type { Backend, ThreadsSource } from './backend.js';
import { jsBackend } from './js/index.js';
import type { AddonSource } from './locate.js';
import { loadNative } from './native.js';

/**
 * The `backend` option of GRU and Linear: 'native' (the C++ engine; BackendUnavailableError where it
 * does not load), 'js' (the pure-TypeScript engine, everywhere, slower), or 'auto' (native where it
 * loads, else js).
 */
export type BackendChoice = 'auto' | 'native' | 'js';

export type { ThreadsSource } from './backend.js';

/** What `backendInfo()` reports: the engine `backend: 'auto'` uses here, its threads, and where it came from. */
export interface BackendInfo {
  /** The engine 'auto' picks: 'native' when the addon loads here, else 'js'. */
  readonly backend: 'native' | 'js';
  /**
   * The instruction set the native kernels use, chosen for this CPU ('avx512', 'avx2', 'neon' or
   * the portable 'ref'; FASTGRU_ISA forces one), or 'js' on the js backend.
   */
  readonly isa: string;
  /**
   * A model's default thread count: FASTGRU_THREADS when set (up to maxThreads), else maxThreads.
   * 1 on the js backend.
   */
  readonly threads: number;
  /**
   * Where `threads` came from: 'FASTGRU_THREADS', or the limit that sets maxThreads ('cgroup
   * quota', 'affinity mask', 'hardware'; see ThreadsSource). Absent on the js backend.
   */
  readonly threadsFrom?: ThreadsSource;
  /**
   * The most threads any call runs: the CPUs this process may use, the least of the hardware
   * threads, the affinity mask and the cgroup CPU quota (read once, when the engine loads). A
   * larger `threads` option or FASTGRU_THREADS runs on this many. 1 on the js backend.
   */
  readonly maxThreads: number;
  /** Present when FASTGRU_THREADS asked for more than maxThreads: says what it asked and what is used. */
  readonly threadsNote?: string;
  /**
   * Why the native backend is not in use, when it is not: what was tried (the prebuilt engine for
   * this platform, a source build) and the command that builds the engine here.
   */
  readonly reason?: string;
  /**
   * The native engine in use: where it came from (`'prebuild'`, shipped in the package;
   * `'source build'`, built by `npx fastgru build` or a clone's `npm install`; `'FASTGRU_ADDON'`)
   * and its file. Absent on the js backend.
   */
  readonly addon?: {
    /** Where the engine came from: 'prebuild', 'source build' or 'FASTGRU_ADDON'. */
    readonly source: AddonSource;
    /** The engine's file, the `.node` shared library loaded. */
    readonly path: string;
  };
}

export function selectBackend(choice: BackendChoice): Backend {
  if (choice === 'js') return jsBackend;
  const native = loadNative();
  if (native.backend) return native.backend;
  if (choice === 'native') {
    throw new BackendUnavailableError(`options.backend: 'native' was requested but is unavailable: ${native.reason}`);
  }
  return jsBackend;
}

/**
 * What `backend: 'auto'` uses on this machine, and why not native when it is not. Loading the
 * native engine is tried once, on first use; this call reports what that attempt found.
 *
 * @returns The engine, its instruction set and thread counts, and either `addon` (where the native
 *   engine came from) or `reason` (why it is not in use).
 *
 * @example
 * ```ts
 * import { backendInfo } from 'fastgru';
 *
 * const info = backendInfo();
 * if (info.backend === 'js') console.warn(`fastgru runs on the js backend: ${info.reason}`);
 * else console.log(`native ${info.isa}, ${info.threads} threads (${info.threadsFrom})`);
 * ```
 */
export function backendInfo(): BackendInfo {
  const native = loadNative();
  const backend = native.backend ?? jsBackend;
  const info: BackendInfo = {
    backend: backend.name, isa: backend.isa, threads: backend.threads,
    ...(backend.threadsFrom === undefined ? {} : { threadsFrom: backend.threadsFrom }),
    maxThreads: backend.maxThreads,
    ...(backend.threadsNote === undefined ? {} : { threadsNote: backend.threadsNote }),
  };
  if (native.backend) return { ...info, addon: { source: native.source, path: native.path } };
  return { ...info, reason: native.reason };
}
