/**
 * The deployment examples in docker/ cannot be run here (no Docker engine, no Kubernetes cluster): this test parses
 * them and checks the wiring a typo would break. What it does not prove: that the images start, that Caddy accepts its
 * configuration, that a cluster accepts the manifest (see the README, Deployment).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parseDocument } from "yaml";

const docker = (file: string) => fileURLToPath(new URL(`../../../../docker/${file}`, import.meta.url));
// Compose's `!reset` tag (drop an inherited key) is standard Compose, unknown to a plain YAML parser.
const reset = { tag: "!reset", resolve: () => null };

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  networks?: string[] | Record<string, { ipv4_address?: string }>;
  ports?: string[];
  volumes?: string[];
  secrets?: string[];
}

function compose() {
  const document = parseDocument(readFileSync(docker("compose.yml"), "utf8"), { customTags: [reset], merge: true });
  expect(document.errors).toEqual([]);
  expect(document.warnings).toEqual([]);
  return document.toJS({ maxAliasCount: 10 }) as {
    services: Record<string, Service & { "<<"?: unknown }>;
    secrets: Record<string, { file: string }>;
    networks: Record<string, { ipam: { config: { subnet: string }[] } }>;
  };
}

describe("docker/compose.yml", () => {
  it("runs two auth-server instances on one PostgreSQL and one Redis, behind the proxy only", () => {
    const { services, secrets } = compose();
    expect(Object.keys(services).sort()).toEqual(["auth-server-1", "auth-server-2", "postgres", "proxy", "redis"]);
    const one = services["auth-server-1"] as Service;
    const two = services["auth-server-2"] as Service;
    // The second instance is the first (merge key), without a second build of the same image.
    expect(two.environment).toEqual(one.environment);
    expect(two.image).toBe(one.image);
    expect(one.build).toBeTruthy();
    expect(two.build).toBeNull();
    for (const instance of [one, two]) {
      expect(instance.environment).toMatchObject({
        NODE_ENV: "production",
        DATABASE_URL_FILE: "/run/secrets/database_url",
        TESSERA_MASTER_KEY_FILE: "/run/secrets/master_key",
        REDIS_URL: "redis://redis:6379",
      });
      expect(instance.depends_on).toEqual({
        postgres: { condition: "service_healthy" },
        redis: { condition: "service_healthy" },
      });
      expect(instance.ports).toBeUndefined(); // reachable through the proxy only
      for (const secret of instance.secrets ?? []) expect(secrets[secret]?.file).toMatch(/^\.\/secrets\//);
    }
    expect(services.redis?.healthcheck?.test).toEqual(["CMD", "redis-cli", "ping"]);
  });

  it("trusts forwarded headers from the proxy's fixed address only, inside the network's subnet", () => {
    const { services, networks } = compose();
    const proxy = services.proxy as Service & { networks: Record<string, { ipv4_address: string }> };
    const address = proxy.networks.tessera?.ipv4_address;
    expect(address).toBe("172.28.0.10");
    expect(services["auth-server-1"]?.environment?.TRUSTED_PROXIES).toBe(address);
    expect(networks.tessera?.ipam.config[0]?.subnet).toBe("172.28.0.0/24");
    expect(proxy.volumes).toContain("./Caddyfile:/etc/caddy/Caddyfile:ro");
    expect(proxy.ports).toEqual(["80:80", "443:443"]);
  });

  it("the Caddyfile balances across both instances with /readyz health checks", () => {
    const caddyfile = readFileSync(docker("Caddyfile"), "utf8");
    expect(caddyfile).toMatch(/reverse_proxy auth-server-1:3000 auth-server-2:3000 \{/);
    expect(caddyfile).toMatch(/health_uri \/readyz/);
    // Braces balance (Caddy refuses an unclosed block).
    expect(caddyfile.split("{").length - caddyfile.split("}").length).toBe(0);
  });
});

describe("docker/k8s/tessera.yaml", () => {
  const documents = parseAllDocuments(readFileSync(docker("k8s/tessera.yaml"), "utf8"));
  const objects = documents.map((document) => {
    expect(document.errors).toEqual([]);
    // biome-ignore lint/suspicious/noExplicitAny: a Kubernetes object, read field by field in the assertions
    return document.toJS() as { apiVersion: string; kind: string; metadata: { name: string }; spec: any };
  });

  it("is a Deployment of 2 replicas and a Service selecting its pods", () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`)).toEqual(["apps/v1 Deployment", "v1 Service"]);
    const [deployment, service] = objects;
    expect(deployment?.spec.replicas).toBe(2);
    expect(deployment?.spec.selector.matchLabels).toEqual(deployment?.spec.template.metadata.labels);
    expect(service?.spec.selector).toEqual(deployment?.spec.template.metadata.labels);
    expect(service?.spec.ports[0].targetPort).toBe("http");
  });

  it("probes readiness on /readyz and liveness on /healthz, and reads the master key and database URL from a Secret", () => {
    const container = objects[0]?.spec.template.spec.containers[0];
    expect(container.ports).toEqual([{ name: "http", containerPort: 3000 }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    const env = Object.fromEntries(
      (container.env as { name: string; value?: string; valueFrom?: unknown }[]).map((e) => [e.name, e]),
    );
    for (const [name, key] of [
      ["TESSERA_MASTER_KEY", "master-key"],
      ["DATABASE_URL", "database-url"],
    ]) {
      expect(env[name as string]).toEqual({ name, valueFrom: { secretKeyRef: { name: "tessera", key } } });
    }
    expect(env.NODE_ENV?.value).toBe("production");
    expect(env.TRUSTED_PROXIES?.value).toBeTruthy();
  });
});
