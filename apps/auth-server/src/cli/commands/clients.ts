import { parseArgs } from "node:util";
import { AppError } from "../../errors/index.ts";
import {
  type Actor,
  type ClientRow,
  type ClientUpdate,
  createClient,
  createPublicClient,
  disableClient,
  enableClient,
  getClient,
  listClients,
  rotateClientSecret,
  type SigningAlg,
  updateClient,
} from "../../libraries/clients/index.ts";
import { systemClock } from "../../libraries/clock.ts";
import { type ClientView, clientView, wireFieldErrors } from "../../routes/admin/client-wire.ts";
import { CliFailure, withDatabase } from "../database.ts";
import { type CliIo, type Command, jsonFlagArgs, UsageError } from "../types.ts";

/** The audit actor for CLI actions: the operator at the shell, not an account. */
export const CLI_ACTOR: Actor = { actorId: null, meta: { ip: undefined, userAgent: "tessera-cli" }, via: "cli" };

/**
 * Runs a CLI action, turning catalog errors into a message and an exit code: invalid data 65 (EX_DATAERR), anything
 * else the library refused 1. Field errors are listed one per line with the flag-ish wire name.
 */
export async function runAction<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    const details = wireFieldErrors(error.fields ?? [])
      .map((f) => `\n  ${f.field}: ${f.message}`)
      .join("");
    const dataError = ["VALIDATION_FAILED", "INVALID_REDIRECT_URI", "WEAK_PASSWORD"].includes(error.code);
    throw new CliFailure(`${error.message} (${error.code})${details}`, dataError ? 65 : 1);
  }
}

const ALGS = ["RS256", "ES256", "EdDSA"];

export const clientFlags = {
  name: { type: "string" },
  "redirect-uri": { type: "string", multiple: true },
  "post-logout-redirect-uri": { type: "string", multiple: true },
  "backchannel-logout-uri": { type: "string" },
  "logo-uri": { type: "string" },
  "first-party": { type: "boolean" },
  "direct-sign-in": { type: "boolean" },
  scope: { type: "string", multiple: true },
  alg: { type: "string" },
  "access-token-ttl": { type: "string" },
  "web-origin": { type: "string", multiple: true },
  "require-dpop": { type: "boolean" },
  /** The same as --require-dpop (the issue's name): every token request needs a DPoP proof, tokens are bound. */
  "dpop-bound": { type: "boolean" },
  /** Comma-separated (or repeated): authorization_code, refresh_token, client_credentials, the device grant URN. */
  "grant-types": { type: "string", multiple: true },
  /** Guest accounts (POST /api/v1/guest) for this client. */
  "allow-guests": { type: "boolean" },
  json: { type: "boolean" },
} as const;

/** `--grant-types a,b --grant-types c` as one list; the library validates each value (VALIDATION_FAILED). */
function grantTypesOf(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const list = values.flatMap((v) => v.split(",")).map((v) => v.trim());
  if (list.some((v) => v === "")) throw new UsageError("--grant-types must not contain an empty value");
  return list;
}

const KIND_FLAGS = "[--grant-types TYPE,...] [--allow-guests] [--dpop-bound|--require-dpop]";

const OTHER_URI_FLAGS =
  "[--post-logout-redirect-uri URI]... [--backchannel-logout-uri URI] [--logo-uri URI] [--web-origin ORIGIN]...";

function algOf(value: string | undefined): SigningAlg | undefined {
  if (value === undefined) return undefined;
  if (!ALGS.includes(value)) throw new UsageError(`--alg must be one of ${ALGS.join(", ")}`);
  return value as SigningAlg;
}

function secondsOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,7}$/.test(value)) throw new UsageError("--access-token-ttl must be a whole number of seconds");
  return Number(value);
}

function oneClientId(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError("expected exactly one client_id");
  return positionals[0] as string;
}

/** Human-readable client, one field per line. */
export function describeClient(view: ClientView): string {
  const lines = [
    `client_id:                  ${view.client_id}`,
    ...(view.client_secret
      ? [`client_secret:              ${view.client_secret}   (shown once: store it now, only its hash is kept)`]
      : []),
    `name:                       ${view.name}`,
    `status:                     ${view.disabled_at ? `disabled since ${view.disabled_at}` : "active"}`,
    `redirect_uris:              ${view.redirect_uris.join(" ") || "-"}`,
    `post_logout_redirect_uris:  ${view.post_logout_redirect_uris.join(" ") || "-"}`,
    `backchannel_logout_uri:     ${view.backchannel_logout_uri ?? "-"}`,
    `logo_uri:                   ${view.logo_uri ?? "-"}`,
    `first_party:                ${view.first_party}`,
    `direct_sign_in:             ${view.direct_sign_in}`,
    `allowed_scopes:             ${view.allowed_scopes.join(" ")}`,
    `id_token_signed_response_alg: ${view.id_token_signed_response_alg}`,
    `access_token_ttl_seconds:   ${view.access_token_ttl_seconds ?? "default"}`,
    `public (no secret):         ${view.token_endpoint_auth_method === "none"}`,
    `web_origins:                ${view.web_origins.join(" ") || "-"}`,
    `grant_types:                ${view.grant_types.join(" ")}`,
    `guest_accounts:             ${view.guest_accounts}`,
    `require_dpop:               ${view.require_dpop}`,
    ...(view.previous_secret_expires_at ? [`previous secret valid until: ${view.previous_secret_expires_at}`] : []),
    `created_at:                 ${view.created_at}`,
  ];
  return lines.join("\n");
}

