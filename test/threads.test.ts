// The native thread count fits the CPUs the process may use: backendInfo() says how many and where
// the count came from, and no call (fmaPeak, a Model call asking for 64 threads) starts more
// threads than that. The affinity mask is set with taskset in a child process; the cgroup quota
// files are parsed and walked by the C++ test native/test/test_cpu_limit.cpp on fake trees.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { backendInfo } from '../src/index.js';
import { distWarning, ROOT } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const SCRIPT = 'test/workers/threads-child.mjs';
const SOURCES = ['FASTGRU_THREADS', 'cgroup quota', 'affinity mask', 'hardware'];
const taskset = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));

interface ChildInfo {
  backend: string;
  threads: number;
  threadsFrom?: string;
  maxThreads?: number;
  threadsNote?: string;
}

/** The first CPU this process may run on (taskset pins the child to it). */
function firstAllowedCpu(): string {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return list.split(/[,-]/)[0];
}

/** Runs the child script, pinned to one CPU when `oneCpu`; its JSON line. */
function child(mode: string, env: Record<string, string | undefined>, oneCpu: boolean): { info: ChildInfo; added?: number } {
  const childEnv: Record<string, string | undefined> = { ...process.env, FASTGRU_THREADS: undefined, FASTGRU_THREAD_WORK: undefined, ...env };
  for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
  const [cmd, args] = oneCpu
    ? [taskset as string, ['-c', firstAllowedCpu(), process.execPath, SCRIPT, mode]]
    : [process.execPath, [SCRIPT, mode]];
  const r = spawnSync(cmd, args, { cwd: ROOT, env: childEnv as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 50_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`${mode}: exit ${r.status} ${r.signal ?? ''}: ${r.stderr.trim().split('\n').slice(0, 4).join(' | ')}`);
  return JSON.parse(line) as { info: ChildInfo; added?: number };
}

describe.skipIf(!native)('native thread count', () => {
  it('dist/ is current (the children load it)', () => {
    expect(distWarning()).toBeNull();
  });

  it('backendInfo() gives the default, the cap and where the default came from', () => {
    const info = backendInfo();
    expect(SOURCES).toContain(info.threadsFrom);
    expect(info.maxThreads).toBeGreaterThanOrEqual(1);
    if (process.env.FASTGRU_THREADS === undefined) expect(info.threads).toBe(info.maxThreads);
    expect(info.threads).toBeLessThanOrEqual(info.maxThreads as number);
  });

  it('FASTGRU_THREADS sets the default within the cap', () => {
    const { info } = child('info', { FASTGRU_THREADS: '1' }, false);
    expect({ threads: info.threads, threadsFrom: info.threadsFrom, threadsNote: info.threadsNote })
      .toEqual({ threads: 1, threadsFrom: 'FASTGRU_THREADS', threadsNote: undefined });
  });

  const oneCpu = process.platform === 'linux' && taskset !== undefined && os.cpus().length >= 2;
  describe.skipIf(!oneCpu)('pinned to one CPU (taskset)', () => {
    it('the default is 1, from the affinity mask', () => {
      const { info } = child('info', {}, true);
      expect({ threads: info.threads, maxThreads: info.maxThreads, threadsFrom: info.threadsFrom })
        .toEqual({ threads: 1, maxThreads: 1, threadsFrom: 'affinity mask' });
    });

    it('FASTGRU_THREADS above the cap is clamped, and backendInfo() says so', () => {
      const { info } = child('info', { FASTGRU_THREADS: '1024' }, true);
      expect({ threads: info.threads, threadsFrom: info.threadsFrom }).toEqual({ threads: 1, threadsFrom: 'affinity mask' });
      expect(info.threadsNote).toMatch(/FASTGRU_THREADS=1024.*1 thread/);
    });

    it('fmaPeak(64) starts no worker thread', () => {
      expect(child('fmaPeak', {}, true).added).toBe(0);
    });

    it('a forward with threads: 64 starts no worker thread', () => {
      expect(child('forward', {}, true).added).toBe(0);
    });
  });
});
