import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { confirmStepUp } from "../../libraries/admin/step-up.ts";
import {
  type ClientRow,
  createClient,
  createPublicClient,
  DEFAULT_SCOPES,
  disableClient,
  enableClient,
  getClient,
  listClients,
  rotateClientSecret,
  type UntrustedClientInput,
  updateClient,
} from "../../libraries/clients/index.ts";
import { withWireNames } from "../admin/client-wire.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  type ConsolePage,
  field,
  formConfig,
  formErrorOf,
  multiField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";
import { tryItReady, tryItRedirectUri } from "./try-it.ts";

const lines = (value: string | undefined) =>
  (value ?? "")
    .split(/\r?\n/)
    .map((v) => v.trim())
    .filter(Boolean);

/** The client types the new-client form offers (the admin API's token_endpoint_auth_method values). */
const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"] as const;

/**
 * The client form's fields as library input (the library validates the values, as for the admin API). Unchecked
 * boxes are sent as false and an empty list of origins clears them: the form always shows every field. The auth
 * method is not here: it is fixed at registration (see `createInput`).
 */
function clientInput(body: unknown): UntrustedClientInput {
  const logo = field(body, "logo_uri")?.trim();
  const backchannel = field(body, "backchannel_logout_uri")?.trim();
  const scopes = field(body, "allowed_scopes")?.trim();
  const color = field(body, "brand_color", 20)?.trim();
  return {
    name: field(body, "name", 200)?.trim() ?? "",
    logoUri: logo ? logo : null,
    brandColor: color ? color : null,
    redirectUris: lines(field(body, "redirect_uris", 50_000)),
    postLogoutRedirectUris: lines(field(body, "post_logout_redirect_uris", 50_000)),
    backchannelLogoutUri: backchannel ? backchannel : null,
    firstParty: field(body, "first_party") === "on",
    directSignIn: field(body, "direct_sign_in") === "on",
    ...(scopes ? { allowedScopes: scopes.split(/\s+/) } : {}),
    // Every checked box as sent: an unknown value or none at all is the library's VALIDATION_FAILED on grant_types.
    grantTypes: multiField(body, "grant_types", 10),
    webOrigins: lines(field(body, "web_origins", 50_000)),
    requireDpop: field(body, "require_dpop") === "on",
    guestAccounts: field(body, "guest_accounts") === "on",
  };
}

/** A new registration: the form's fields and its client type (public clients go through createPublicClient). */
function createInput(body: unknown): { input: UntrustedClientInput; isPublic: boolean } {
  const method = field(body, "token_endpoint_auth_method", 40);
  const input = clientInput(body);
  if (method === "none") return { input, isPublic: true };
  // Anything but the two secret methods is passed on, so the library refuses it as the admin API would.
  return { input: method ? { ...input, tokenEndpointAuthMethod: method } : input, isPublic: false };
}

/** The form's values back from a client row (for the edit form) or from the posted body (after an error). */
function formValues(source: ClientRow | unknown) {
  if (source && typeof source === "object" && "clientId" in source) {
    const c = source as ClientRow;
    return {
      name: c.name,
      logo_uri: c.logoUrl ?? "",
      brand_color: c.brandColor ?? "",
      redirect_uris: c.redirectUris.join("\n"),
      post_logout_redirect_uris: c.postLogoutRedirectUris.join("\n"),
      backchannel_logout_uri: c.backchannelLogoutUri ?? "",
      first_party: c.firstParty,
      direct_sign_in: c.directSignInEnabled,
      allowed_scopes: c.allowedScopes.join(" "),
      token_endpoint_auth_method: c.tokenEndpointAuthMethod,
      grant_types: c.grantTypes,
      web_origins: c.webOrigins.join("\n"),
      require_dpop: c.requireDpop,
      guest_accounts: c.guestAccountsEnabled,
    };
  }
  const method = field(source, "token_endpoint_auth_method", 40);
  return {
    name: field(source, "name", 200) ?? "",
    logo_uri: field(source, "logo_uri") ?? "",
    brand_color: field(source, "brand_color", 20) ?? "",
    redirect_uris: field(source, "redirect_uris", 50_000) ?? "",
    post_logout_redirect_uris: field(source, "post_logout_redirect_uris", 50_000) ?? "",
    backchannel_logout_uri: field(source, "backchannel_logout_uri") ?? "",
    first_party: field(source, "first_party") === "on",
    direct_sign_in: field(source, "direct_sign_in") === "on",
    allowed_scopes: field(source, "allowed_scopes") ?? "",
    token_endpoint_auth_method: AUTH_METHODS.find((m) => m === method) ?? "client_secret_basic",
    grant_types: multiField(source, "grant_types", 10),
    web_origins: field(source, "web_origins", 50_000) ?? "",
    require_dpop: field(source, "require_dpop") === "on",
    guest_accounts: field(source, "guest_accounts") === "on",
  };
}

/** What the new-client form starts with: a confidential web app, the library's default grants and scopes. */
const NEW_CLIENT_VALUES = {
  allowed_scopes: DEFAULT_SCOPES.join(" "),
  first_party: false,
  token_endpoint_auth_method: "client_secret_basic",
  grant_types: ["authorization_code", "refresh_token"],
};

