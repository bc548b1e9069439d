// Traefik for the admission tier (tests/testbed/traefik.py). The build takes Traefik's own module as the main
// module (a copy of its module zip), so its replace directives apply; nothing here is compiled. The version is
// v3.6.12, not the platform's v3.7.13: v3.7.x needs github.com/traefik/traefik/dynamic/ext, a nested module of
// Traefik's repository that its module zip omits and the module proxy does not serve, and some of lego v5's DNS
// provider modules and the containous/go-http-auth fork it pins are refused here too (README, admission tier).
module github.com/kubechat/kubechat-deploy/tools/traefik

go 1.26.8

require github.com/traefik/traefik/v3 v3.6.12
