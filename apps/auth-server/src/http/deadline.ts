import { AsyncResource } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import { runWithDeadline } from "@tessera/db";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../errors/index.ts";

/**
 * After the deadline the database layer has withdrawn or refused the request's pending statements, and the route
 * answers with that error. This backstop answers a request still silent a little later (a statement sent on a
 * connection that went dark mid-flight waits for TCP, not for us), so no request waits longer than this.
 */
const BACKSTOP_GRACE_MS = 250;

const scope = Symbol("tessera.deadlineScope");
const backstop = Symbol("tessera.deadlineBackstop");

interface DeadlineState {
  [scope]?: AsyncResource;
  [backstop]?: NodeJS.Timeout;
}

declare module "fastify" {
  interface FastifyRequest {
    /**
     * When the request arrived, by the app's clock (`ctx.clock`). Time-window decisions (the refresh-token grace
     * window) use this rather than the time they happen to run at, which can be seconds later under load.
     */
    receivedAt: Date;
  }
}

/**
 * Gives every request a deadline (`config.requestDeadlineMs` from arrival): its database work runs inside
 * `runWithDeadline()` (see packages/db/src/deadline.ts), and a request with no answer by then gets 503
 * DATABASE_UNAVAILABLE in the route's error format. Also records `request.receivedAt`.
 */
export function registerDeadlines(app: FastifyInstance): void {
  const deadlineMs = app.ctx.config.requestDeadlineMs;
  app.decorateRequest("receivedAt", null as unknown as Date);

  app.addHook("onRequest", (request, reply, done) => {
    request.receivedAt = app.ctx.clock.now();
    const state = request as FastifyRequest & DeadlineState;
    const timer = setTimeout(() => {
      if (reply.sent || request.raw.destroyed) return;
      request.log.warn({ deadlineMs }, "request deadline passed without an answer");
      reply.send(new AppError("DATABASE_UNAVAILABLE"));
    }, deadlineMs + BACKSTOP_GRACE_MS);
    timer.unref();
    state[backstop] = timer;
    // The AsyncLocalStorage scope must cover the route handler. The hooks before the body is read run inside it;
    // preValidation, preHandler and the handler run from the request stream's 'end' event, outside it, so the scope
    // is carried over with an AsyncResource (as @fastify/request-context does).
    runWithDeadline(performance.now() + deadlineMs, () => {
      const resource = new AsyncResource("tessera.request-deadline");
      state[scope] = resource;
      resource.runInAsyncScope(done, undefined);
    });
  });

  app.addHook("preValidation", (request, _reply, done) => {
    const resource = (request as FastifyRequest & DeadlineState)[scope];
    if (resource) resource.runInAsyncScope(done, undefined);
    else done();
  });

  const clear = (request: FastifyRequest) => clearTimeout((request as FastifyRequest & DeadlineState)[backstop]);
  app.addHook("onResponse", (request, _reply, done) => {
    clear(request);
    done();
  });
  app.addHook("onRequestAbort", (request, done) => {
    clear(request);
    done();
  });
}

/**
 * For a long streamed answer (the audit export, #14): drops the request's backstop timer, so a stream that outlives
 * the deadline is not cut by a 503, and returns a runner that gives each step of the stream (one database batch) a
 * fresh deadline of its own instead.
 */
export function releaseDeadline(
  app: FastifyInstance,
  request: FastifyRequest,
): <T>(step: () => Promise<T>) => Promise<T> {
  clearTimeout((request as FastifyRequest & DeadlineState)[backstop]);
  const deadlineMs = app.ctx.config.requestDeadlineMs;
  return (step) => runWithDeadline(performance.now() + deadlineMs, step);
}
