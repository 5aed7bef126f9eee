// Shared by the native-*.test.ts files: seeded data, child processes and the dist build they load.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Seeded data: one implementation (test/helpers/prng.mjs), also used by test/fuzz/ and test/workers/. */
export { prng, uniform } from './prng.mjs';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node ...args` in a child process with extra environment variables; never rejects. */
export function runNode(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 50_000): Promise<ChildResult> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Child processes and worker threads load dist/ (plain node cannot import the .ts sources). A dist
 * older than src/ would test yesterday's facade: say so loudly rather than pass or fail silently.
 */
export function distWarning(): string | null {
  const dist = `${ROOT}dist/index.js`;
  if (!existsSync(dist)) return 'dist/index.js is missing: run `npx tsc -p tsconfig.build.json`';
  const built = statSync(dist).mtimeMs;
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && statSync(path).mtimeMs > built + 1000) stale.push(path.slice(ROOT.length));
    }
  };
  walk(`${ROOT}src`);
  return stale.length ? `dist/ is older than ${stale.join(', ')}: run \`npx tsc -p tsconfig.build.json\`` : null;
}

/** Float32Array <-> base64 of its bytes, the form the child scripts print. */
export function fromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
