-- CronJob health for Argo CD (argocd-cm resource.customizations.health.batch_CronJob).
-- Argo CD v3.5.1's built-in check (resource_customizations/batch/CronJob/health.lua in argoproj/argo-cd)
-- is Degraded when the last run failed and none is active, and a sync whose resource is Degraded fails
-- (gitops-engine pkg/sync/sync_context.go). KubeChat's scheduled jobs (the logical backup, the weekly
-- restore drill) are ordinary resources of each environment: after one failed run every release would
-- fail at their wave until a run succeeds, a week for the drill. Their failures are alerted on
-- (KubeChatLogicalBackupFailed, KubeChatRestoreDrillFailed), so for CronJobs this project manages
-- (label app.kubernetes.io/managed-by: kubechat-deploy) a failed last run is Healthy, with a message that
-- says it failed. Every other CronJob is assessed exactly as the built-in check does (copied below).
local hs = {}

if obj.spec.suspend == true then
    hs.status = "Healthy"
    hs.message = "CronJob is Suspended"
    return hs
end

local managed = obj.metadata.labels ~= nil and obj.metadata.labels["app.kubernetes.io/managed-by"] == "kubechat-deploy"

if obj.status ~= nil then
    if obj.status.lastScheduleTime ~= nil then
        if obj.status.lastSuccessfulTime == nil then
            hs.status = "Healthy"
            hs.message = "The CronJob never completed successfully. It may not be healthy"
            return hs
        end
        if obj.status.active ~= nil and table.getn(obj.status.active) > 0 then
            hs.status = "Healthy"
            hs.message = "The job is running. Its last execution may not have been successful"
            return hs
        end
        if obj.status.lastSuccessfulTime ~= nil and obj.status.lastSuccessfulTime < obj.status.lastScheduleTime then
            if managed then
                hs.status = "Healthy"
                hs.message = "The last run failed (last success " .. obj.status.lastSuccessfulTime ..
                    "); the alerts report it and it does not hold a release: see docs/runbooks"
                return hs
            end
            hs.status = "Degraded"
            hs.message = "CronJob has not completed its last execution successfully"
            return hs
        end
        hs.message = "CronJob has completed its last execution successfully"
        hs.status = "Healthy"
        return hs
    end
    hs.message = "CronJob has not been scheduled yet"
    hs.status = "Healthy"
    return hs
end

hs.status = "Progressing"
hs.message = "Waiting for CronJob"
return hs
