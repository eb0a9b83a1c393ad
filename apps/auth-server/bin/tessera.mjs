#!/usr/bin/env node
// The `tessera` CLI: runs the compiled dist/cli.js (built by `pnpm install`, or `pnpm build` after editing src/).
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("tessera: dist/cli.js is missing; build it with `pnpm install` or `pnpm build`\n");
  process.exit(1);
}
await import(cli.href);
