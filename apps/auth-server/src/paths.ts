import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The directory holding the server's files that are read at run time (templates, static assets). This module sits at
 * the top of src/, and the build bundles it into dist/server.js and dist/cli.js at the top of dist/, next to copies
 * of src/views and src/public: so the same line finds them from source (tests, tsx) and from the compiled bundle.
 */
const root = dirname(fileURLToPath(import.meta.url));

export const viewsDir = join(root, "views");
export const publicDir = join(root, "public");
