CREATE TABLE "webhook_fanouts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_type" text NOT NULL,
	"client_id" uuid,
	"user_ids" uuid[] NOT NULL,
	"expanded" integer DEFAULT 0 NOT NULL,
	"event_timestamp" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "webhook_fanouts" ADD CONSTRAINT "webhook_fanouts_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_fanouts_created_idx" ON "webhook_fanouts" USING btree ("created_at");