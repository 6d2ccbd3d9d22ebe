/** What every benchmark returns: named figures and the budgets checked against them. */
export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  budgets: { name: string; value: number; limit: number; ok: boolean }[];
}
