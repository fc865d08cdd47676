package main

import "encoding/json"

// mergeMaps merges -f files the way `helm template -f a -f b` does: later files win, maps are
// merged key by key, and a null is kept (coalescing then removes the key).
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(bv, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesceValues computes the values a chart's templates see, as Helm's CoalesceValues does:
// user values over the chart's values.yaml, key by key through nested maps; a user null
// deletes the default; a subchart's values are its parent's values under the subchart's name
// coalesced over the subchart's own values.yaml, with the parent's `global` copied in.
func coalesceValues(chart *Chart, user map[string]interface{}) map[string]interface{} {
	dest := deepCopyMap(user)
	coalesceChart(chart, dest)
	return dest
}

func coalesceChart(chart *Chart, dest map[string]interface{}) {
	for key, def := range deepCopyMap(chart.Values) {
		val, present := dest[key]
		switch {
		case !present:
			dest[key] = def
		case val == nil:
			delete(dest, key)
		default:
			if dm, ok := val.(map[string]interface{}); ok {
				if sm, ok := def.(map[string]interface{}); ok {
					coalesceTables(dm, sm)
				}
			}
		}
	}
	for _, sub := range chart.Subcharts {
		name := sub.Metadata.Name
		subVals, ok := dest[name].(map[string]interface{})
		if !ok {
			subVals = map[string]interface{}{}
			dest[name] = subVals
		}
		globals := map[string]interface{}{}
		if g, ok := subVals["global"].(map[string]interface{}); ok {
			globals = g
		}
		if pg, ok := dest["global"].(map[string]interface{}); ok {
			coalesceTables(globals, deepCopyMap(pg))
		}
		subVals["global"] = globals
		coalesceChart(sub, subVals)
	}
}

func coalesceTables(dst, src map[string]interface{}) {
	for key, val := range src {
		dv, present := dst[key]
		switch {
		case present && dv == nil:
			delete(dst, key)
		case !present:
			dst[key] = val
		default:
			if sm, ok := val.(map[string]interface{}); ok {
				if dm, ok := dv.(map[string]interface{}); ok {
					coalesceTables(dm, sm)
				}
			}
		}
	}
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	if m == nil {
		return map[string]interface{}{}
	}
	raw, _ := json.Marshal(m)
	out := map[string]interface{}{}
	_ = json.Unmarshal(raw, &out)
	return out
}