/** "Try it" on the client page: the console's start link when the client can run it, else the URI to register. */
function tryItOf(app: FastifyInstance, client: ClientRow) {
  return {
    ready: tryItReady(app.ctx.config, client),
    href: `/admin/clients/${encodeURIComponent(client.clientId)}/try`,
    uri: tryItRedirectUri(app.ctx.config),
    disabled: client.disabledAt !== null,
  };
}

const idOf = (request: FastifyRequest) => String((request.params as { id?: string }).id ?? "");

/** Clients in the console (#14): list, create, edit, rotate the secret (with a fresh proof), disable and enable. */
export async function clientPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  function showClient(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    client: ClientRow,
    extra: Record<string, unknown> = {},
    shown?: ShownError,
  ) {
    const data: ConsolePage = {
      title: client.name,
      active: "/admin/clients",
      notice: noticeFrom(request),
      client,
      tryIt: tryItOf(app, client),
      values: formValues(client),
      rotateErrors: {},
      ...extra,
    };
    return shown
      ? renderWithError(request, reply, admin, "client", data, shown)
      : renderConsole(request, reply, admin, "client", data);
  }

  app.get("/admin/clients", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const clients = await listClients(app.ctx.db, { limit: 500, includeDisabled: true });
    return renderConsole(request, reply, admin, "clients", {
      title: "Clients",
      active: "/admin/clients",
      notice: noticeFrom(request),
      clients,
    });
  });

  app.get("/admin/clients/new", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    return renderConsole(request, reply, admin, "client-new", {
      title: "New client",
      active: "/admin/clients",
      values: NEW_CLIENT_VALUES,
    });
  });

  app.post("/admin/clients", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const { input, isPublic } = createInput(request.body);
    try {
      if (isPublic) {
        // A public client has no secret to show: straight to its page (a reload cannot register it twice).
        const { client } = await withWireNames(() => createPublicClient(app.ctx, input, admin.actor));
        return seeOther(reply, `/admin/clients/${encodeURIComponent(client.clientId)}?notice=public_client_created`);
      }
      const { client, clientSecret } = await withWireNames(() => createClient(app.ctx, input, admin.actor));
      return renderConsole(request, reply, admin, "secret", {
        title: "Client created",
        active: "/admin/clients",
        client,
        secret: clientSecret,
        overlapEnds: null,
      });
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      const data = { title: "New client", active: "/admin/clients", values: formValues(request.body) };
      return renderWithError(request, reply, admin, "client-new", data, shown);
    }
  });

  app.get("/admin/clients/:id", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return showClient(request, reply, admin, await getClient(app.ctx.db, idOf(request)));
  });

  app.post("/admin/clients/:id", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, idOf(request));
    try {
      await withWireNames(() => updateClient(app.ctx, client.clientId, clientInput(request.body), admin.actor));
      return seeOther(reply, `/admin/clients/${encodeURIComponent(client.clientId)}?notice=client_saved`);
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      return showClient(request, reply, admin, client, { values: formValues(request.body) }, shown);
    }
  });

  app.post("/admin/clients/:id/rotate-secret", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, idOf(request));
    try {
      await confirmStepUp(app.ctx, request.meta, {
        user: admin.current.user,
        code: field(request.body, "confirm_code", 32)?.trim(),
        password: field(request.body, "confirm_password", 1024),
      });
    } catch (error) {
      const shown = formErrorOf(error);
      if (!shown) throw error;
      return showClient(request, reply, admin, client, { rotateErrors: shown.errors }, { ...shown, errors: {} });
    }
    const rotated = await rotateClientSecret(app.ctx, client.clientId, admin.actor);
    return renderConsole(request, reply, admin, "secret", {
      title: "New client secret",
      active: "/admin/clients",
      client: rotated.client,
      secret: rotated.clientSecret,
      overlapEnds: rotated.client.previousSecretExpiresAt?.toISOString() ?? null,
    });
  });

  /** Adds the console's "try it" callback to the client's redirect URIs (the same update as the edit form). */
  app.post("/admin/clients/:id/try-it/register", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    const client = await getClient(app.ctx.db, idOf(request));
    const uri = tryItRedirectUri(app.ctx.config);
    if (!client.redirectUris.includes(uri)) {
      await updateClient(app.ctx, client.clientId, { redirectUris: [...client.redirectUris, uri] }, admin.actor);
    }
    return seeOther(reply, `/admin/clients/${encodeURIComponent(client.clientId)}?notice=client_saved`);
  });

  for (const action of ["disable", "enable"] as const) {
    app.post(`/admin/clients/:id/${action}`, form, async (request, reply) => {
      const admin = await consoleAccess(request, reply, "admin");
      if (!admin) return reply;
      const id = idOf(request);
      const done = await (action === "disable" ? disableClient : enableClient)(app.ctx, id, admin.actor);
      return seeOther(reply, `/admin/clients/${encodeURIComponent(done.clientId)}?notice=client_${action}d`);
    });
  }
}
