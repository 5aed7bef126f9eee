/**
 * The native backend's loader: the only file that touches the addon. Until the addon is built it
 * reports why it is unavailable, and the facade falls back to (or, when 'native' was asked for,
 * refuses with) that reason.
 */
import type { Backend } from './backend.js';

export type NativeLoad = { backend: Backend; reason?: undefined } | { backend: null; reason: string };

let cached: NativeLoad | null = null;

export function loadNative(): NativeLoad {
  cached ??= {
    backend: null,
    reason: 'this build of fastgru has no native addon (it is not compiled yet); the js backend runs everything',
  };
  return cached;
}
