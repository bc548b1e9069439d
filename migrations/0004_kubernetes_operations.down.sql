BEGIN;
DROP TABLE IF EXISTS kubernetes_operations;
COMMIT;
