import type { FastifyReply, FastifyRequest } from "fastify";
import type { AppError } from "../../errors/index.ts";
import { type CurrentSession, requireSession } from "../../http/session.ts";
import type { Continuation } from "../../libraries/accounts/return-to.ts";
import { continuationFrom, isFormError } from "./render.ts";

/** What a posted hosted form carries: its fields, and where to continue afterwards. */
export interface Form {
  body: Record<string, unknown>;
  continuation: Continuation;
}

/** A form posted by a signed-in browser. */
export interface SignedInForm extends Form {
  current: CurrentSession;
}

interface FormRouteOptions<F extends Form> {
  /** Parses the fields, does the work, and answers (a 303, or a page). */
  handle: (request: FastifyRequest, reply: FastifyReply, form: F) => Promise<FastifyReply>;
  /** The form again, with the error of a failed `handle` next to its fields (the error's status, its headers). */
  view: (request: FastifyRequest, reply: FastifyReply, form: F, error: AppError) => Promise<FastifyReply>;
  /** Errors the form shows (default `isFormError`); any other goes to the error page. */
  shows?: (error: unknown) => error is AppError;
  /** Errors answered another way (a redirect, another page) before `shows` is asked; undefined lets it through. */
  recover?: (
    request: FastifyRequest,
    reply: FastifyReply,
    form: F,
    error: unknown,
  ) => Promise<FastifyReply | undefined> | FastifyReply | undefined;
}

/**
 * The handler of a hosted form's POST: read the body and continuation, run `handle`, and on a form error show the
 * form again with the error instead of the error page. The one skeleton behind every hosted form.
 *
 * @example
 * app.post("/forgot-password", post, formRoute({
 *   handle: async (request, reply, { body, continuation }) => { ...; return seeOther(reply, "/forgot-password/sent") },
 *   view: (request, reply, form, error) => renderPage(request, reply, "forgot-password", {...}, error.status),
 * }))
 */
export function formRoute(options: FormRouteOptions<Form>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    return run(options, request, reply, { body, continuation: continuationFrom(body) });
  };
}

/**
 * `formRoute` for the account pages: without a live session the browser is sent to the sign-in page that comes back to
 * `returnTo`; with one, `handle` and `view` get it as `form.current`.
 */
export function signedInFormRoute(returnTo: string, options: FormRouteOptions<SignedInForm>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const current = await requireSession(request, reply, returnTo);
    if (!current) return reply;
    const body = (request.body ?? {}) as Record<string, unknown>;
    return run(options, request, reply, { body, continuation: continuationFrom(body), current });
  };
}

async function run<F extends Form>(
  options: FormRouteOptions<F>,
  request: FastifyRequest,
  reply: FastifyReply,
  form: F,
): Promise<FastifyReply> {
  try {
    return await options.handle(request, reply, form);
  } catch (error) {
    const recovered = options.recover ? await options.recover(request, reply, form, error) : undefined;
    if (recovered) return recovered;
    if (!(options.shows ?? isFormError)(error)) throw error;
    return options.view(request, reply, form, error);
  }
}
