package routes

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The route states `audit` reports for a control plane.
const (
	// StateNone: the resolved rule names no route kind (nothing to keep).
	StateNone = "none"
	// StateNoIngress: a route is wanted, but k0smotron has not made the Ingress yet.
	StateNoIngress = "no-ingress"
	// StateInvalid: the Ingress cannot be turned into a route (a host that is
	// not a DNS name, no path "/").
	StateInvalid = "invalid"
	// StateNotServed: the route kind's CRD is not installed.
	StateNotServed = "not-served"
	// StateMissing: a route object does not exist.
	StateMissing = "missing"
	// StateStale: a route object differs from what the Ingress gives.
	StateStale = "stale"
	// StateOK: every route object is as the Ingress gives.
	StateOK = "ok"
)

// RouteState is the route state of one control plane.
type RouteState struct {
	// Kind is the route kind the rule names ("" for StateNone).
	Kind  string
	State string
	// Routes are the route objects, as Kind/name.
	Routes []string
	// Detail says what is missing or different, for humans.
	Detail string
}

// State reports the route state of control plane cp (as read from the API
// server or the control-plane view) under resolution res (the rule resolved
// for its spec.ingress.className). It reads the Ingress and the route objects
// through c. It is what `audit` reports and what `serve --routes` converges.
func State(ctx context.Context, c client.Reader, cp *unstructured.Unstructured, res rules.Resolution) (RouteState, error) {
	name, kind, ok := RouteKindOf(res)
	if !ok {
		return RouteState{State: StateNone}, nil
	}
	st := RouteState{Kind: name}
	var ing networkingv1.Ingress
	err := c.Get(ctx, types.NamespacedName{Namespace: cp.GetNamespace(), Name: IngressName(cp.GetName())}, &ing)
	if apierrors.IsNotFound(err) || (err == nil && !MadeFor(&ing, cp)) {
		st.State = StateNoIngress
		return st, nil
	}
	if err != nil {
		return st, err
	}
	desired, err := Desired(kind, &ing, cp)
	if err != nil {
		st.State, st.Detail = StateInvalid, err.Error()
		return st, nil
	}
	st.State = StateOK
	for _, want := range desired {
		st.Routes = append(st.Routes, routeKey(want.GroupVersionKind(), want.GetName()))
		have := &unstructured.Unstructured{}
		have.SetGroupVersionKind(want.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(want), have)
		switch {
		case meta.IsNoMatchError(err):
			st.State, st.Detail = StateNotServed, fmt.Sprintf("the API server does not serve %s", want.GroupVersionKind())
			return st, nil
		case apierrors.IsNotFound(err):
			st.State, st.Detail = StateMissing, fmt.Sprintf("%s %s/%s does not exist", want.GetKind(), want.GetNamespace(), want.GetName())
			return st, nil
		case err != nil:
			return st, err
		}
		if diff := differs(want, have); diff != "" && st.State == StateOK {
			st.State, st.Detail = StateStale, fmt.Sprintf("%s %s/%s: %s", want.GetKind(), want.GetNamespace(), want.GetName(), diff)
		}
	}
	return st, nil
}

// differs says how have falls short of want: spec, or the owner.
func differs(want, have *unstructured.Unstructured) string {
	if !equality.Semantic.DeepEqual(want.Object["spec"], have.Object["spec"]) {
		return "spec differs from the Ingress"
	}
	owner := want.GetOwnerReferences()[0]
	for _, o := range have.GetOwnerReferences() {
		if o.UID == owner.UID {
			return ""
		}
	}
	return fmt.Sprintf("not owned by %s %s", owner.Kind, owner.Name)
}
