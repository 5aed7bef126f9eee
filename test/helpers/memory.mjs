// Resident anonymous memory (RssAnon of /proc/self/status, Linux): what the process has taken
// from the allocator and not yet given back, without the file-backed pages of its code. Used where
// a test, the fuzz suite or the soak bounds a load's memory: the V8 heap, array buffers and the
// engine's native working memory all count.
import { readFileSync } from 'node:fs';

/** Resident anonymous memory in bytes, or null where /proc/self/status has no RssAnon (not Linux). */
export function anonBytes() {
  try {
    const kb = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Samples anonymous memory every millisecond from now until `stop()`, which returns the baseline
 * (the reading at the start) and the highest reading, both in bytes, or nulls without /proc.
 * `sample()` takes a reading in between (for a peak that a synchronous call would hide from the
 * timer).
 */
export function anonSampler() {
  const base = anonBytes();
  let peak = base;
  const sample = () => {
    const now = anonBytes();
    if (now !== null && (peak === null || now > peak)) peak = now;
  };
  const timer = setInterval(sample, 1);
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      return { base, peak };
    },
  };
}
