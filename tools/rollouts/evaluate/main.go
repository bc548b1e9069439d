// Command evaluate runs Argo Rollouts' own evaluation of an AnalysisTemplate metric's conditions on a
// Prometheus vector, as its Prometheus provider passes it ([]float64), and prints the measurement's
// phase (Successful, Failed, Inconclusive, Error). Used by tests/delivery/test_analysis_conditions.py.
//
//	evaluate <successCondition> <failureCondition> [value ...]   (values are floats; NaN allowed)
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
	log "github.com/sirupsen/logrus"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: evaluate <successCondition> <failureCondition> [value ...]")
		os.Exit(2)
	}
	result := []float64{}
	for _, arg := range os.Args[3:] {
		value, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "evaluate: %q is not a number\n", arg)
			os.Exit(2)
		}
		result = append(result, value)
	}
	metric := v1alpha1.Metric{Name: "m", SuccessCondition: os.Args[1], FailureCondition: os.Args[2]}
	phase, err := evaluate.EvaluateResult(result, metric, *log.NewEntry(log.New()))
	if err != nil {
		fmt.Printf("%s %v\n", phase, err)
		return
	}
	fmt.Println(phase)
}
