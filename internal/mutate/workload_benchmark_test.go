package mutate

import (
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// serverSideMetadata is what the API server adds to an object before it
// calls admission webhooks; managedFields is most of an object's size.
const serverSideMetadata = `
metadata:
  uid: 6f1c9a52-3d8e-4b7a-9c1e-2a5b8d4f7e10
  resourceVersion: "184467"
  generation: 3
  creationTimestamp: "2026-11-02T09:14:27Z"
  managedFields:
    - manager: kubectl-client-side-apply
      operation: Update
      apiVersion: apps/v1
      time: "2026-11-02T09:14:27Z"
      fieldsType: FieldsV1
      fieldsV1:
        f:metadata:
          f:annotations: {.: {}, f:kubectl.kubernetes.io/last-applied-configuration: {}}
          f:labels: {.: {}, f:app.kubernetes.io/part-of: {}, f:k8s-app: {}}
        f:spec:
          f:revisionHistoryLimit: {}
          f:selector: {}
          f:template:
            f:metadata:
              f:annotations: {.: {}, f:checksum/cloud-config: {}}
              f:labels: {.: {}, f:k8s-app: {}}
            f:spec:
              f:containers:
                'k:{"name":"openstack-cloud-controller-manager"}':
                  .: {}
                  f:args: {}
                  f:env:
                    .: {}
                    'k:{"name":"CLOUD_CONFIG"}': {.: {}, f:name: {}, f:value: {}}
                    'k:{"name":"CLUSTER_NAME"}': {.: {}, f:name: {}, f:value: {}}
                    'k:{"name":"GOMAXPROCS"}': {.: {}, f:name: {}, f:valueFrom: {.: {}, f:resourceFieldRef: {}}}
                  f:image: {}
                  f:imagePullPolicy: {}
                  f:livenessProbe: {.: {}, f:failureThreshold: {}, f:httpGet: {.: {}, f:path: {}, f:port: {}, f:scheme: {}}, f:initialDelaySeconds: {}, f:periodSeconds: {}, f:timeoutSeconds: {}}
                  f:name: {}
                  f:ports: {.: {}, 'k:{"containerPort":10258,"protocol":"TCP"}': {.: {}, f:containerPort: {}, f:hostPort: {}, f:name: {}, f:protocol: {}}}
                  f:resources: {.: {}, f:limits: {.: {}, f:cpu: {}, f:memory: {}}, f:requests: {.: {}, f:cpu: {}, f:memory: {}}}
                  f:securityContext: {.: {}, f:allowPrivilegeEscalation: {}, f:capabilities: {.: {}, f:drop: {}}, f:readOnlyRootFilesystem: {}}
                  f:terminationMessagePath: {}
                  f:terminationMessagePolicy: {}
                  f:volumeMounts: {.: {}, 'k:{"mountPath":"/etc/config"}': {.: {}, f:mountPath: {}, f:name: {}, f:readOnly: {}}, 'k:{"mountPath":"/etc/kubernetes/pki"}': {.: {}, f:mountPath: {}, f:name: {}, f:readOnly: {}}}
              f:dnsPolicy: {}
              f:hostNetwork: {}
              f:nodeSelector: {}
              f:priorityClassName: {}
              f:securityContext: {.: {}, f:runAsNonRoot: {}, f:runAsUser: {}, f:seccompProfile: {.: {}, f:type: {}}}
              f:serviceAccountName: {}
              f:tolerations: {}
              f:volumes: {.: {}, 'k:{"name":"ca-certs"}': {.: {}, f:hostPath: {.: {}, f:path: {}, f:type: {}}, f:name: {}}, 'k:{"name":"cloud-config-volume"}': {.: {}, f:name: {}, f:secret: {.: {}, f:defaultMode: {}, f:secretName: {}}}}
          f:updateStrategy: {f:rollingUpdate: {.: {}, f:maxUnavailable: {}}, f:type: {}}
`

// admissionReviewBody is the request body the API server sends for the
// OpenStack CCM DaemonSet: a real-size object (about 5 KB).
func admissionReviewBody(b *testing.B) []byte {
	b.Helper()
	object, err := jsonpatchapply.MergePatch(workloadFixture(b, "openstack-ccm-daemonset"), yamlToJSON(b, serverSideMetadata))
	if err != nil {
		b.Fatal(err)
	}
	body := reviewBody(b, &admissionv1.AdmissionRequest{
		UID:             "0d9e1c7a-51b4-4e6f-8a3d-7c2b9f0e4a61",
		Kind:            metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"},
		Resource:        metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
		RequestKind:     &metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"},
		RequestResource: &metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
		Name:            "openstack-cloud-controller-manager",
		Namespace:       "kube-system",
		Operation:       admissionv1.Create,
		UserInfo: authenticationv1.UserInfo{
			Username: "kubernetes-admin",
			Groups:   []string{"kubeadm:cluster-admins", "system:authenticated"},
		},
		Object:  runtime.RawExtension{Raw: object},
		Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-client-side-apply","fieldValidation":"Strict"}`)},
	})
	b.ReportMetric(float64(len(object)), "object-bytes")
	return body
}

// BenchmarkAdmissionBaseline_Workload is the floor of any webhook: decode the
// AdmissionReview and encode an allowing response, with no engine at all.
func BenchmarkAdmissionBaseline_Workload(b *testing.B) {
	body := admissionReviewBody(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	defer measureCPU(b)()
	for b.Loop() {
		review := decodeReview(b, body)
		encodeResponse(b, review.Request, &admissionv1.AdmissionResponse{Allowed: true})
	}
}

// BenchmarkWorkloadAdmission is the same round trip with the engine: decode,
// detect the CCM, compute the patch, encode the response with patch,
// warnings and audit annotations.
func BenchmarkWorkloadAdmission(b *testing.B) {
	body := admissionReviewBody(b)
	in := Input{Policy: rules.Default(), APIServer: &rules.APIServer{Host: "api.example.com", Port: 443}}
	if out := admit(b, body, Workload, in); !strings.Contains(string(out), `"patch"`) {
		b.Fatal("no patch")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	defer measureCPU(b)()
	for b.Loop() {
		admit(b, body, Workload, in)
	}
}

// BenchmarkWorkloadEngine is the engine alone on the same object, for
// profiling what the engine adds to the round trip.
func BenchmarkWorkloadEngine(b *testing.B) {
	review := decodeReview(b, admissionReviewBody(b))
	in := Input{
		Object:    review.Request.Object.Raw,
		Operation: "CREATE",
		Namespace: "kube-system",
		Policy:    rules.Default(),
		APIServer: &rules.APIServer{Host: "api.example.com", Port: 443},
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in.Object)))
	defer measureCPU(b)()
	for b.Loop() {
		if _, err := Workload(in); err != nil {
			b.Fatal(err)
		}
	}
}
