"""The data tier: PostgreSQL on CloudNativePG, the Valkey cache, the schema migrations and every backup (physical, logical, the restore drill)."""
