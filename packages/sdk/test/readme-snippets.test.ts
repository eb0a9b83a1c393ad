/**
 * Every TypeScript block of the README compiles against the SDK's types as printed: one tsc program over all of them
 * (no build, no packing; `@tessera/sdk/*` maps to src/). The full quick starts are also run (readme.test.ts) and
 * installed from the tarball (pack.test.ts); the partial snippets (Redis store, webhooks, WebSockets, check(), other
 * frameworks) rely on names the surrounding text gives them (`app`, `tessera`, `options`, `req`…), declared below
 * with the types an app would have. The Express block is left to the packed-SDK test: express and its types are
 * installed only there (outside the workspace).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
/** Inside the package, so fastify and ioredis resolve from its node_modules; removed afterwards. */
const dir = join(root, "test-output", "readme-snippets");

interface Snippet {
  heading: string;
  line: number;
  code: string;
}

/** Every ```ts block with the `##` heading it sits under and its line in the README. */
export function readmeSnippets(text: string): Snippet[] {
  const snippets: Snippet[] = [];
  let heading = "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.startsWith("## ")) heading = line.slice(3).trim();
    if (line.trim() !== "```ts") continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]?.trim() !== "```") end++;
    snippets.push({ heading, line: start + 1, code: lines.slice(start, end).join("\n") });
    i = end;
  }
  return snippets;
}

/** What the README's partial snippets take from their surroundings, typed as an app using the SDK would have it. */
const CONTEXT = `
declare const options: import("@tessera/sdk").TesseraOptions;
declare const tessera: import("@tessera/sdk").TesseraClient;
declare const app: import("fastify").FastifyInstance;
declare const requireUser: typeof import("@tessera/sdk/fastify").requireUser;
declare const onUserDeleted: (sub: string, event: import("@tessera/sdk").WebhookEvent) => Promise<void>;
declare const req: import("node:http").IncomingMessage;
declare const server: import("node:http").Server;
declare function send(status: number, headers: Record<string, string | string[]>, body?: string): void;
declare function track(sessionId: string, socket: import("ws").WebSocket): void;
declare function closeAll(sessionId: string, code: number, reason: string): void;
// The WebSocket snippet's route options come from @fastify/websocket, registered by the app.
type FastifyWebsocket = typeof import("@fastify/websocket");
`;

/**
 * \`ws\` ships no types and @types/ws is not installed in this workspace: the part of its API the snippets and
 * @fastify/websocket use, as @types/ws declares it.
 */
const WS_TYPES = `
declare module "ws" {
  import type { IncomingMessage } from "node:http";
  import type { Duplex } from "node:stream";
  import { EventEmitter } from "node:events";
  export class WebSocket extends EventEmitter {
    send(data: string | Buffer): void;
    close(code?: number, reason?: string): void;
  }
  export interface ServerOptions { noServer?: boolean; port?: number }
  export class WebSocketServer extends EventEmitter {
    constructor(options?: ServerOptions);
    handleUpgrade(
      request: IncomingMessage,
      socket: Duplex,
      head: Buffer,
      callback: (client: WebSocket, request: IncomingMessage) => void,
    ): void;
  }
  export { WebSocketServer as Server };
  export default WebSocket;
}
`;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README TypeScript snippets", () => {
  const snippets = readmeSnippets(readme);

  it("finds every block: the quick start, Redis store, webhooks, WebSockets, checkout, check() and other frameworks", () => {
    expect(snippets.map((s) => s.heading)).toEqual([
      "A complete Fastify integration",
      "Back-channel logout and the revoked-session set",
      "Webhooks",
      "Webhooks",
      "WebSockets",
      "WebSockets",
      "Selling a plan",
      "Errors",
      "Express",
      "Other frameworks",
    ]);
  });

  // One tsc program over the package: a few seconds alone, more beside the coverage run's parallel suites.
  it("each one type-checks against the SDK's types as printed", { timeout: 180_000 }, () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "context.d.ts"), CONTEXT);
    writeFileSync(join(dir, "ws.d.ts"), WS_TYPES);
    const files = new Map<string, Snippet>();
    for (const [index, snippet] of snippets.entries()) {
      if (snippet.heading === "Express") continue;
      const file = join(dir, `snippet-${index + 1}.ts`);
      // `export {}`: each block is a module of its own, so its names shadow the context's instead of clashing.
      writeFileSync(file, `${snippet.code}\nexport {};\n`);
      files.set(file, snippet);
    }
    const websocket = dirname(
      fileURLToPath(import.meta.resolve("@fastify/websocket", new URL("../../../apps/demo-game/", import.meta.url))),
    );
    const program = ts.createProgram([...files.keys(), join(dir, "context.d.ts"), join(dir, "ws.d.ts")], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
      types: ["node"],
      typeRoots: [join(root, "../../node_modules/@types")],
      baseUrl: root,
      paths: {
        "@tessera/sdk": ["src/index.ts"],
        "@tessera/sdk/*": ["src/*.ts"],
        "@fastify/websocket": [relative(root, join(websocket, "types/index.d.ts"))],
      },
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (!d.file) return message;
      const snippet = files.get(d.file.fileName);
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
      const where = snippet ? `README.md:${snippet.line + line} (${snippet.heading})` : relative(root, d.file.fileName);
      return `${where}: ${message}`;
    });
    expect(problems).toEqual([]);
  });
});
