ALTER TABLE "users" ADD COLUMN "admin_role" text;--> statement-breakpoint
CREATE INDEX "audit_events_client_id_idx" ON "audit_events" USING btree ("client_id","id");--> statement-breakpoint
CREATE INDEX "audit_events_event_idx" ON "audit_events" USING btree ("event","id");