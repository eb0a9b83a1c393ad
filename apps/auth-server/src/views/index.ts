import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Eta } from "eta";

/**
 * Templates (eta). `autoEscape` is on, so every `<%= %>` is HTML-escaped; nothing in Tessera's templates uses the raw
 * `<%~ %>` tag except to include another template's already-escaped output. Compiled templates are cached.
 */
export const views = new Eta({
  views: dirname(fileURLToPath(import.meta.url)),
  autoEscape: true,
  autoTrim: false,
  cache: true,
  useWith: false,
  varName: "it",
});

export function renderView(name: string, data: object): string {
  return views.render(name, data);
}
