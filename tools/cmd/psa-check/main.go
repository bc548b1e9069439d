// Command psa-check evaluates every pod template in Kubernetes YAML files against the Pod Security
// Standards "restricted" profile, using the same checks as the API server's Pod Security admission.
//
// Usage: psa-check FILE...   (exit 1 and one line per violation when any pod template fails)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// podTemplatePaths says where each workload kind keeps its pod template.
var podTemplatePaths = map[string][]string{
	"Pod":         {},
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"Rollout":     {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

type podTemplate struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     corev1.PodSpec    `json:"spec"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: psa-check FILE...")
		os.Exit(2)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		fmt.Fprintln(os.Stderr, "psa-check:", err)
		os.Exit(2)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	checked, failures := 0, 0
	for _, file := range os.Args[1:] {
		docs, err := readDocuments(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "psa-check: %s: %v\n", file, err)
			os.Exit(2)
		}
		for _, doc := range docs {
			kind, _ := doc["kind"].(string)
			path, ok := podTemplatePaths[kind]
			if !ok {
				continue
			}
			name := nestedString(doc, "metadata", "name")
			if _, ref := nested(doc, "spec", "workloadRef"); kind == "Rollout" && ref {
				continue // the pod template lives in the referenced Deployment, checked there
			}
			raw, ok := nested(doc, path...)
			if !ok {
				fmt.Printf("%s: %s/%s: no pod template at .%v\n", file, kind, name, path)
				failures++
				continue
			}
			var tmpl podTemplate
			if err := convert(raw, &tmpl); err != nil {
				fmt.Printf("%s: %s/%s: cannot read pod template: %v\n", file, kind, name, err)
				failures++
				continue
			}
			checked++
			var reasons []string
			for _, result := range evaluator.EvaluatePod(restricted, &tmpl.Metadata, &tmpl.Spec) {
				if !result.Allowed {
					reasons = append(reasons, result.ForbiddenReason+" ("+result.ForbiddenDetail+")")
				}
			}
			sort.Strings(reasons)
			for _, reason := range reasons {
				fmt.Printf("%s: %s/%s violates PodSecurity restricted:latest: %s\n", file, kind, name, reason)
				failures++
			}
		}
	}
	fmt.Printf("psa-check: %d pod templates checked against restricted:latest, %d violations\n", checked, failures)
	if failures > 0 {
		os.Exit(1)
	}
}

func readDocuments(file string) ([]map[string]interface{}, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs []map[string]interface{}
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(chunk)) == 0 {
			continue
		}
		var doc map[string]interface{}
		if err := yaml.Unmarshal(chunk, &doc); err != nil {
			return nil, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func nested(obj map[string]interface{}, path ...string) (map[string]interface{}, bool) {
	current := obj
	for _, key := range path {
		next, ok := current[key].(map[string]interface{})
		if !ok {
			return nil, false
		}
		current = next
	}
	return current, true
}

func nestedString(obj map[string]interface{}, path ...string) string {
	parent, ok := nested(obj, path[:len(path)-1]...)
	if !ok {
		return ""
	}
	value, _ := parent[path[len(path)-1]].(string)
	return value
}

func convert(in map[string]interface{}, out interface{}) error {
	data, err := yaml.Marshal(in)
	if err != nil {
		return err
	}
	return yaml.UnmarshalStrict(data, out)
}
