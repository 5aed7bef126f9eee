export const COMPARED_SETTINGS: string[];
interface Run {
  options: Record<string, unknown>;
  forms: Record<string, { perplexity: number[]; tokensPerSecond: number[] }>;
}
interface At { perplexity: number; tokensPerSecond: number }
export function compareRuns(ours: Run, torch: Run | null | undefined):
  | { comparable: false; reason: string }
  | { comparable: true; forms: Record<string, { epoch: number; ours: At; torch: At | null }> };
