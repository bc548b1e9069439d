// Command cert-manager runs cert-manager's own ACME controllers (github.com/cert-manager/cert-manager
// at the platform's pin) against the admission tier's API server (tests/admission).
//
// Why a main of our own: cert-manager's binary lives in the module
// github.com/cert-manager/cert-manager/controller-binary (cmd/controller), which the Go module proxy does not
// serve (404 for every version), and that module requires the root module through a `replace ../../`.
// The controllers, the ACME client, the HTTP-01 solver's pod, Service, Ingress and HTTPRoute builders and the
// ContextFactory are all in the root module, which is served. This main does what cmd/controller/app/
// controller.go (Run and buildControllerContextFactory, v1.21.1) does with them: build a ContextFactory from
// the options and run each enabled controller from controller.Known(), then start the informer factories.
// Leader election, the metrics and healthz servers and the PEM size limits are left out.
//
// The options are the chart's (deploy/charts/cert-manager/templates/deployment.yaml: the solver image is
// always passed) and otherwise the defaults of internal/apis/config/controller/v1alpha1/defaults.go, whose
// values tests/admission/test_certificates.py compares with this file's flag defaults.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// The controllers cert-manager enables by default for ACME issuance (DefaultEnabledControllers), each
	// registering itself with controller.Known(); and the ACME issuer implementation.
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "path to a kubeconfig")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "kube-system", "namespace of ClusterIssuers' Secrets")
	solverImage := flag.String("acme-http01-solver-image", "", "the HTTP-01 solver image (the chart always passes it)")
	requestCPU := flag.String("acme-http01-solver-resource-request-cpu", "10m", "solver CPU request")
	requestMemory := flag.String("acme-http01-solver-resource-request-memory", "64Mi", "solver memory request")
	limitsCPU := flag.String("acme-http01-solver-resource-limits-cpu", "100m", "solver CPU limit")
	limitsMemory := flag.String("acme-http01-solver-resource-limits-memory", "64Mi", "solver memory limit")
	runAsNonRoot := flag.Bool("acme-http01-solver-run-as-non-root", true, "solver runAsNonRoot")
	maxConcurrentChallenges := flag.Int("max-concurrent-challenges", 60, "challenges presented at once")
	workers := flag.Int("concurrent-workers", 5, "workers per controller")
	controllers := flag.String("controllers", "", "comma-separated controllers to run (default: every registered one)")
	// The ControllerConfiguration's gatewayAPI.enabled (the platform sets it): the HTTP-01 solver's HTTPRoute.
	enableGatewayAPI := flag.Bool("enable-gateway-api", false, "the Gateway API integration (gatewayAPI.enabled)")
	klog.InitFlags(nil)
	flag.Parse()
	if *solverImage == "" {
		fmt.Fprintln(os.Stderr, "--acme-http01-solver-image is required (the chart always sets it)")
		os.Exit(2)
	}
	quantity := func(name, value string) resource.Quantity {
		q, err := resource.ParseQuantity(value)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--%s=%q: %v\n", name, value, err)
			os.Exit(2)
		}
		return q
	}
	opts := controller.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverImage:                 *solverImage,
			HTTP01SolverResourceRequestCPU:    quantity("acme-http01-solver-resource-request-cpu", *requestCPU),
			HTTP01SolverResourceRequestMemory: quantity("acme-http01-solver-resource-request-memory", *requestMemory),
			HTTP01SolverResourceLimitsCPU:     quantity("acme-http01-solver-resource-limits-cpu", *limitsCPU),
			HTTP01SolverResourceLimitsMemory:  quantity("acme-http01-solver-resource-limits-memory", *limitsMemory),
			ACMEHTTP01SolverRunAsNonRoot:      *runAsNonRoot,
			DNS01CheckRetryPeriod:             10 * time.Second,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: *maxConcurrentChallenges},
		IssuerOptions:    controller.IssuerOptions{ClusterResourceNamespace: *clusterResourceNamespace},
		ConfigOptions:    controller.ConfigOptions{EnableGatewayAPI: *enableGatewayAPI},
		CertificateOptions: controller.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf.InitLogs()
	ctx = logf.NewContext(ctx, logf.Log)
	if err := run(ctx, opts, *controllers, *workers); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(rootCtx context.Context, opts controller.ContextOptions, only string, workers int) error {
	log := logf.FromContext(rootCtx)
	factory, err := controller.NewContextFactory(rootCtx, opts)
	if err != nil {
		return err
	}
	ctx, err := factory.Build()
	if err != nil {
		return err
	}
	enabled := sets.New[string]()
	for name := range controller.Known() {
		enabled.Insert(name)
	}
	if only != "" {
		enabled = sets.New(strings.Split(only, ",")...)
	}
	g, gctx := errgroup.WithContext(rootCtx)
	for name, constructor := range controller.Known() {
		if !enabled.Has(name) {
			continue
		}
		iface, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		log.Info("starting controller", "controller", name)
		g.Go(func() error { return iface.Run(workers, gctx) })
	}
	ctx.SharedInformerFactory.Start(gctx.Done())
	ctx.KubeSharedInformerFactory.Start(gctx.Done())
	ctx.HTTP01ResourceMetadataInformersFactory.Start(gctx.Done())
	if opts.EnableGatewayAPI {
		ctx.GWShared.Start(gctx.Done())
	}
	return g.Wait()
}
