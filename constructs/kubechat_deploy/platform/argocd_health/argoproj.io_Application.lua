-- Application health for Argo CD (argocd-cm resource.customizations.health.argoproj.io_Application).
-- Argo CD removed its built-in Application health check in v1.8 (docs: operator-manual/upgrading/1.7-1.8.md);
-- without it a sync wave of child Applications (the platform root's prerequisites before the
-- delivery objects) orders only their creation. This is the check those docs give: a child counts as
-- done when its own health is Healthy.
local hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
    if obj.status.health ~= nil then
        hs.status = obj.status.health.status
        if obj.status.health.message ~= nil then
            hs.message = obj.status.health.message
        end
    end
end
return hs
