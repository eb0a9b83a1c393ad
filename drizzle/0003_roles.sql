CREATE TABLE "authorization_catalog" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"version" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "authorization_catalog_single_row" CHECK ("authorization_catalog"."id" = 1)
);
