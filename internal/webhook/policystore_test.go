package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

const validPolicy = "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonUnknownClass: Deny\n"
const invalidPolicy = "apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\nonUnknownClass: Sometimes\n"

func TestPolicyFileKeepsLastGoodPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(validPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	store := storeWith(t, nil)
	file := &PolicyFile{Path: path, Store: store, Log: logr.Discard(), Poll: 20 * time.Millisecond}
	if err := file.Load(); err != nil {
		t.Fatal(err)
	}
	first := store.Current()
	if first == nil || first.Generation != 1 || first.Policy.OnUnknownClass() != rules.UnknownDeny {
		t.Fatalf("first load: %+v", first)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = file.Run(ctx) }()

	if err := os.WriteFile(path, []byte(invalidPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return store.LastFailure() != nil })
	if store.Current() != first {
		t.Fatal("an invalid policy replaced the working one")
	}
	if !strings.Contains(store.LastFailure().Err.Error(), "onUnknownClass") {
		t.Errorf("failure does not name the field: %v", store.LastFailure().Err)
	}

	if err := os.WriteFile(path, []byte("apiVersion: hcp-ingress.io/v1alpha1\nkind: Policy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return store.Current().Generation == 2 })
	if store.LastFailure() != nil {
		t.Error("a successful load did not clear the failure")
	}
}

func TestInvalidPolicyFileAtStartIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(invalidPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	store := storeWith(t, nil)
	err := (&PolicyFile{Path: path, Store: store, Log: logr.Discard()}).Load()
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name the file", err)
	}
	if store.Current() != nil {
		t.Fatal("invalid policy loaded")
	}
}

func TestReadiness(t *testing.T) {
	started := func(*http.Request) error { return nil }
	store := storeWith(t, nil)
	r := &Readiness{Policies: store, WebhookStarted: started}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "no policy loaded") {
		t.Fatalf("before any policy: %d %s", code, body)
	}
	store.Fail("configmap ns/p", os.ErrInvalid)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "configmap ns/p did not load") {
		t.Fatalf("with only an invalid policy: %d %s", code, body)
	}
	store.Set(rules.Default(), EmbeddedSource)
	store.Fail("configmap ns/p", os.ErrInvalid)
	code, body := get()
	if code != http.StatusOK || !strings.Contains(body, "generation 1") || !strings.Contains(body, "last policy load failed") {
		t.Fatalf("serving generation 1 after a failed reload: %d %s", code, body)
	}
}

func TestPolicyValidator(t *testing.T) {
	cm := func(data map[string]string) string {
		b, _ := jsonMarshal(corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "hcp-ingress-policy", Namespace: "hcp-ingress-system"}, Data: data})
		return string(b)
	}
	v := &PolicyValidator{}
	resp := v.Handle(context.Background(), request("CREATE", "hcp-ingress-system", cm(map[string]string{PolicyKey: invalidPolicy})))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "onUnknownClass") {
		t.Errorf("invalid policy: allowed=%v message=%q", resp.Allowed, resp.Result.Message)
	}
	resp = v.Handle(context.Background(), request("UPDATE", "hcp-ingress-system", cm(map[string]string{"other": "x"})))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "policy.yaml is missing") {
		t.Errorf("missing key: allowed=%v message=%q", resp.Allowed, resp.Result.Message)
	}
	resp = v.Handle(context.Background(), request("CREATE", "hcp-ingress-system", cm(map[string]string{PolicyKey: validPolicy})))
	if !resp.Allowed || len(resp.Warnings) == 0 {
		t.Errorf("valid but risky policy: allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var jsonMarshal = json.Marshal