function print(io: CliIo, json: boolean | undefined, view: ClientView): void {
  io.out(json ? JSON.stringify(view, null, 2) : describeClient(view));
}

const deps = (database: { db: import("@tessera/db").Database }, config: import("../../config/index.ts").Config) => ({
  db: database.db,
  clock: systemClock,
  config,
});

export const clientsCreate: Command = {
  name: "clients create",
  summary: "Register a client app; prints its client_id and client_secret (shown once).",
  usage: `tessera clients create --name NAME --redirect-uri URI [--redirect-uri URI]... ${OTHER_URI_FLAGS} [--public] ${KIND_FLAGS} [--first-party] [--direct-sign-in] [--scope SCOPE]... [--alg RS256|ES256|EdDSA] [--access-token-ttl SECONDS] [--json]`,
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...clientFlags, public: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (!values.name) throw new UsageError("--name is required");
    const grantTypes = grantTypesOf(values["grant-types"]);
    // A service (client_credentials) or a console (device grant) without authorization_code needs no redirect URI.
    const redirects = !grantTypes || grantTypes.includes("authorization_code");
    if (redirects && !values["redirect-uri"]?.length) {
      throw new UsageError("at least one --redirect-uri is required");
    }
    const input = {
      name: values.name,
      redirectUris: values["redirect-uri"] ?? [],
      postLogoutRedirectUris: values["post-logout-redirect-uri"],
      backchannelLogoutUri: values["backchannel-logout-uri"],
      logoUri: values["logo-uri"],
      firstParty: values["first-party"] ?? false,
      directSignIn: values["direct-sign-in"] ?? false,
      allowedScopes: values.scope,
      idTokenSignedResponseAlg: algOf(values.alg),
      accessTokenTtlSeconds: secondsOf(values["access-token-ttl"]),
      webOrigins: values["web-origin"],
      requireDpop: values["require-dpop"] || values["dpop-bound"] ? true : undefined,
      grantTypes,
      guestAccounts: values["allow-guests"],
    };
    await withDatabase(io, async (database, config) => {
      const { client, clientSecret } = await runAction(
        (): Promise<{ client: ClientRow; clientSecret: string | undefined }> =>
          values.public
            ? createPublicClient(deps(database, config), input, CLI_ACTOR)
            : createClient(deps(database, config), input, CLI_ACTOR),
      );
      print(io, values.json, clientView(client, clientSecret));
    });
    return 0;
  },
};

export const clientsList: Command = {
  name: "clients list",
  summary: "List registered client apps.",
  usage: "tessera clients list [--active] [--json]",
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { active: { type: "boolean" }, json: { type: "boolean" } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await withDatabase(io, async (database) => {
      const views: ClientView[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await listClients(database.db, { limit: 500, after, includeDisabled: !values.active });
        views.push(...page.map((c) => clientView(c)));
        if (page.length < 500) break;
        after = page.at(-1)?.clientId;
      }
      if (values.json) {
        io.out(JSON.stringify(views, null, 2));
      } else if (views.length === 0) {
        io.out("No clients yet. Register one with: tessera clients create --name NAME --redirect-uri URI");
      } else {
        for (const v of views) {
          io.out(`${v.client_id}  ${v.disabled_at ? "disabled" : "active  "}  ${v.name}  ${v.redirect_uris.join(" ")}`);
        }
      }
    });
    return 0;
  },
};

export const clientsShow: Command = {
  name: "clients show",
  summary: "Show one client app.",
  usage: "tessera clients show CLIENT_ID [--json]",
  async run(argv, io) {
    const { json, positionals } = jsonFlagArgs(argv);
    const clientId = oneClientId(positionals);
    await withDatabase(io, async (database) => {
      print(io, json, clientView(await runAction(() => getClient(database.db, clientId))));
    });
    return 0;
  },
};

