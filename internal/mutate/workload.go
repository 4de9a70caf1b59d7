package mutate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"gomodules.xyz/jsonpatch/v2"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// Annotations a workload can carry to steer CCM injection.
const (
	// InjectAnnotation "false" opts a workload out; "true" opts in one that
	// no matcher recognises.
	InjectAnnotation = "hcp-ingress.io/inject"
	// APIHostAnnotation and APIPortAnnotation say where the CCM must reach
	// the API server; they win over every other source.
	APIHostAnnotation = "hcp-ingress.io/api-host"
	APIPortAnnotation = "hcp-ingress.io/api-port"
)

// The variables client-go's in-cluster config reads. The kubelet sets them to
// the kubernetes Service, which the CCM cannot reach until the worker's
// HAProxy is configured, which waits for the CCM: the deadlock PRODUCT.md
// describes. Setting them in the container spec wins over the kubelet's.
const (
	EnvServiceHost = "KUBERNETES_SERVICE_HOST"
	EnvServicePort = "KUBERNETES_SERVICE_PORT"
)

// UninitializedTaint is the taint the kubelet puts on a node started with
// --cloud-provider=external until a CCM initialises it. A workload that
// tolerates it expects to run before nodes are initialised: a CCM.
const UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// workloadObject is what Workload reads of a Deployment or DaemonSet. The
// object is never re-marshalled: changes are JSON patch operations.
type workloadObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Metadata is nil when absent or null: there is then nowhere to put
	// the record annotation.
	Metadata *objectMeta  `json:"metadata"`
	Spec     workloadSpec `json:"spec"`
}

