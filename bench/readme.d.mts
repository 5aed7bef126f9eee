/** The page bench/readme.mjs writes: 'docs/benchmarks.md', relative to the repository root. */
export const BENCHMARKS_PAGE: string;
/** The benchmarks page with every generated table rewritten from the JSON under `root` (default: the repository). */
export function renderBenchmarks(text: string, options?: { root?: string; log?: (line: string) => void }): string;
