-- CloudNativePG Cluster health for Argo CD (argocd-cm resource.customizations.health.postgresql.cnpg.io_Cluster).
-- Argo CD v3.5.1's built-in check (resource_customizations/postgresql.cnpg.io/Cluster/health.lua in
-- argoproj/argo-cd) ends with `hs.message = obj.status.phaseReason`, which raises a Lua error on a
-- Cluster that has no status yet (between its creation and the operator's first reconcile); the error
-- becomes a ComparisonError that aborts the running sync. This is the same mapping with that case
-- reported as Progressing, and with these changes (phases as CloudNativePG v1.30.0 names them,
-- api/v1/cluster_types.go):
-- - the phases of a routine change that ends by itself are Progressing, not Degraded: applying a
--   configuration, a switchover, a primary restarted in place (with or without a switchover), an
--   online upgrade of the instance manager. Degraded fails the running sync, so a release that
--   changes a restart-requiring PostgreSQL parameter failed at wave -1 while the operator applied it;
-- - the two failure phases the built-in table lacks (a plugin error, an invalid definition) are
--   Degraded instead of Unknown.
-- A failover, a major version upgrade and a delayed upgrade stay Degraded: unplanned or needing a person.
local hs = {}

if obj.status == nil then
    hs.status = "Progressing"
    hs.message = "Waiting for the CloudNativePG operator to reconcile the Cluster"
    return hs
end

local cnpgStatus = {
    ["Cluster in healthy state"] = "Healthy",
    ["Setting up primary"] = "Progressing",
    ["Creating a new replica"] = "Progressing",
    ["Upgrading cluster"] = "Progressing",
    ["Waiting for the instances to become active"] = "Progressing",
    ["Promoting to primary cluster"] = "Progressing",
    ["Switchover in progress"] = "Progressing",
    ["Failing over"] = "Degraded",
    ["Upgrading Postgres major version"] = "Degraded",
    ["Cluster upgrade delayed"] = "Degraded",
    ["Waiting for user action"] = "Degraded",
    ["Primary instance is being restarted in-place"] = "Progressing",
    ["Primary instance is being restarted without a switchover"] = "Progressing",
    ["Cluster cannot execute instance online upgrade due to missing architecture binary"] = "Degraded",
    ["Online upgrade in progress"] = "Progressing",
    ["Applying configuration"] = "Progressing",
    ["Cluster cannot proceed to reconciliation due to an error while interacting with plugins"] = "Degraded",
    ["Invalid cluster definition"] = "Degraded",
    ["Unable to create required cluster objects"] = "Suspended",
    ["Cluster cannot proceed to reconciliation due to an unknown plugin being required"] = "Suspended",
    ["Cluster has incomplete or invalid image catalog"] = "Suspended",
    ["Cluster is unrecoverable and needs manual intervention"] = "Suspended",
}

local function hibernating(obj)
    for i, condition in pairs(obj.status.conditions) do
        if condition.type == "cnpg.io/hibernation" then
            return condition
        end
    end
    return nil
end

-- Check if reconciliation is suspended, since this is an explicit user action we return the "suspended" status immediately
if obj.metadata and obj.metadata.annotations and obj.metadata.annotations["cnpg.io/reconciliationLoop"] == "disabled" then
    hs.status = "Suspended"
    hs.message = "Cluster reconciliation is suspended"
    return hs
end

if obj.status ~= nil and obj.status.conditions ~= nil then
    local hibernation = hibernating(obj)
    if hibernation ~= nil then
        if hibernation.status == "True" then
            hs.status = "Suspended"
            hs.message = hibernation.message
            return hs
        else
            hs.status = "Degraded"
            hs.message = hibernation.message
            return hs
        end
    end
    local statusState = cnpgStatus[obj.status.phase]
    if statusState ~= nil then
        hs.status = statusState
        hs.message = obj.status.phaseReason
        return hs
    else
        hs.status = "Unknown"
        hs.message = obj.status.phaseReason
        return hs
    end
end

hs.status = "Progressing"
hs.message = obj.status.phaseReason
return hs
