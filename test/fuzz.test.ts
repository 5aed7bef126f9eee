// The short seeded slice of the fuzz suite (issue 6): every property of test/fuzz/ runs a fixed
// number of times with seed 1, in a child process (a crash of the code under test ends the child,
// not vitest). `npm run fuzz` runs the same properties for as long as it is given.
import { describe, expect, it } from 'vitest';
import { distWarning, ROOT, runNode } from './helpers/native.js';

interface Event {
  type: string;
  id?: string;
  area?: string;
  kind?: string;
  message?: string;
  runs?: number;
  rounds?: number;
  properties?: Array<{ id: string }>;
  addon?: boolean;
  counts?: Record<string, number>;
}

const ROUNDS = 2;
const RUNS = 25;

describe('the fuzz suite, a seeded slice', async () => {
  const warning = distWarning();
  const child = await runNode(
    [`${ROOT}test/fuzz/child.mjs`, '--seed', '1', '--rounds', String(ROUNDS), '--batch', String(RUNS)],
    {},
    240_000,
  );
  const events: Event[] = child.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Event);
  const start = events.find((e) => e.type === 'start');
  const done = events.find((e) => e.type === 'done');
  const failures = events.filter((e) => e.type === 'failure');
  const ids = (start?.properties ?? []).map((p) => p.id);

  it('the child runs every round and exits cleanly (no crash, no hang)', () => {
    expect(warning).toBeNull();
    expect({ code: child.code, signal: child.signal, stderr: child.stderr.slice(-2000) }).toMatchObject({ code: 0, signal: null });
    expect(done?.rounds).toBe(ROUNDS);
    // 32 properties; the 6 that call the addon directly need it (the js backend runs 26).
    expect(ids.length).toBeGreaterThanOrEqual(start?.addon ? 32 : 26);
    expect(ids.some((id) => id.startsWith('addon.'))).toBe(Boolean(start?.addon));
  });

  it('no property fails: every call returned a correct result or threw one of fastgru\'s errors naming its argument', () => {
    expect(failures.map((f) => `${f.id} (${f.kind}): ${f.message}`)).toEqual([]);
  });

  it.each(ids.map((id) => [id] as const))('%s ran every round', (id) => {
    const batches = events.filter((e) => e.type === 'batch' && e.id === id);
    expect(batches.length).toBe(ROUNDS);
    for (const b of batches) expect(b.runs).toBe(RUNS);
  });

  it('made thousands of calls across the API and the addon', () => {
    const total = Object.values(done?.counts ?? {}).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(2_000);
  });
});
