import type { FastifyInstance } from "fastify";
import { overview } from "../../libraries/admin/overview.ts";
import { consoleAccess } from "./guard.ts";
import { noticeFrom, pageConfig, renderConsole } from "./render.ts";

/** GET /admin: the overview. */
export async function overviewPage(app: FastifyInstance): Promise<void> {
  app.get("/admin", pageConfig(app), async (request, reply) => {
    const admin = await consoleAccess(request, reply, "support");
    if (!admin) return reply;
    const { counts, chart } = await overview(app.ctx);
    return renderConsole(request, reply, admin, "overview", {
      title: "Overview",
      active: "/admin",
      notice: noticeFrom(request),
      chart,
      stats: [
        { label: "Users", value: counts.users },
        { label: "Active sessions", value: counts.activeSessions },
        { label: "Sign-ins, 24 h", value: counts.signIns24h },
        { label: "Failed sign-ins, 24 h", value: counts.signInFailures24h },
        { label: "Refreshes, 24 h", value: counts.refreshes24h },
        { label: "Reuse detections, 24 h", value: counts.reuseDetections24h },
        { label: "Back-channel queue", value: counts.backchannelQueue },
      ],
    });
  });
}