/** `clients update`'s arguments as the library's patch (local and remote mode). */
export function clientsUpdateArgs(argv: string[]): {
  clientId: string;
  patch: ClientUpdate;
  json: boolean | undefined;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...clientFlags,
      "no-first-party": { type: "boolean" },
      "no-direct-sign-in": { type: "boolean" },
      "no-backchannel-logout-uri": { type: "boolean" },
      "no-logo-uri": { type: "boolean" },
      "no-post-logout-redirect-uris": { type: "boolean" },
      "no-access-token-ttl": { type: "boolean" },
      "no-web-origins": { type: "boolean" },
      "no-require-dpop": { type: "boolean" },
      "no-dpop-bound": { type: "boolean" },
      "no-allow-guests": { type: "boolean" },
    },
    strict: true,
    allowPositionals: true,
  });
  const clientId = oneClientId(positionals);
  const both = (a: string) => values[a as keyof typeof values] && values[`no-${a}` as keyof typeof values];
  const flags = ["first-party", "direct-sign-in", "backchannel-logout-uri", "logo-uri", "access-token-ttl"];
  for (const flag of [...flags, "require-dpop", "dpop-bound", "allow-guests"]) {
    if (both(flag)) throw new UsageError(`--${flag} and --no-${flag} contradict each other`);
  }
  const flag = (yes: boolean | undefined, no: boolean | undefined) => (yes ? true : no ? false : undefined);
  const patch: ClientUpdate = {
    name: values.name,
    redirectUris: values["redirect-uri"],
    postLogoutRedirectUris: values["no-post-logout-redirect-uris"] ? [] : values["post-logout-redirect-uri"],
    backchannelLogoutUri: values["no-backchannel-logout-uri"] ? null : values["backchannel-logout-uri"],
    logoUri: values["no-logo-uri"] ? null : values["logo-uri"],
    firstParty: flag(values["first-party"], values["no-first-party"]),
    directSignIn: flag(values["direct-sign-in"], values["no-direct-sign-in"]),
    allowedScopes: values.scope,
    idTokenSignedResponseAlg: algOf(values.alg),
    accessTokenTtlSeconds: values["no-access-token-ttl"] ? null : secondsOf(values["access-token-ttl"]),
    webOrigins: values["no-web-origins"] ? [] : values["web-origin"],
    requireDpop: flag(
      values["require-dpop"] || values["dpop-bound"],
      values["no-require-dpop"] || values["no-dpop-bound"],
    ),
    grantTypes: grantTypesOf(values["grant-types"]),
    guestAccounts: flag(values["allow-guests"], values["no-allow-guests"]),
  };
  if (
    patch.requireDpop !== undefined &&
    (values["require-dpop"] || values["dpop-bound"]) &&
    (values["no-require-dpop"] || values["no-dpop-bound"])
  ) {
    throw new UsageError("--dpop-bound and --no-dpop-bound contradict each other");
  }
  if (Object.values(patch).every((v) => v === undefined)) throw new UsageError("nothing to update");
  return { clientId, patch, json: values.json };
}

export const clientsUpdate: Command = {
  name: "clients update",
  summary: "Change a client app's settings (URI flags replace the whole list).",
  usage: `tessera clients update CLIENT_ID [--name NAME] [--redirect-uri URI]... ${OTHER_URI_FLAGS} [--no-backchannel-logout-uri] [--no-logo-uri] [--first-party|--no-first-party] [--direct-sign-in|--no-direct-sign-in] [--no-post-logout-redirect-uris] [--scope SCOPE]... [--alg ALG] [--access-token-ttl SECONDS|--no-access-token-ttl] [--no-web-origins] [--require-dpop|--no-require-dpop] [--grant-types TYPE,...] [--allow-guests|--no-allow-guests] [--dpop-bound|--no-dpop-bound] [--json]`,
  async run(argv, io) {
    const { clientId, patch, json } = clientsUpdateArgs(argv);
    await withDatabase(io, async (database, config) => {
      const client = await runAction(() => updateClient(deps(database, config), clientId, patch, CLI_ACTOR));
      print(io, json, clientView(client));
    });
    return 0;
  },
};

/**
 * A command that does one thing to one client (`tessera clients <verb> CLIENT_ID [--json]`) and prints it; a secret is
 * printed when the action returns one (rotation), and only then.
 */
function clientAction(
  verb: string,
  summary: string,
  action: (d: ReturnType<typeof deps>, clientId: string) => Promise<{ client: ClientRow; clientSecret?: string }>,
): Command {
  return {
    name: `clients ${verb}`,
    summary,
    usage: `tessera clients ${verb} CLIENT_ID [--json]`,
    async run(argv, io) {
      const { json, positionals } = jsonFlagArgs(argv);
      const clientId = oneClientId(positionals);
      await withDatabase(io, async (database, config) => {
        const { client, clientSecret } = await runAction(() => action(deps(database, config), clientId));
        print(io, json, clientView(client, clientSecret));
      });
      return 0;
    },
  };
}

export const clientsRotateSecret = clientAction(
  "rotate-secret",
  "Issue a new client secret (shown once); the previous one keeps working for CLIENT_SECRET_OVERLAP_SECONDS.",
  (d, id) => rotateClientSecret(d, id, CLI_ACTOR),
);

export const clientsDisable = clientAction(
  "disable",
  "Disable a client app: it can no longer sign users in or refresh tokens.",
  async (d, id) => ({ client: await disableClient(d, id, CLI_ACTOR) }),
);

export const clientsEnable = clientAction("enable", "Enable a disabled client app again.", async (d, id) => ({
  client: await enableClient(d, id, CLI_ACTOR),
}));

export const clientCommands: Command[] = [
  clientsCreate,
  clientsList,
  clientsShow,
  clientsUpdate,
  clientsRotateSecret,
  clientsDisable,
  clientsEnable,
];
