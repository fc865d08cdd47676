package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Metadata is Chart.yaml, exposed to templates as .Chart with Helm's field names.
type Metadata struct {
	Name         string            `json:"name"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []interface{}     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []interface{}     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

// Chart is a loaded chart: what Helm's loader keeps of a chart directory.
type Chart struct {
	Metadata  *Metadata
	Values    map[string]interface{} // values.yaml
	Templates map[string][]byte      // "templates/x.yaml" -> text
	Files     Files                  // every other file, for .Files
	Subcharts []*Chart
}

// loadChart reads a chart directory as Helm's loader does: Chart.yaml is the metadata,
// values.yaml the defaults, templates/ the templates, charts/ the subcharts, and every other
// file (less those .helmignore names) is reachable through .Files.
func loadChart(dir string, dependencies []string) (*Chart, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	meta := &Metadata{}
	if err := yaml.Unmarshal(raw, meta); err != nil {
		return nil, fmt.Errorf("%s/Chart.yaml: %w", dir, err)
	}
	if meta.APIVersion != "v2" || meta.Name == "" || meta.Version == "" {
		return nil, fmt.Errorf("%s/Chart.yaml: apiVersion v2, name and version are required", dir)
	}
	chart := &Chart{Metadata: meta, Values: map[string]interface{}{}, Templates: map[string][]byte{}, Files: Files{}}
	if vals, err := readValuesFile(filepath.Join(dir, "values.yaml")); err == nil {
		chart.Values = vals
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	ignore := readHelmignore(dir)
	err = filepath.Walk(dir, func(file string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, file)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if info.IsDir() {
			if rel == "charts" || ignore.matches(rel, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if ignore.matches(rel, false) {
			return nil
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		switch {
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" || rel == "Chart.lock":
		case strings.HasPrefix(rel, "templates/"):
			chart.Templates[rel] = data
		default:
			chart.Files[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	subDirs := map[string]string{}
	if entries, err := os.ReadDir(filepath.Join(dir, "charts")); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				subDirs[e.Name()] = filepath.Join(dir, "charts", e.Name())
			}
		}
	}
	for _, dep := range dependencies {
		name, subDir, ok := strings.Cut(dep, "=")
		if !ok {
			return nil, fmt.Errorf("--dependency %q: expected NAME=DIR", dep)
		}
		subDirs[name] = subDir
	}
	names := make([]string, 0, len(subDirs))
	for name := range subDirs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sub, err := loadChart(subDirs[name], nil)
		if err != nil {
			return nil, err
		}
		if sub.Metadata.Name != name {
			return nil, fmt.Errorf("dependency %s: the chart at %s is named %s", name, subDirs[name], sub.Metadata.Name)
		}
		chart.Subcharts = append(chart.Subcharts, sub)
	}
	return chart, nil
}

func readValuesFile(file string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// Helm reads values with sigs.k8s.io/yaml: YAML -> JSON -> Go, so numbers are float64.
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// helmignore is the subset of .helmignore that charts use: one glob per line, a trailing /
// for directories, # comments. (Negations with ! are not supported and are refused.)
type helmignore []string

func readHelmignore(dir string) helmignore {
	raw, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	var rules helmignore = []string{".helmignore"}
	if err != nil {
		return rules
	}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			fail(fmt.Errorf("%s/.helmignore: negated rules are not supported by this renderer", dir))
		}
		rules = append(rules, line)
	}
	return rules
}

func (h helmignore) matches(rel string, isDir bool) bool {
	for _, rule := range h {
		dirOnly := strings.HasSuffix(rule, "/")
		pattern := strings.TrimSuffix(rule, "/")
		if dirOnly && !isDir {
			continue
		}
		target := rel
		if !strings.Contains(pattern, "/") {
			target = path.Base(rel) // a bare name matches at any depth, as in .gitignore
		}
		if ok, _ := path.Match(pattern, target); ok {
			return true
		}
	}
	return false
}