type workloadSpec struct {
	Template podTemplate `json:"template"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec podSpec `json:"spec"`
}

type podSpec struct {
	Tolerations []toleration `json:"tolerations"`
	// InitContainers are deliberately not read: they never get the
	// variables. A null entry is nil.
	Containers []*container `json:"containers"`
}

type toleration struct {
	Key      string `json:"key"`
	Operator string `json:"operator"`
}

// toleratesUninitialized reports whether the toleration lets a pod onto a
// node tainted UninitializedTaint, whatever the effect: the taint's key, or
// an empty key with operator Exists (which tolerates every taint).
func (t toleration) toleratesUninitialized() bool {
	return t.Key == UninitializedTaint || (t.Key == "" && t.Operator == "Exists")
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	// Env is nil when env is absent or null.
	Env []envVar `json:"env"`
}

// envVar is one entry of a container's env. ValueFrom is kept raw: only its
// presence matters, and its text for messages.
type envVar struct {
	Name      string         `json:"name"`
	Value     string         `json:"value"`
	ValueFrom jsontext.Value `json:"valueFrom"`
}

func (e *envVar) hasValueFrom() bool {
	return len(e.ValueFrom) > 0 && string(e.ValueFrom) != "null"
}

// describe renders the current setting for messages: "127.0.0.1" or
// valueFrom {"fieldRef":{"fieldPath":"status.podIP"}}.
func (e *envVar) describe() string {
	if e.hasValueFrom() {
		compact := e.ValueFrom.Clone()
		if compact.Compact() != nil {
			return "valueFrom"
		}
		return "valueFrom " + string(compact)
	}
	return strconv.Quote(e.Value)
}

// envValue is an env entry the webhook writes: a plain value, which replaces
// a valueFrom as a whole.
type envValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ccmTarget is a container that gets the variables, and why.
type ccmTarget struct {
	index  int
	name   string
	reason string
}

// Workload injects KUBERNETES_SERVICE_HOST/PORT into the CCM container(s) of
// a Deployment or DaemonSet, so that the CCM reaches the API server through
// the ingress instead of the kubernetes Service.
func Workload(in Input) (Result, error) {
	res := Result{Target: TargetWorkload}
	if in.passesUnread() {
		return res, nil
	}
	obj, err := in.Decoded.workloadOr(in.Object)
	if err != nil {
		return res, err
	}
	if err := checkTarget(obj.APIVersion, obj.Kind, TargetWorkload); err != nil {
		return res, err
	}
	if obj.Metadata.skipped() {
		return res, nil
	}
	meta := obj.Metadata
	if meta == nil {
		meta = &objectMeta{}
	}
	ccm := in.policy().CCM()

	optIn := false
	switch v, set := meta.Annotations[InjectAnnotation]; {
	case !set:
	case v == "false":
		return res, nil
	case v == "true":
		optIn = true
	default:
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			`hcp-ingress: annotation %s=%q ignored: only "true" and "false" mean something`, InjectAnnotation, v))
	}
	// An explicit opt-in is not a guess, so the namespace scope, which
	// protects against wrong guesses, does not apply to it.
	if !optIn && !ccm.InScope(workloadNamespace(in, meta)) {
		return res, nil
	}

	targets, vetoed := detectCCM(ccm, obj, optIn)
	if len(targets) == 0 {
		if optIn {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"hcp-ingress: %s=\"true\" but nothing injected: %s", InjectAnnotation, strings.Join(vetoed, "; ")))
		}
		return res, nil
	}
	names := make([]string, len(targets))
	reasons := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
		reasons[i] = fmt.Sprintf("container %q (%s)", t.name, t.reason)
	}
	res.Rule = "ccm/" + strings.Join(names, ",")
	res.AuditAnnotations = map[string]string{
		"ccm-containers": strings.Join(names, ","),
		"ccm-detection":  strings.Join(reasons, "; "),
	}

	if in.LookupAPIServer != nil && in.APIServer == nil && meta.Annotations[APIHostAnnotation] == "" {
		var note string
		in.APIServer, note = in.LookupAPIServer()
		if note != "" {
			res.Warnings = append(res.Warnings, note)
		}
	}
	api, source, problem := workloadAPIServer(in, meta, ccm)
	if api == nil {
		res.AuditAnnotations["ccm-action"] = "none: " + problem
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"hcp-ingress: nothing injected in %s: %s", strings.Join(reasons, ", "), problem))
		return res, nil
	}
	res.AuditAnnotations["ccm-api-server"] = fmt.Sprintf("%s:%d from %s", api.Host, api.Port, source)

	keep := ccm.OnConflict() == rules.ConflictKeep
	port := strconv.Itoa(int(api.Port))
	containers := obj.Spec.Template.Spec.Containers
	var kept bool
	for _, t := range targets {
		ops, warning, keptHere := injectAPIServerEnv(t, containers[t.index], api.Host, port, keep)
		res.Patch = append(res.Patch, ops...)
		kept = kept || keptHere
		if warning != "" {
			res.Warnings = append(res.Warnings, warning)
		}
	}
	switch {
	case len(res.Patch) > 0 && obj.Metadata == nil:
		return Result{Target: TargetWorkload}, errors.New("metadata: missing, so the change cannot be recorded: not a Kubernetes object")
	case len(res.Patch) > 0:
		res.AuditAnnotations["ccm-action"] = "injected"
		res.Patch = append(res.Patch, recordOps(meta, res.Rule)...)
	case kept:
		res.AuditAnnotations["ccm-action"] = "kept (ccm.onConflict: Keep)"
	default:
		res.AuditAnnotations["ccm-action"] = "unchanged: already set"
	}
	return res, nil
}

// workloadNamespace is the namespace the caller resolved, else the object's,
// else "default" (offline, an object without a namespace lands there).
func workloadNamespace(in Input, meta *objectMeta) string {
	switch {
	case in.Namespace != "":
		return in.Namespace
	case meta.Namespace != "":
		return meta.Namespace
	}
	return "default"
}

// detectCCM returns the containers that get the variables, following
// PRODUCT.md: a container is a CCM when it is not vetoed and shows a strong
// signal, or a medium one with the uninitialized toleration. When no
// container is, a workload-level reason (a CCM-like pod label with the
// toleration, or the opt-in annotation) makes every container that is not
// vetoed a target. vetoed explains the containers left out.
func detectCCM(ccm *rules.CCM, obj *workloadObject, optIn bool) (targets []ccmTarget, vetoed []string) {
	tmpl := &obj.Spec.Template
	if veto := ccm.PodVeto(tmpl.Metadata.Labels); veto != "" {
		return nil, []string{"vetoed by " + veto}
	}
	tolerates := false
	for _, t := range tmpl.Spec.Tolerations {
		if t.toleratesUninitialized() {
			tolerates = true
			break
		}
	}
	const withToleration = " with a toleration of " + UninitializedTaint
	containers := tmpl.Spec.Containers
	signals := make([]rules.ContainerSignals, len(containers))
	for i, c := range containers {
		if c == nil { // a null entry: nothing to read, nowhere to patch
			signals[i].Veto = "null"
			continue
		}
		s := ccm.Container(rules.CCMContainer{Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args})
		signals[i] = s
		switch {
		case s.Veto != "":
			vetoed = append(vetoed, fmt.Sprintf("container %q vetoed by %s", containerName(c, i), s.Veto))
		case s.Strong != "":
			targets = append(targets, ccmTarget{i, containerName(c, i), "cloud-controller-manager detected: " + s.Strong})
		case s.Medium != "" && tolerates:
			targets = append(targets, ccmTarget{i, containerName(c, i), "cloud-controller-manager detected: " + s.Medium + withToleration})
		}
	}
	if len(targets) > 0 {
		return targets, nil
	}
	var reason string
	switch {
	case tolerates && ccm.PodMedium(tmpl.Metadata.Labels) != "":
		reason = "cloud-controller-manager detected: " + ccm.PodMedium(tmpl.Metadata.Labels) + withToleration
	case optIn:
		reason = fmt.Sprintf(`annotation %s="true"`, InjectAnnotation)
	default:
		return nil, nil
	}
	for i, c := range containers {
		if signals[i].Veto == "" {
			targets = append(targets, ccmTarget{i, containerName(c, i), reason})
		}
	}
	if len(containers) == 0 {
		vetoed = append(vetoed, "the pod template has no containers")
	}
	return targets, vetoed
}

func containerName(c *container, i int) string {
	if c.Name == "" {
		return fmt.Sprintf("containers[%d]", i)
	}
	return c.Name
}

// workloadAPIServer picks host and port, first source wins: the workload's
// annotations, the caller's (the control plane of a management-hosted path,
// or `mutate --api-server`), the policy's ccm.apiServer. The api-port
// annotation overrides the port of whichever source gives the host. With no
// usable host it returns nil and why.
func workloadAPIServer(in Input, meta *objectMeta, ccm *rules.CCM) (api *rules.APIServer, source, problem string) {
	switch {
	case meta.Annotations[APIHostAnnotation] != "":
		api, source = &rules.APIServer{Host: meta.Annotations[APIHostAnnotation]}, "annotation "+APIHostAnnotation
	case in.APIServer != nil && in.APIServer.Host != "":
		a := *in.APIServer
		api, source = &a, "the control plane of the webhook path (or mutate --api-server)"
	case ccm.APIServer() != nil && !in.ManagementHosted:
		api, source = ccm.APIServer(), "policy ccm.apiServer"
	case in.ManagementHosted:
		return nil, "", "no API server host: the control plane named in the webhook path has no spec.ingress.apiHost, and the workload has no annotation " + APIHostAnnotation
	default:
		return nil, "", "no API server host: set annotation " + APIHostAnnotation +
			" on the workload, ccm.apiServer in the policy, or register the webhook as /mutate-workload/<namespace>/<control plane>"
	}
	if msgs := rules.ValidAPIHost(api.Host); len(msgs) > 0 {
		return nil, "", fmt.Sprintf("API server host %q from %s: %s", api.Host, source, strings.Join(msgs, "; "))
	}
	if p, set := meta.Annotations[APIPortAnnotation]; set {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Sprintf("annotation %s=%q is not a port (1-65535)", APIPortAnnotation, p)
		}
		api.Port = int32(n)
		source += ", port from annotation " + APIPortAnnotation
	}
	if api.Port == 0 {
		api.Port = rules.DefaultAPIServerPort
	}
	if api.Port < 0 || api.Port > 65535 {
		return nil, "", fmt.Sprintf("API server port %d from %s is not a port (1-65535)", api.Port, source)
	}
	return api, source, ""
}

// injectAPIServerEnv returns the operations that make container c of t hold
// KUBERNETES_SERVICE_HOST=host and KUBERNETES_SERVICE_PORT=port, and the
// warning that says what was done. With keep, a variable already set to
// another value leaves the whole container alone (host and port are a pair:
// half of each would point nowhere), and kept is true.
func injectAPIServerEnv(t ccmTarget, c *container, host, port string, keep bool) (ops []jsonpatch.Operation, warning string, kept bool) {
	want := [2]envValue{{EnvServiceHost, host}, {EnvServicePort, port}}
	envPath := "/spec/template/spec/containers/" + strconv.Itoa(t.index) + "/env"

	if c.Env == nil {
		ops = []jsonpatch.Operation{jsonpatch.NewOperation("add", envPath, want[:])}
		return ops, setWarning(t, []string{want[0].Name + "=" + host, want[1].Name + "=" + port}), false
	}

	var set, conflicts []string
	for _, w := range want {
		found := false
		for j := range c.Env {
			e := &c.Env[j]
			if e.Name != w.Name {
				continue
			}
			found = true // every duplicate counts: the last one wins at run time
			if e.Value == w.Value && !e.hasValueFrom() {
				continue
			}
			conflicts = append(conflicts, fmt.Sprintf("%s=%s", w.Name, e.describe()))
			ops = append(ops, jsonpatch.NewOperation("replace", envPath+"/"+strconv.Itoa(j), w))
			set = append(set, fmt.Sprintf("%s=%s (replacing %s)", w.Name, w.Value, e.describe()))
		}
		if !found {
			ops = append(ops, jsonpatch.NewOperation("add", envPath+"/-", w))
			set = append(set, w.Name+"="+w.Value)
		}
	}
	if keep && len(conflicts) > 0 {
		return nil, fmt.Sprintf(
			"hcp-ingress: kept %s in container %q (ccm.onConflict: Keep): nothing injected, although the CCM should reach the API server at %s:%s through the ingress (%s)",
			strings.Join(conflicts, " and "), t.name, host, port, t.reason), true
	}
	if len(ops) == 0 {
		return nil, "", false
	}
	return ops, setWarning(t, set), false
}

func setWarning(t ccmTarget, set []string) string {
	return fmt.Sprintf(
		"hcp-ingress: set %s in container %q (%s) so the CCM reaches the API server through the ingress, not the kubernetes Service",
		strings.Join(set, " and "), t.name, t.reason)
}

// decodeWorkload reads what the engine needs of a workload: the bulk of it
// (managedFields, volumes, probes) is checked and skipped.
func decodeWorkload(data []byte) (*workloadObject, error) {
	return decodeObject[workloadObject](data)
}
