-- Placeholder for the migration number reserved by another issue (000012 files, 000013 search), so that this branch's 000014 runs (the runner wants 1..N without gaps). Delete it when the real one is merged.
SELECT 1;
