// Every command-line script of the repository (the fastgru CLI, the benches, the soak, the fuzzer,
// the release scripts and the examples) answers a bad command line with what was wrong, its usage
// line and exit code 2, never a stack trace, and --help with its usage and exit code 0. Each case
// fails at parsing, before the script does any work, so none of them runs a bench or writes a file.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from './helpers/native.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Bad {
  /** The arguments after the script. */
  args: string[];
  /** What the message must name: the flag or the value at fault. */
  names: string;
}

interface Script {
  /** The script and, for the CLI, its command. */
  command: string[];
  bad: Bad[];
}

// Per script: a flag without its value, an unknown flag, a number that is not one (or out of its
// range), and a value outside the allowed list, where the script has such flags.
const SCRIPTS: Script[] = [
  {
    command: ['bin/fastgru.mjs', 'bench'],
    bad: [
      { args: ['--shapes'], names: '--shapes' },
      { args: ['--shapes', '--passes', 'forward'], names: '--shapes' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--budget', 'abc'], names: '--budget' },
      { args: ['--min-runs', '0'], names: '--min-runs' },
      { args: ['--shapes', 'serve,huge'], names: 'huge' },
      { args: ['--passes', 'backward'], names: 'backward' },
      { args: ['d2l'], names: 'd2l' },
    ],
  },
  {
    command: ['bench/bench.mjs'],
    bad: [
      { args: ['--shapes'], names: '--shapes' },
      { args: ['--out'], names: '--out' },
      { args: ['--bogus', '1'], names: '--bogus' },
      { args: ['--budget', 'abc', '--shapes', 'd2l'], names: '--budget' },
      { args: ['--budget', '-1'], names: '--budget' },
      { args: ['--forms', 'after,sideways'], names: 'sideways' },
    ],
  },
  {
    command: ['bench/peers.mjs'],
    bad: [
      { args: ['--threads'], names: '--threads' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--budget', 'abc'], names: '--budget' },
      // --shapes huge stops the unfixed script too, rather than let it run the peers.
      { args: ['--threads', '1.5', '--shapes', 'huge'], names: '--threads' },
      { args: ['--shapes', 'huge'], names: 'huge' },
      { args: ['--no-ort=1'], names: '--no-ort' },
    ],
  },
  {
    command: ['bench/serve.mjs'],
    bad: [
      { args: ['--connections'], names: '--connections' },
      { args: ['--bogus', '1'], names: '--bogus' },
      { args: ['--duration', 'abc'], names: '--duration' },
      { args: ['--duration', '0'], names: '--duration' },
      { args: ['--connections', '1,x'], names: '--connections' },
      { args: ['--body', 'xml'], names: '--body' },
      { args: ['--connections', '64', '--max-requests', '10'], names: '--max-requests' },
    ],
  },
  {
    command: ['bench/shared-workers.mjs'],
    bad: [
      { args: ['--workers'], names: '--workers' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--hidden', 'abc'], names: '--hidden' },
      { args: ['--layers', '0'], names: '--layers' },
      { args: ['--child', 'neither'], names: '--child' },
    ],
  },
  {
    command: ['bench/soak.mjs'],
    bad: [
      { args: ['--every'], names: '--every' },
      { args: ['--bogus', '1'], names: '--bogus' },
      { args: ['--forward-calls', 'abc'], names: '--forward-calls' },
      { args: ['--every', '0'], names: '--every' },
    ],
  },
  {
    command: ['bench/readme.mjs'],
    bad: [{ args: ['--bogus'], names: '--bogus' }],
  },
  {
    command: ['scripts/fuzz.mjs'],
    bad: [
      { args: ['--seconds'], names: '--seconds' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--seconds', 'abc'], names: '--seconds' },
      // --rounds 0: were the value taken, the fuzzer would stop at once rather than fuzz.
      { args: ['--seed', '1.5', '--rounds', '0'], names: '--seed' },
      { args: ['--batch', '0', '--rounds', '0'], names: '--batch' },
      { args: ['--avoid', 'nothing', '--rounds', '0'], names: 'nothing' },
    ],
  },
  {
    command: ['bench/ab.mjs'],
    bad: [
      { args: [], names: '--before' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--before', 'HEAD', '--rounds', '0'], names: '--rounds' },
      { args: ['--before', 'HEAD', '--shapes', 'huge'], names: 'huge' },
      { args: ['--before', 'HEAD', '--budget', '0'], names: '--budget' },
    ],
  },
  {
    command: ['scripts/bitcompare.mjs'],
    bad: [
      { args: [], names: '--before' },
      { args: ['--before'], names: '--before' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--before', 'HEAD', '--cases', '0'], names: '--cases' },
      { args: ['--before', 'HEAD', '--seed', '-1'], names: '--seed' },
    ],
  },
  {
    command: ['scripts/prebuild.mjs'],
    bad: [
      { args: ['--targets'], names: '--targets' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--targets', 'linux-x64,mars'], names: 'mars' },
    ],
  },
  {
    command: ['scripts/prebuild/bits.mjs'],
    bad: [
      { args: ['--addon'], names: '--addon' },
      { args: ['--bogus'], names: '--bogus' },
    ],
  },
  {
    command: ['examples/char-lm/train.mjs'],
    bad: [
      { args: ['--epochs'], names: '--epochs' },
      { args: ['--bogus', '1'], names: '--bogus' },
      { args: ['--lr', 'abc'], names: '--lr' },
      { args: ['--hidden', '0'], names: '--hidden' },
      { args: ['--form', 'sideways'], names: '--form' },
      { args: ['--chars', '100'], names: '--chars' },
    ],
  },
  {
    command: ['examples/server/server.mjs'],
    bad: [
      { args: ['--port'], names: '--port' },
      { args: ['--bogus'], names: '--bogus' },
      { args: ['--max-batch', 'abc'], names: '--max-batch' },
      { args: ['--port', '70000'], names: '--port' },
      { args: ['--batching', 'maybe'], names: '--batching' },
    ],
  },
];

/** A usage line: `usage: ` at the start of a line. */
const USAGE = /^usage: /m;
/** A stack trace's marks: an error class's name at the start of a line, or a frame. */
const STACK = /TypeError|^\w*Error\b|^\s+at /m;

describe('command lines', () => {
  for (const { command, bad } of SCRIPTS) {
    describe(command.join(' '), () => {
      for (const { args, names } of bad) {
        it(`${args.join(' ')}: the message and the usage, exit 2`, async () => {
          // The timeout only ends a script that took a bad value for a good one and started work.
          const r = await runNode([...command, ...args], {}, 30_000);
          const text = r.stdout + r.stderr;
          expect(text).not.toMatch(STACK);
          expect(r.stderr).toMatch(USAGE);
          expect(r.stderr).toContain(names);
          expect(r.code).toBe(2);
        });
      }

      it('--help: the usage on stdout, exit 0', async () => {
        const r = await runNode([...command, '--help'], {}, 30_000);
        expect(r.stdout).toMatch(USAGE);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      });
    });
  }

  it('fastgru with an unknown command: the usage, exit 2', async () => {
    const r = await runNode(['bin/fastgru.mjs', 'bogus']);
    expect(r.stderr).toMatch(USAGE);
    expect(r.stderr).toContain('bogus');
    expect(r.code).toBe(2);
  });

  it('fastgru info with an argument it does not take: the usage, exit 2', async () => {
    const r = await runNode(['bin/fastgru.mjs', 'info', '--bogus']);
    expect(r.stderr).toMatch(USAGE);
    expect(r.stderr).toContain('--bogus');
    expect(r.code).toBe(2);
  });

  it('fastgru with no command, or help: the usage on stdout, exit 0', async () => {
    for (const args of [[], ['help'], ['--help']]) {
      const r = await runNode(['bin/fastgru.mjs', ...args]);
      expect(r.stdout).toMatch(USAGE);
      expect(r.code).toBe(0);
    }
  });

  // `npx fastgru bench` runs the published package, which ships only some of bin/, bench/ and
  // scripts/ (package.json "files"): the argument parser (bin/args.mjs) and everything else a
  // shipped script imports must be in it.
  it('the package ships every file its scripts import', () => {
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    expect(pack.status).toBe(0);
    const shipped = new Set<string>((JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path));
    expect(shipped).toContain('bin/args.mjs');
    const missing: string[] = [];
    for (const file of shipped) {
      if (!file.endsWith('.mjs')) continue;
      const source = readFileSync(join(ROOT, file), 'utf8');
      // Static and dynamic imports and new URL(..., import.meta.url); a folder (ending in /) is one
      // the script makes, as bench/common.mjs makes bench/results/.
      for (const m of source.matchAll(/(?:from\s+|import\s*\(\s*|new URL\()'(\.{1,2}\/[^']*[^/'])'/g)) {
        const target = posix.normalize(posix.join(dirname(file), m[1]));
        if (!shipped.has(target)) missing.push(`${file} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

