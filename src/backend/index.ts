/** Backend selection: 'auto' takes the native addon where it loads and the js backend otherwise. */
import { BackendUnavailableError } from '../errors.js';
import type { Backend } from './backend.js';
import { jsBackend } from './js/index.js';
import type { AddonSource } from './locate.js';
import { loadNative } from './native.js';

export type BackendChoice = 'auto' | 'native' | 'js';

export interface BackendInfo {
  readonly backend: 'native' | 'js';
  readonly isa: string;
  readonly threads: number;
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
  readonly addon?: { readonly source: AddonSource; readonly path: string };
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

/** What `backend: 'auto'` uses on this machine, and why not native when it is not. */
export function backendInfo(): BackendInfo {
  const native = loadNative();
  const backend = native.backend ?? jsBackend;
  const info: BackendInfo = { backend: backend.name, isa: backend.isa, threads: backend.threads };
  if (native.backend) return { ...info, addon: { source: native.source, path: native.path } };
  return { ...info, reason: native.reason };
}
