-- Placeholder for migration 006 of the ui branch, so that tern (which refuses
-- gaps) can apply 009 on the backups branch alone. Replace it with that
-- branch's migration when merging; it does nothing.
SELECT 1;
