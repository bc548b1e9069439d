-- CloudNativePG Backup health for Argo CD (argocd-cm resource.customizations.health.postgresql.cnpg.io_Backup).
-- Argo CD v3.5.1 has no built-in check for Backup, so a Backup hook would count as done the moment it
-- is created. Production's pre-migration Backup (one per schema version) must complete before the migration
-- hook runs.
-- Phases from CloudNativePG v1.30.0's api/v1/backup_types.go (BackupPhase): pending, started, running,
-- finalizing, completed, failed, walArchivingFailing, and "invalid backup definition" (set by
-- backup_funcs.go: it never changes again, so waiting on it would hold the sync forever).
local hs = {status = "Progressing", message = "Waiting for the backup to start"}
if obj.status ~= nil and obj.status.phase ~= nil then
    local phase = obj.status.phase
    if phase == "completed" then
        hs.status = "Healthy"
        hs.message = "Backup completed"
    elseif phase == "failed" or phase == "walArchivingFailing" or phase == "invalid backup definition" then
        hs.status = "Degraded"
        hs.message = "Backup " .. phase .. ": " .. (obj.status.error or "no error message")
    else
        hs.message = "Backup " .. phase
    end
end
return hs
