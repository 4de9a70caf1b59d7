package mutate

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
)

// The paths PRODUCT.md lets the engines touch. A patch operation outside them
// is a bug, whatever the input.
var (
	recordPath       = `^/metadata/annotations(/hcp-ingress\.io~1mutated)?$`
	controlPlanePath = regexp.MustCompile(recordPath + `|^/spec(/template/spec)?/ingress/annotations(/[^/]+)?$|` + manifestsPointer)
	// manifestsPointer is where fleet wiring appends its one entry; the value is
	// checked too (see checkWiringOp).
	manifestsPointer = `^/spec/manifests(/-)?$`
	workloadPath     = regexp.MustCompile(recordPath + `|^/spec/template/spec/containers/[0-9]+/env(/([0-9]+|-))?$`)
)

// applyPatch applies a JSON patch to a raw object and returns the result.
func applyPatch(t testing.TB, object []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return object
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatalf("marshal patch: %v", err)
	}
	patch, err := jsonpatchapply.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decode patch %s: %v", raw, err)
	}
	out, err := patch.Apply(object)
	if err != nil {
		t.Fatalf("apply patch %s: %v", raw, err)
	}
	return out
}

// checkInvariants checks, for one engine run on in that gave res, the
// properties every run must have:
//   - every operation stays inside the allowed paths;
//   - the patch applies to the input;
//   - the engine run again on its own output returns an empty patch
//     (idempotence) and does not deny.
//
// It returns the patched object.
func checkInvariants(t testing.TB, engine func(Input) (Result, error), allowed *regexp.Regexp, in Input, res Result) []byte {
	t.Helper()
	for _, op := range res.Patch {
		if !allowed.MatchString(op.Path) {
			t.Errorf("patch touches %s %s, outside the paths PRODUCT.md allows", op.Operation, op.Path)
		}
		if regexp.MustCompile(manifestsPointer).MatchString(op.Path) {
			checkWiringOp(t, in, op)
		}
		if op.Operation != "add" && op.Operation != "replace" && op.Operation != "remove" {
			t.Errorf("unexpected patch operation %q at %s", op.Operation, op.Path)
		}
	}
	out := applyPatch(t, in.Object, res.Patch)
	if res.Denied != "" {
		return out
	}
	again := in
	again.Object = out
	again.Operation = "UPDATE"
	res2, err := engine(again)
	if err != nil {
		t.Fatalf("engine on its own output: %v", err)
	}
	if len(res2.Patch) != 0 {
		raw, _ := json.Marshal(res2.Patch)
		t.Errorf("not idempotent: second run patched %s", raw)
	}
	return out
}

// checkWiringOp checks that an operation on spec.manifests is exactly the
// fleet wiring append: an add of the entry for this control plane, with
// wiring on, never for a template, on UPDATE only with an old object.
func checkWiringOp(t testing.TB, in Input, op jsonpatch.Operation) {
	t.Helper()
	tm, err := decodeObject[struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}](in.Object)
	if err != nil {
		t.Fatalf("a patch for an object the reader rejects: %v", err)
	}
	if !in.ChildWiring || tm.Kind == "K0smotronControlPlaneTemplate" || (in.Operation == "UPDATE" && len(in.OldObject) == 0) {
		t.Errorf("%s %s although fleet wiring does not apply (wiring %t, kind %s, operation %s)", op.Operation, op.Path, in.ChildWiring, tm.Kind, in.Operation)
	}
	want := ChildManifest(tm.Metadata.Name)
	if op.Path == "/spec/manifests" {
		want = []any{want}
	}
	if op.Operation != "add" || !reflect.DeepEqual(op.Value, want) {
		t.Errorf("%s %s %v, want add of %v", op.Operation, op.Path, op.Value, want)
	}
}
