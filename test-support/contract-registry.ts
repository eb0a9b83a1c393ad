/**
 * The apps a test file built through the contract check (apps/auth-server/test/contract.ts), each with a function
 * that says what it answered that /openapi.json does not describe. Kept apart from the check itself so the setup file
 * (contract-setup.ts) that every project loads stays light.
 */
const watched: Array<() => string[]> = [];

export function watchAnswers(problems: () => string[]): void {
  watched.push(problems);
}

/** Every problem of every app watched since the last call, and forget them. */
export function takeContractProblems(): string[] {
  return watched.splice(0).flatMap((problems) => problems());
}
