import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of PostgreSQL that a test can cut. `blackhole()` models a network partition: new and existing
 * connections stay open but nothing gets through; what clients send meanwhile is held and delivered when `heal()`
 * is called, as TCP retransmission would deliver it late. `refuse()` models a stopped server (connections reset).
 */
export class TcpProxy {
  private server: Server;
  private mode: "forward" | "blackhole" | "refuse" = "forward";
  private held: { client: Socket; buffered: Buffer[] }[] = [];
  private pairs = new Set<Socket>();
  port = 0;

  constructor(
    private targetHost: string,
    private targetPort: number,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  private accept(client: Socket) {
    client.on("error", () => {});
    if (this.mode === "refuse") {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === "blackhole") {
      const entry = { client, buffered: [] as Buffer[] };
      client.on("data", (chunk) => entry.buffered.push(chunk));
      this.held.push(entry);
      return;
    }
    this.forward(client, []);
  }

  private forward(client: Socket, buffered: Buffer[]) {
    const upstream = createConnection(this.targetPort, this.targetHost);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    for (const chunk of buffered) upstream.write(chunk);
    client.removeAllListeners("data");
    client.on("data", (chunk) => {
      if (this.mode === "blackhole") {
        // Partitioned mid-connection: hold the bytes until heal().
        const entry = this.held.find((h) => h.client === client) ?? { client, buffered: [] };
        if (!this.held.includes(entry)) this.held.push(entry);
        entry.buffered.push(chunk);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (this.mode !== "blackhole") client.write(chunk);
    });
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    this.pairs.add(client);
    client.on("close", () => this.pairs.delete(client));
    (client as Socket & { upstream?: Socket }).upstream = upstream;
  }

  blackhole(): void {
    this.mode = "blackhole";
  }

  refuse(): void {
    this.mode = "refuse";
    for (const client of this.pairs) client.resetAndDestroy();
  }

  /** Back to forwarding; everything held during the blackhole is delivered now. */
  heal(): void {
    this.mode = "forward";
    const held = this.held;
    this.held = [];
    for (const { client, buffered } of held) {
      const upstream = (client as Socket & { upstream?: Socket }).upstream;
      if (upstream) for (const chunk of buffered) upstream.write(chunk);
      else this.forward(client, buffered);
    }
  }

  async close(): Promise<void> {
    for (const client of this.pairs) client.destroy();
    for (const { client } of this.held) client.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
