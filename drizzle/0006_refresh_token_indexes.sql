DROP INDEX "refresh_tokens_parent_id_idx";--> statement-breakpoint
DROP INDEX "refresh_tokens_code_id_idx";