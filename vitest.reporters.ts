/**
 * With VITEST_JSON_REPORT=path (set by .ci/run), every run also writes a JSON report that .ci/run sums into one plain
 * "N passed, N failed" line; otherwise the default reporter alone.
 */
export function ciReporters(): (string | [string, Record<string, unknown>])[] {
  const out = process.env.VITEST_JSON_REPORT;
  return out ? ["default", ["json", { outputFile: out }]] : ["default"];
}
