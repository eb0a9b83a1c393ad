import { Eta } from "eta";
import { viewsDir } from "../paths.ts";

/**
 * Templates (eta). `autoEscape` is on, so every `<%= %>` is HTML-escaped; nothing in Tessera's templates uses the raw
 * `<%~ %>` tag except to include another template's already-escaped output. Compiled templates are cached.
 */
export const views = new Eta({
  views: viewsDir,
  autoEscape: true,
  autoTrim: false,
  cache: true,
  useWith: false,
  varName: "it",
});

export function renderView(name: string, data: object): string {
  return views.render(name, data);
}
