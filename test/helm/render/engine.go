package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"

	semver "github.com/Masterminds/semver"
	sprig "github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

// Output is what the renderer prints.
type Output struct {
	Manifests []Manifest             `json:"manifests"`
	Notes     string                 `json:"notes"`
	Values    map[string]interface{} `json:"values"`
}

// Manifest is one rendered template file.
type Manifest struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// renderable is one template with the values it is executed with (its own chart's scope).
type renderable struct {
	name   string
	text   string
	isTop  bool
	values map[string]interface{}
}

func releaseInfo(name, namespace string) map[string]interface{} {
	return map[string]interface{}{
		"Name": name, "Namespace": namespace, "IsUpgrade": false, "IsInstall": true,
		"Revision": 1, "Service": "Helm",
	}
}

// renderChart renders every template of the chart and its subcharts in one template set, so
// that named templates defined anywhere can be included anywhere (as in Helm). Files whose
// base name starts with "_" are parsed but not emitted; NOTES.txt of the top chart is returned
// separately and subcharts' NOTES.txt are dropped (helm's default).
func renderChart(chart *Chart, values map[string]interface{}, release map[string]interface{}, caps *Capabilities) (*Output, error) {
	var all []renderable
	collectTemplates(chart, chart.Metadata.Name, values, release, caps, true, &all)
	// Helm's order (sortTemplates: byPathLen reversed): deeper paths first, and within one depth
	// names in reverse order. It decides which of two same-named defines wins (the last parsed).
	sort.SliceStable(all, func(i, j int) bool {
		di, dj := strings.Count(all[i].name, "/"), strings.Count(all[j].name, "/")
		if di != dj {
			return di > dj
		}
		return all[i].name > all[j].name
	})

	root := template.New("gotpl").Option("missingkey=zero")
	root.Funcs(funcMap(root))
	for _, r := range all {
		if _, err := root.New(r.name).Parse(r.text); err != nil {
			return nil, cleanError(err)
		}
	}
	out := &Output{Manifests: []Manifest{}, Values: values}
	for _, r := range all {
		if strings.HasPrefix(path.Base(r.name), "_") {
			continue
		}
		isNotes := strings.HasSuffix(r.name, "/NOTES.txt")
		if isNotes && !r.isTop {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, r.name, r.values); err != nil {
			return nil, cleanError(err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			out.Notes = text
			continue
		}
		out.Manifests = append(out.Manifests, Manifest{Name: r.name, Content: text})
	}
	sort.Slice(out.Manifests, func(i, j int) bool { return out.Manifests[i].Name < out.Manifests[j].Name })
	return out, nil
}

func collectTemplates(chart *Chart, prefix string, values map[string]interface{}, release map[string]interface{}, caps *Capabilities, isTop bool, out *[]renderable) {
	for rel, text := range chart.Templates {
		name := prefix + "/" + rel
		*out = append(*out, renderable{
			name:  name,
			text:  string(text),
			isTop: isTop,
			values: map[string]interface{}{
				"Values":       values,
				"Release":      release,
				"Chart":        chart.Metadata,
				"Capabilities": caps,
				"Files":        chart.Files,
				"Template":     map[string]interface{}{"Name": name, "BasePath": prefix + "/templates"},
			},
		})
	}
	for _, sub := range chart.Subcharts {
		subValues, _ := values[sub.Metadata.Name].(map[string]interface{})
		collectTemplates(sub, prefix+"/charts/"+sub.Metadata.Name, subValues, release, caps, false, out)
	}
}

const recursionMaxNums = 1000

// funcMap is Sprig's text function map without env/expandenv (Helm removes them) plus Helm's
// own functions, with include and tpl bound to the template set being rendered.
func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	includedNames := map[string]int{}
	extra := template.FuncMap{
		"toYaml":        toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"required": func(warn string, val interface{}) (interface{}, error) {
			if val == nil {
				return val, errors.New(warn)
			}
			if s, ok := val.(string); ok && s == "" {
				return val, errors.New(warn)
			}
			return val, nil
		},
		// lookup talks to the cluster; `helm template` has none and gets an empty map.
		"lookup": func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			if v, ok := includedNames[name]; ok && v > recursionMaxNums {
				return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
			}
			includedNames[name]++
			err := t.ExecuteTemplate(&buf, name, data)
			includedNames[name]--
			return buf.String(), err
		},
		"tpl": func(text string, vals map[string]interface{}) (string, error) {
			clone, err := t.Clone()
			if err != nil {
				return "", err
			}
			clone.Option("missingkey=zero")
			clone.Funcs(funcMap(clone))
			name := "tpl"
			if tplInfo, ok := vals["Template"].(map[string]interface{}); ok {
				if n, ok := tplInfo["Name"].(string); ok {
					name = n
				}
			}
			parsed, err := clone.New(name).Parse(text)
			if err != nil {
				return "", fmt.Errorf("cannot parse template %q: %w", text, err)
			}
			var buf bytes.Buffer
			if err := parsed.Execute(&buf, vals); err != nil {
				return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
			}
			return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
		},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// toYAML is Helm's toYaml: sigs.k8s.io/yaml, trailing newline removed, "" on error.
func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

// fromYAML is Helm's fromYaml: a map, or a map holding only "Error" when the text is not one.
func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

var execErrorAt = regexp.MustCompile(`(?s)^template: ([^:]+:\d+:\d+): executing "[^"]*" at <[^>]*>: error calling (?:fail|required|include|tpl): (.*)$`)

// cleanError gives a failing `fail`/`required` Helm's message shape:
// "execution error at (chart/templates/x.yaml:3:4): message".
func cleanError(err error) error {
	msg := err.Error()
	for {
		m := execErrorAt.FindStringSubmatch(msg)
		if m == nil {
			break
		}
		if inner := execErrorAt.FindStringSubmatch(m[2]); inner != nil {
			msg = m[2]
			continue
		}
		return fmt.Errorf("execution error at (%s): %s", m[1], m[2])
	}
	return err
}

// Files is .Files: the chart's non-template files by path.
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Get(name string) string      { return string(f[name]) }

// Glob returns the files whose path matches the pattern (path.Match syntax; Helm's gobwas
// globs also know "**", which this chart does not use).
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

// AsConfig renders the files as ConfigMap data: base name -> content, as YAML.
func (f Files) AsConfig() string {
	if len(f) == 0 {
		return ""
	}
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

// AsSecrets renders the files as Secret data: base name -> base64 content, as YAML.
func (f Files) AsSecrets() string {
	if len(f) == 0 {
		return ""
	}
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(data)
	}
	return toYAML(m)
}

func (f Files) Lines(name string) []string {
	if f[name] == nil {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(string(f[name]), "\n"), "\n")
}

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

type KubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

// VersionSet is .Capabilities.APIVersions; Has accepts "group/version" or "group/version/Kind".
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// builtinAPIVersions are the API versions of a current Kubernetes, as Helm's default
// capabilities list them for `helm template`. CRD APIs (monitoring.coreos.com/v1) are absent
// unless given with --api-versions, as with helm.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
	"scheduling.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "certificates.k8s.io/v1",
	"events.k8s.io/v1", "node.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1",
}

func newCapabilities(kubeVersion string, extra []string) (*Capabilities, error) {
	v, err := semver.NewVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("--kube-version %q: %w", kubeVersion, err)
	}
	full := "v" + v.String()
	return &Capabilities{
		KubeVersion: KubeVersion{Version: full, Major: fmt.Sprint(v.Major()), Minor: fmt.Sprint(v.Minor()), GitVersion: full},
		APIVersions: append(append(VersionSet{}, builtinAPIVersions...), extra...),
		HelmVersion: map[string]string{"Version": "v3.17.0"},
	}, nil
}
