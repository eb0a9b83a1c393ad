import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { archivePlanByName, createPlan, plansList, planView, updatePlan } from "../../libraries/billing/plans.ts";
import { seeOther } from "../pages/render.ts";
import { type ConsoleAdmin, consoleAccess } from "./guard.ts";
import {
  actionErrorOf,
  field,
  formConfig,
  listField,
  noticeFrom,
  pageConfig,
  renderConsole,
  renderWithError,
  type ShownError,
} from "./render.ts";

const nameOf = (request: FastifyRequest) => String((request.params as { name?: string }).name ?? "");

/** The create form's fields as the library's input (empty fields left out, so the library's defaults apply). */
function planInput(body: unknown) {
  const text = (name: string, max = 200) => {
    const value = field(body, name, max)?.trim();
    return value ? value : undefined;
  };
  const days = text("duration_days", 10);
  const clients = listField(body, "clients");
  const input: Record<string, unknown> = {
    name: text("name") ?? "",
    entitlements: listField(body, "entitlements"),
  };
  const description = field(body, "description", 1000);
  if (description) input.description = description;
  for (const key of ["stripe_price", "crypto_price", "crypto_currency"]) {
    const value = text(key);
    if (value !== undefined) input[key] = value;
  }
  if (days !== undefined) input.duration_days = /^\d{1,9}$/.test(days) ? Number(days) : days;
  if (clients.length) input.clients = clients;
  return input;
}

/**
 * Plans in the console (#12, #14): every plan with its prices and what it grants, create, edit (description,
 * entitlements, apps) and archive. Reads: support may; changes: admin. The library functions the admin API and the
 * CLI use, audited with the admin's id.
 */
export async function planPages(app: FastifyInstance): Promise<void> {
  const page = pageConfig(app);
  const form = formConfig(app);

  async function show(
    request: FastifyRequest,
    reply: FastifyReply,
    admin: ConsoleAdmin,
    extra: Record<string, unknown> = {},
    shown?: ShownError,
  ) {
    const rows = await plansList(app.ctx, true);
    const data = {
      title: "Plans",
      active: "/admin/plans",
      notice: noticeFrom(request),
      plans: await Promise.all(rows.map((p) => planView(app.ctx, p))),
      ...extra,
    };
    return shown
      ? renderWithError(request, reply, admin, "plans", data, shown)
      : renderConsole(request, reply, admin, "plans", data);
  }

  app.get("/admin/plans", page, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    return show(request, reply, admin);
  });

  app.post("/admin/plans", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      await createPlan(app.ctx, planInput(request.body), admin.actor);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      const values = Object.fromEntries(
        [
          "name",
          "description",
          "stripe_price",
          "crypto_price",
          "crypto_currency",
          "duration_days",
          "entitlements",
          "clients",
        ].map((k) => [k, field(request.body, k, 2000) ?? ""]),
      );
      return show(request, reply, admin, { values }, shown);
    }
    return seeOther(reply, "/admin/plans?notice=plan_created");
  });

  app.post("/admin/plans/:name", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      await updatePlan(
        app.ctx,
        nameOf(request),
        {
          description: field(request.body, "description", 1000) ?? "",
          entitlements: listField(request.body, "entitlements"),
          clients: listField(request.body, "clients"),
        },
        admin.actor,
      );
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return show(request, reply, admin, {}, shown);
    }
    return seeOther(reply, "/admin/plans?notice=plan_saved");
  });

  app.post("/admin/plans/:name/archive", form, async (request, reply) => {
    const admin = await consoleAccess(request, reply, "admin");
    if (!admin) return reply;
    try {
      await archivePlanByName(app.ctx, nameOf(request), admin.actor);
    } catch (error) {
      const shown = actionErrorOf(error);
      if (!shown) throw error;
      return show(request, reply, admin, {}, shown);
    }
    return seeOther(reply, "/admin/plans?notice=plan_archived");
  });
}
