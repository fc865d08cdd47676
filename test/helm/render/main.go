// Command render is a test stand-in for `helm template`: it renders a chart directory the way
// Helm 3 does (Go text/template, Sprig, Helm's own template functions and built-in objects,
// values coalesced from values.yaml and -f files) and prints the result as JSON, so the chart
// tests can run where no helm binary can be installed. It is not Helm: see the chart README
// ("How the chart is tested") for what it covers.
//
//	render --chart DIR [-f values.yaml]... [--name RELEASE] [--namespace NS]
//	       [--kube-version v1.31.0] [--api-versions group/version]... [--dependency NAME=DIR]...
//	       [--values-only]
//
// Output: {"manifests":[{"name":"countersign/templates/x.yaml","content":"..."}],
// "notes":"...","values":{...final values of the top chart...}}. A template error exits 1
// with Helm's message shape on stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var valueFiles, apiVersions, dependencies listFlag
	chartDir := flag.String("chart", "", "chart directory")
	release := flag.String("name", "release-name", "release name (helm template's default)")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.31.0", "Kubernetes version for .Capabilities.KubeVersion")
	flag.Var(&valueFiles, "f", "values file (repeatable; later files win)")
	flag.Var(&apiVersions, "api-versions", "extra API version for .Capabilities.APIVersions (repeatable)")
	flag.Var(&dependencies, "dependency", "NAME=DIR: a subchart, as `helm dependency build` would place it in charts/")
	valuesOnly := flag.Bool("values-only", false, "print only the final values (what Helm validates against values.schema.json, before rendering)")
	flag.Parse()
	if *chartDir == "" {
		fail(fmt.Errorf("--chart is required"))
	}

	chart, err := loadChart(*chartDir, dependencies)
	if err != nil {
		fail(err)
	}
	userValues := map[string]interface{}{}
	for _, file := range valueFiles {
		vals, err := readValuesFile(file)
		if err != nil {
			fail(err)
		}
		userValues = mergeMaps(userValues, vals)
	}
	values := coalesceValues(chart, userValues)
	if *valuesOnly {
		if err := json.NewEncoder(os.Stdout).Encode(&Output{Manifests: []Manifest{}, Values: values}); err != nil {
			fail(err)
		}
		return
	}
	caps, err := newCapabilities(*kubeVersion, apiVersions)
	if err != nil {
		fail(err)
	}
	out, err := renderChart(chart, values, releaseInfo(*release, *namespace), caps)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "Error: %s\n", err)
	os.Exit(1)
}
