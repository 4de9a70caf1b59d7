package rules

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func defaultCCM(t *testing.T) *CCM {
	t.Helper()
	c := Default().CCM()
	if c == nil {
		t.Fatal("the default policy has no compiled CCM")
	}
	return c
}

func TestDefaultCCMScalars(t *testing.T) {
	c := defaultCCM(t)
	if c.APIServer() != nil {
		t.Errorf("APIServer() = %+v, want nil: the default policy has no in-child host", c.APIServer())
	}
	if got := c.OnConflict(); got != ConflictOverride {
		t.Errorf("OnConflict() = %q, want Override", got)
	}
	if !c.InScope("kube-system") || c.InScope("default") {
		t.Errorf("scope = %v, want kube-system only", c.Namespaces())
	}
}

func TestCCMContainerSignals(t *testing.T) {
	type want struct{ strong, medium, veto string } // substrings; "" means none
	cases := map[string]struct {
		ctr  CCMContainer
		want want
	}{
		"openstack binary in args[0] is strong": {
			ctr:  CCMContainer{Name: "openstack-cloud-controller-manager", Args: []string{"/bin/openstack-cloud-controller-manager", "--v=1", "--cloud-config=$(CLOUD_CONFIG)"}},
			want: want{strong: `binary "openstack-cloud-controller-manager" in args`},
		},
		"binary in command is strong": {
			ctr:  CCMContainer{Name: "ccm", Command: []string{"/bin/hcloud-cloud-controller-manager"}, Args: []string{"--leader-elect=false"}},
			want: want{strong: `binary "hcloud-cloud-controller-manager" in command`},
		},
		"binary with ./ is strong": {
			ctr:  CCMContainer{Name: "manager", Command: []string{"./cloud-provider-equinix-metal", "--leader-elect=false"}},
			want: want{strong: `binary "cloud-provider-equinix-metal"`},
		},
		"kube-vip cloud provider binary is strong": {
			ctr:  CCMContainer{Name: "kube-vip-cloud-provider", Command: []string{"/kube-vip-cloud-provider", "--leader-elect-resource-name=kube-vip-cloud-controller"}},
			want: want{strong: `binary "kube-vip-cloud-provider"`},
		},
		"azure cloud-node-manager binary is strong": {
			ctr:  CCMContainer{Name: "cloud-node-manager", Command: []string{"cloud-node-manager", "--node-name=$(NODE_NAME)"}},
			want: want{strong: `binary "cloud-node-manager"`},
		},
		"windows binary with .exe is strong": {
			ctr:  CCMContainer{Name: "node", Command: []string{`c:\cloud-node-manager.exe`}},
			want: want{strong: `binary "cloud-node-manager"`},
		},
		"binary started from a shell script is strong": {
			ctr:  CCMContainer{Name: "main", Command: []string{"/bin/sh", "-c", "exec /usr/local/bin/gce-cloud-controller-manager --v=2"}},
			want: want{strong: `binary "gce-cloud-controller-manager"`},
		},
		"cloud-provider flag is strong": {
			ctr:  CCMContainer{Name: "main", Command: []string{"/usr/local/bin/provider"}, Args: []string{"--cloud-provider=aws"}},
			want: want{strong: `flag "--cloud-provider=aws" in args`},
		},
		"two-token cloud-provider flag is strong": {
			ctr:  CCMContainer{Name: "main", Command: []string{"/provider", "--cloud-provider"}, Args: []string{"gce"}},
			want: want{strong: `flag "--cloud-provider=gce" in command`},
		},
		"single-dash cloud-provider flag is strong": {
			ctr:  CCMContainer{Name: "main", Args: []string{"-cloud-provider=vsphere"}},
			want: want{strong: `flag "--cloud-provider=vsphere"`},
		},
		"cloud-provider=external is no signal": {
			ctr: CCMContainer{Name: "main", Command: []string{"/app"}, Args: []string{"--cloud-provider=external"}},
		},
		"two-token cloud-provider external is no signal": {
			ctr: CCMContainer{Name: "main", Args: []string{"--cloud-provider", "external"}},
		},
		"empty cloud-provider is no signal": {
			ctr: CCMContainer{Name: "main", Args: []string{"--cloud-provider=", "--v=2"}},
		},
		"cloud-provider followed by a flag is no signal": {
			ctr: CCMContainer{Name: "main", Args: []string{"--cloud-provider", "--v=2"}},
		},
		"aws image is strong": {
			ctr:  CCMContainer{Name: "main", Image: "registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.1"},
			want: want{strong: `image "registry.k8s.io/provider-aws/cloud-controller-manager:v1.31.1"`},
		},
		"image by digest is strong": {
			ctr:  CCMContainer{Name: "main", Image: "docker.io/hetznercloud/hcloud-cloud-controller-manager@sha256:0123456789abcdef"},
			want: want{strong: "image"},
		},
		"image from a registry with a port is strong": {
			ctr:  CCMContainer{Name: "main", Image: "localhost:5000/provider-os/openstack-cloud-controller-manager:v1.31.0"},
			want: want{strong: "image"},
		},
		"alibaba arch-suffixed image is strong": {
			ctr:  CCMContainer{Name: "main", Image: "registry.cn-hangzhou.aliyuncs.com/acs/cloud-controller-manager-amd64:v2.9.0"},
			want: want{strong: "image"},
		},
		"vsphere image without binary is strong": {
			ctr:  CCMContainer{Name: "vsphere-cpi", Image: "registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere:v1.31.0"},
			want: want{strong: "image"},
		},
		"nutanix image is strong": {
			ctr:  CCMContainer{Name: "nutanix-cloud-controller-manager", Image: "ghcr.io/nutanix-cloud-native/cloud-provider-nutanix/controller:v0.5.0"},
			want: want{strong: "image"},
		},
		"vsphere-cpi name alone is medium": {
			ctr:  CCMContainer{Name: "vsphere-cpi", Image: "registry.example.com/vmware/cpi-runner:v1"},
			want: want{medium: `container name "vsphere-cpi"`},
		},
		"ccm-looking name alone is medium": {
			ctr:  CCMContainer{Name: "hcloud-ccm", Image: "example.com/tools/runner:v1"},
			want: want{medium: `container name "hcloud-ccm"`},
		},
		"plain application is nothing": {
			ctr: CCMContainer{Name: "nginx", Image: "nginx:1.27", Args: []string{"nginx", "-g", "daemon off;"}},
		},
		"kube-controller-manager is vetoed": {
			ctr:  CCMContainer{Name: "kube-controller-manager", Image: "registry.k8s.io/kube-controller-manager:v1.34.1", Command: []string{"kube-controller-manager", "--cloud-provider=external"}},
			want: want{veto: `container name "kube-controller-manager"`},
		},
		"kube-controller-manager binary under another name is vetoed": {
			ctr:  CCMContainer{Name: "kcm", Command: []string{"/usr/local/bin/kube-controller-manager", "--cloud-provider=gce"}},
			want: want{veto: `binary "kube-controller-manager"`},
		},
		"cluster-autoscaler with cloud-provider clusterapi is vetoed": {
			ctr:  CCMContainer{Name: "cluster-autoscaler", Image: "registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.0", Command: []string{"/cluster-autoscaler", "--cloud-provider=clusterapi"}},
			want: want{veto: "cluster-autoscaler"},
		},
		"cluster-autoscaler image alone is vetoed": {
			ctr:  CCMContainer{Name: "main", Image: "registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.0", Args: []string{"--cloud-provider=aws"}},
			want: want{veto: "image"},
		},
		"csi driver name is vetoed": {
			ctr:  CCMContainer{Name: "cinder-csi-plugin", Args: []string{"/bin/cinder-csi-plugin", "--cloud-provider=openstack"}},
			want: want{veto: `container name "cinder-csi-plugin"`},
		},
		"csi sidecar image is vetoed": {
			ctr:  CCMContainer{Name: "provisioner", Image: "registry.k8s.io/sig-storage/csi-provisioner:v5.1.0", Args: []string{"--cloud-provider=aws"}},
			want: want{veto: "image"},
		},
		"csi image directory is vetoed": {
			ctr:  CCMContainer{Name: "driver", Image: "gcr.io/cloud-provider-vsphere/csi/release/driver:v3.3.0", Args: []string{"--cloud-provider=vsphere"}},
			want: want{veto: "image"},
		},
		"csi in a registry host is not a veto": {
			ctr:  CCMContainer{Name: "main", Image: "registry.csi.example.com/provider-aws/cloud-controller-manager:v1"},
			want: want{strong: "image"},
		},
		"webhook is vetoed": {
			ctr:  CCMContainer{Name: "hcp-ingress-webhook", Args: []string{"--cloud-provider=aws"}},
			want: want{veto: "container name"},
		},
		"operator image is vetoed": {
			ctr:  CCMContainer{Name: "manager", Image: "quay.io/example/cloud-controller-manager-operator:v4.17", Args: []string{"--cloud-provider=aws"}},
			want: want{veto: "image"},
		},
		"kubeconfig flag is vetoed": {
			ctr:  CCMContainer{Name: "openstack-cloud-controller-manager", Args: []string{"/bin/openstack-cloud-controller-manager", "--kubeconfig=/etc/kubernetes/ccm.conf"}},
			want: want{veto: `flag "--kubeconfig=/etc/kubernetes/ccm.conf" in args`},
		},
		"two-token kubeconfig flag is vetoed": {
			ctr:  CCMContainer{Name: "ccm", Args: []string{"/bin/openstack-cloud-controller-manager", "--kubeconfig", "/etc/kubeconfig"}},
			want: want{veto: `flag "--kubeconfig=/etc/kubeconfig"`},
		},
		"master flag is vetoed": {
			ctr:  CCMContainer{Name: "ccm", Command: []string{"aws-cloud-controller-manager", "--master=https://10.0.0.1:6443"}},
			want: want{veto: "--master="},
		},
		"authentication-kubeconfig is not a veto": {
			ctr:  CCMContainer{Name: "ccm", Command: []string{"aws-cloud-controller-manager", "--authentication-kubeconfig=/etc/authn.conf"}},
			want: want{strong: "binary"},
		},
		"words after -- are not flags": {
			ctr:  CCMContainer{Name: "main", Command: []string{"/tini", "--", "/bin/vultr-cloud-controller-manager"}},
			want: want{strong: `binary "vultr-cloud-controller-manager"`},
		},
	}
	c := defaultCCM(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := c.Container(tc.ctr)
			check := func(what, got, want string) {
				t.Helper()
				switch {
				case want == "" && got != "":
					t.Errorf("%s = %q, want none", what, got)
				case want != "" && !strings.Contains(got, want):
					t.Errorf("%s = %q, want it to contain %q", what, got, want)
				}
			}
			check("Strong", got.Strong, tc.want.strong)
			check("Medium", got.Medium, tc.want.medium)
			check("Veto", got.Veto, tc.want.veto)
		})
	}
}

func TestCCMPodSignals(t *testing.T) {
	cases := map[string]struct {
		labels       map[string]string
		medium, veto string
	}{
		"no labels":                          {},
		"component cloud-controller-manager": {labels: map[string]string{"component": "cloud-controller-manager"}, medium: "label component=cloud-controller-manager"},
		"k8s-app vsphere-cpi":                {labels: map[string]string{"k8s-app": "vsphere-cpi"}, medium: "label k8s-app=vsphere-cpi"},
		"app.kubernetes.io/name ending ccm":  {labels: map[string]string{"app.kubernetes.io/name": "hcloud-ccm"}, medium: "label app.kubernetes.io/name=hcloud-ccm"},
		"other label keys do not count":      {labels: map[string]string{"tier": "cloud-controller-manager"}},
		"autoscaler label vetoes":            {labels: map[string]string{"app": "cluster-autoscaler"}, veto: "label app=cluster-autoscaler"},
		"csi label vetoes":                   {labels: map[string]string{"app": "ebs-csi-controller", "component": "cloud-controller-manager"}, veto: "label app=ebs-csi-controller"},
	}
	c := defaultCCM(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := c.PodVeto(tc.labels); got != tc.veto {
				t.Errorf("PodVeto() = %q, want %q", got, tc.veto)
			}
			if tc.veto != "" {
				return
			}
			if got := c.PodMedium(tc.labels); got != tc.medium {
				t.Errorf("PodMedium() = %q, want %q", got, tc.medium)
			}
		})
	}
}

// The default flagValues matcher says "v is not empty and not exactly
// external", in every form a flag can be written.
func TestCloudProviderFlagIsNotExternal(t *testing.T) {
	c := defaultCCM(t)
	values := []string{"", "e", "ex", "ext", "exte", "exter", "extern", "externa", "external", "externall",
		"External", "xxternal", "exxernal", "extxrnal", "extexnal", "exterxal", "externxl", "externax", "aws", "gce",
		"openstack", "clusterapi", "$(PROVIDER)", "externalcloud", "ééééééé"}
	for _, v := range values {
		want := v != "" && v != "external"
		forms := map[string][]string{
			"--name=value": {"--cloud-provider=" + v},
			"-name=value":  {"-cloud-provider=" + v},
			"--name value": {"--cloud-provider", v},
			"-name value":  {"-cloud-provider", v},
		}
		for form, args := range forms {
			if v == "" && (form == "--name value" || form == "-name value") {
				continue // an empty word is no value
			}
			got := c.Container(CCMContainer{Name: "main", Command: []string{"/app"}, Args: args}).Strong != ""
			if got != want {
				t.Errorf("%s with %q: strong = %v, want %v", form, v, got, want)
			}
		}
	}
}

func TestParseFlag(t *testing.T) {
	cases := map[string]struct {
		word, next string
		want       cmdFlag
	}{
		"double dash with value":       {word: "--cloud-provider=aws", want: cmdFlag{name: "cloud-provider", value: "aws", hasValue: true}},
		"single dash with value":       {word: "-cloud-provider=aws", want: cmdFlag{name: "cloud-provider", value: "aws", hasValue: true}},
		"value in the next word":       {word: "--cloud-provider", next: "aws", want: cmdFlag{name: "cloud-provider", value: "aws", hasValue: true}},
		"next word is a flag":          {word: "--cloud-provider", next: "--v=2", want: cmdFlag{name: "cloud-provider"}},
		"no next word":                 {word: "--leader-elect", want: cmdFlag{name: "leader-elect"}},
		"empty value":                  {word: "--cloud-provider=", want: cmdFlag{name: "cloud-provider", hasValue: true}},
		"value with an equals sign":    {word: "--cloud-config=a=b", want: cmdFlag{name: "cloud-config", value: "a=b", hasValue: true}},
		"equals form ignores the next": {word: "--cloud-provider=aws", next: "gce", want: cmdFlag{name: "cloud-provider", value: "aws", hasValue: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := parseFlag(tc.word, tc.next); got != tc.want {
				t.Errorf("parseFlag(%q, %q) = %+v, want %+v", tc.word, tc.next, got, tc.want)
			}
		})
	}
}

func TestCCMInScope(t *testing.T) {
	cases := map[string]struct {
		namespaces []string
		in, out    []string
	}{
		"default scope is kube-system": {in: []string{"kube-system"}, out: []string{"default", "cloud"}},
		"listed namespaces":            {namespaces: []string{"cloud", "kube-system"}, in: []string{"cloud", "kube-system"}, out: []string{"default"}},
		"star is every namespace":      {namespaces: []string{"*"}, in: []string{"default", "anything"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, errs := compileCCM(&CCMDocument{Namespaces: tc.namespaces}, field.NewPath("ccm"))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for _, ns := range tc.in {
				if !c.InScope(ns) {
					t.Errorf("%s not in scope", ns)
				}
			}
			for _, ns := range tc.out {
				if c.InScope(ns) {
					t.Errorf("%s in scope", ns)
				}
			}
		})
	}
}

func TestMergeCCM(t *testing.T) {
	base := &CCMDocument{
		OnConflict: ConflictOverride,
		Namespaces: []string{"kube-system"},
		Match:      &CCMMatchers{Binaries: []string{"^a$", "^b$"}, Images: []string{"img"}},
		Veto:       &CCMMatchers{Names: []string{"^v$"}},
	}
	baseCopy := *base
	cases := map[string]struct {
		over *CCMDocument
		want *CCMDocument
	}{
		"nil over keeps base": {over: nil, want: base},
		"scalars override when set, namespaces replace": {
			over: &CCMDocument{APIServer: &APIServer{Host: "api.example.com"}, OnConflict: ConflictKeep, Namespaces: []string{"cloud"}},
			want: &CCMDocument{APIServer: &APIServer{Host: "api.example.com"}, OnConflict: ConflictKeep, Namespaces: []string{"cloud"},
				Match: base.Match, Veto: base.Veto},
		},
		"lists are added first, without duplicates": {
			over: &CCMDocument{Match: &CCMMatchers{Binaries: []string{"^c$", "^a$"}, Names: []string{"n"}}, Veto: &CCMMatchers{Flags: []string{"^--x"}}},
			want: &CCMDocument{OnConflict: ConflictOverride, Namespaces: []string{"kube-system"},
				Match: &CCMMatchers{Binaries: []string{"^c$", "^a$", "^b$"}, Images: []string{"img"}, Names: []string{"n"}},
				Veto:  &CCMMatchers{Names: []string{"^v$"}, Flags: []string{"^--x"}}},
		},
		"remove deletes built-in patterns": {
			over: &CCMDocument{RemoveMatch: &CCMMatchers{Binaries: []string{"^a$"}, Images: []string{"img"}}, RemoveVeto: &CCMMatchers{Names: []string{"^v$"}}},
			want: &CCMDocument{OnConflict: ConflictOverride, Namespaces: []string{"kube-system"},
				Match: &CCMMatchers{Binaries: []string{"^b$"}}},
		},
		"removals not found are kept for compile to report": {
			over: &CCMDocument{RemoveMatch: &CCMMatchers{Binaries: []string{"^a$", "^zz$"}}},
			want: &CCMDocument{OnConflict: ConflictOverride, Namespaces: []string{"kube-system"},
				Match: &CCMMatchers{Binaries: []string{"^b$"}, Images: []string{"img"}}, Veto: base.Veto,
				RemoveMatch: &CCMMatchers{Binaries: []string{"^zz$"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := mergeCCM(base, tc.over)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mergeCCM =\n%+v\nwant\n%+v", describeCCMDoc(got), describeCCMDoc(tc.want))
			}
			if !reflect.DeepEqual(*base, baseCopy) || len(base.Match.Binaries) != 2 {
				t.Errorf("mergeCCM modified base: %+v", describeCCMDoc(base))
			}
		})
	}
}

func describeCCMDoc(d *CCMDocument) string {
	if d == nil {
		return "nil"
	}
	var b strings.Builder
	b.WriteString("{")
	if d.APIServer != nil {
		b.WriteString("apiServer:" + d.APIServer.Host + " ")
	}
	b.WriteString("onConflict:" + string(d.OnConflict) + " namespaces:" + strings.Join(d.Namespaces, ","))
	for name, m := range map[string]*CCMMatchers{"match": d.Match, "veto": d.Veto, "removeMatch": d.RemoveMatch, "removeVeto": d.RemoveVeto} {
		if m != nil {
			b.WriteString(" " + name + ":")
			for _, l := range m.lists() {
				if len(*l.list) > 0 {
					b.WriteString(l.name + "=" + strings.Join(*l.list, ",") + ";")
				}
			}
		}
	}
	return b.String() + "}"
}

func TestCompileCCMReportsEveryError(t *testing.T) {
	doc := &CCMDocument{
		APIServer:   &APIServer{Host: "https://api.example.com", Port: 70000},
		OnConflict:  "Replace",
		Namespaces:  []string{"kube-system", "Bad_NS", "*"},
		Match:       &CCMMatchers{Binaries: []string{"^ok$", "(unclosed"}, Images: []string{""}},
		Veto:        &CCMMatchers{Flags: []string{"[z-a]"}},
		RemoveMatch: &CCMMatchers{Names: []string{"^not-built-in$"}},
	}
	c, errs := compileCCM(doc, field.NewPath("ccm"))
	if c != nil {
		t.Errorf("compileCCM returned a CCM despite errors")
	}
	want := []string{
		"ccm.apiServer.host",
		"ccm.apiServer.port",
		"ccm.onConflict",
		"ccm.namespaces[1]",
		"ccm.match.binaries[1]",
		"ccm.match.images[0]",
		"ccm.veto.flags[0]",
		"ccm.removeMatch.names",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Field)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error fields = %q, want %q\nerrors: %v", got, want, errs.ToAggregate())
	}
}

func TestCompileCCMAPIServer(t *testing.T) {
	cases := map[string]struct {
		api     *APIServer
		want    *APIServer
		wantErr string
	}{
		"no apiServer":            {},
		"empty host":              {api: &APIServer{}},
		"host with default port":  {api: &APIServer{Host: "api.example.com"}, want: &APIServer{Host: "api.example.com", Port: 443}},
		"host with port":          {api: &APIServer{Host: "api.example.com", Port: 30443}, want: &APIServer{Host: "api.example.com", Port: 30443}},
		"IPv4 host":               {api: &APIServer{Host: "192.0.2.10"}, want: &APIServer{Host: "192.0.2.10", Port: 443}},
		"IPv6 host":               {api: &APIServer{Host: "2001:db8::1"}, want: &APIServer{Host: "2001:db8::1", Port: 443}},
		"host with a port inside": {api: &APIServer{Host: "api.example.com:6443"}, wantErr: "must not include a port"},
		"upper-case host":         {api: &APIServer{Host: "API.example.com"}, wantErr: "RFC 1123"},
		"negative port":           {api: &APIServer{Host: "api.example.com", Port: -1}, wantErr: "between 1 and 65535"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, errs := compileCCM(&CCMDocument{APIServer: tc.api}, field.NewPath("ccm"))
			if tc.wantErr != "" {
				if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.wantErr) {
					t.Fatalf("errors = %v, want one containing %q", errs, tc.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := c.APIServer(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("APIServer() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoadMergesCCMOverDefaults(t *testing.T) {
	p, err := Load("policy.yaml", []byte(`
apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
ccm:
  apiServer:
    host: api.test-cluster.example.com
    port: 443
  onConflict: Keep
  namespaces: [kube-system, cloud]
  match:
    binaries: ["^my-cloud-manager$"]
    images: ["example.com/my-ccm$"]
  veto:
    names: ["^my-sidecar$"]
  removeMatch:
    binaries: ['^kube-vip-cloud-provider$']
`))
	if err != nil {
		t.Fatal(err)
	}
	c := p.CCM()
	if got := c.APIServer(); got == nil || got.Host != "api.test-cluster.example.com" || got.Port != 443 {
		t.Errorf("APIServer() = %+v", got)
	}
	if c.OnConflict() != ConflictKeep || !c.InScope("cloud") {
		t.Errorf("onConflict %q, namespaces %v", c.OnConflict(), c.Namespaces())
	}
	cases := map[string]struct {
		ctr    CCMContainer
		strong bool
		veto   bool
	}{
		"added binary":                {ctr: CCMContainer{Name: "x", Command: []string{"/my-cloud-manager"}}, strong: true},
		"added image with host":       {ctr: CCMContainer{Name: "x", Image: "example.com/my-ccm:v1"}, strong: true},
		"built-in binary still there": {ctr: CCMContainer{Name: "x", Command: []string{"/aws-cloud-controller-manager"}}, strong: true},
		"removed built-in binary":     {ctr: CCMContainer{Name: "x", Command: []string{"/kube-vip-cloud-provider"}}},
		"added veto":                  {ctr: CCMContainer{Name: "my-sidecar", Command: []string{"/aws-cloud-controller-manager"}}, veto: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := c.Container(tc.ctr)
			if (s.Strong != "") != tc.strong || (s.Veto != "") != tc.veto {
				t.Errorf("Container() = %+v, want strong %v veto %v", s, tc.strong, tc.veto)
			}
		})
	}
}

func TestLoadRejectsBadCCM(t *testing.T) {
	_, err := Load("policy.yaml", []byte(`
apiVersion: hcp-ingress.io/v1alpha1
kind: Policy
ccm:
  match:
    binaries: ["(broken"]
  removeVeto:
    names: ["^no-such-pattern$"]
`))
	if err == nil {
		t.Fatal("Load accepted a broken ccm section")
	}
	for _, want := range []string{"ccm.match.binaries[0]", "ccm.removeVeto.names", "^no-such-pattern$"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestValidAPIHost(t *testing.T) {
	cases := map[string]bool{
		"api.example.com": true, "192.0.2.1": true, "::1": true, "localhost": true,
		"": false, "api.example.com:443": false, "https://api.example.com": false, "api_example.com": false, "-api.example.com": false,
	}
	for host, ok := range cases {
		if got := ValidAPIHost(host); (len(got) == 0) != ok {
			t.Errorf("ValidAPIHost(%q) = %q, want valid %v", host, got, ok)
		}
	}
}

func TestImageName(t *testing.T) {
	cases := map[string][2]string{
		"nginx":      {"nginx", "nginx"},
		"nginx:1.27": {"nginx", "nginx"},
		"hetznercloud/hcloud-cloud-controller-manager":  {"hetznercloud/hcloud-cloud-controller-manager", "hetznercloud/hcloud-cloud-controller-manager"},
		"registry.k8s.io/provider-aws/ccm:v1@sha256:ab": {"registry.k8s.io/provider-aws/ccm", "provider-aws/ccm"},
		"localhost:5000/a/b:v1":                         {"localhost:5000/a/b", "a/b"},
		"localhost/a":                                   {"localhost/a", "a"},
	}
	for image, want := range cases {
		name, path := imageName(image)
		if name != want[0] || path != want[1] {
			t.Errorf("imageName(%q) = %q, %q, want %q", image, name, path, want)
		}
	}
}

func TestNilCCMDetectsNothing(t *testing.T) {
	var c *CCM
	if c.InScope("kube-system") || c.APIServer() != nil || c.OnConflict() != ConflictOverride {
		t.Error("nil CCM has a scope or an API server")
	}
	if s := c.Container(CCMContainer{Command: []string{"aws-cloud-controller-manager"}}); s != (ContainerSignals{}) {
		t.Errorf("nil CCM sees %+v", s)
	}
}

func TestRequiredLiterals(t *testing.T) {
	cases := map[string][]string{
		`^aws-cloud-controller-manager$`:                                                {"aws-cloud-controller-manager"},
		`(?:^|/)cloud-pv-vsphere/cloud-provider-vsphere$`:                               {"cloud-pv-vsphere/cloud-provider-vsphere"},
		`(?:^|/)(?:[a-z0-9]+-)*cloud-(?:controller|node)-manager(?:-(?:amd64|arm64))?$`: {"-manager"},
		`\b(?:admission|webhook|operator)\b`:                                            {"admission", "webhook", "operator"},
		`^--(?:kubeconfig|master)(?:=|$)`:                                               {"kubeconfig", "master"},
		`(?i)cloud`:                                                                     nil,
		`a*`:                                                                            nil,
		`x|y*`:                                                                          nil,
		`(?:ab)+c?`:                                                                     {"ab"},
	}
	for expr, want := range cases {
		p, _, err := compilePattern(expr)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.literals, want) {
			t.Errorf("%s: literals %q, want %q", expr, p.literals, want)
		}
	}
}

// The prefilter must never reject a string the regexp matches: run every
// default pattern over strings that match some of them.
func TestPrefilterNeverRejectsAMatch(t *testing.T) {
	strs := []string{
		"openstack-cloud-controller-manager", "cloud-node-manager", "kube-vip-cloud-provider", "cloudstack-ccm",
		"--cloud-provider=aws", "--cloud-provider=externals", "--kubeconfig", "--master=x",
		"registry.k8s.io/provider-aws/cloud-controller-manager", "provider-aws/cloud-controller-manager",
		"acs/cloud-controller-manager-amd64", "cloud-pv-vsphere/cloud-provider-vsphere",
		"sig-storage/csi-provisioner", "cinder-csi-plugin", "cluster-autoscaler", "kube-controller-manager",
		"hcloud-ccm", "vsphere-cpi", "cloud-provider-openstack", "my-webhook", "tigera-operator", "x",
	}
	c := defaultCCM(t)
	for _, set := range []ccmPatterns{c.match, c.veto} {
		for _, list := range []patterns{set.binaries, set.flags, set.images, set.names, set.labels} {
			for _, p := range list {
				for _, s := range strs {
					if p.re.MatchString(s) && !p.match(s) {
						t.Errorf("prefilter %q of %s rejects %q", p.literals, p.re, s)
					}
				}
			}
		}
	}
}

func TestFlagValuesMergeByName(t *testing.T) {
	strong := func(p *Policy, args ...string) bool {
		return p.CCM().Container(CCMContainer{Name: "main", Command: []string{"/app"}, Args: args}).Strong != ""
	}
	t.Run("a user matcher replaces the built-in one of its name", func(t *testing.T) {
		p := mustLoad(t, header+"ccm:\n  match:\n    flagValues:\n      - name: cloud-provider\n        except: [external, none]\n")
		if strong(p, "--cloud-provider=none") || !strong(p, "--cloud-provider=aws") {
			t.Error("the user's except list is not the one in force")
		}
		if got := p.Effective().CCM.Match.FlagValues; len(got) != 1 {
			t.Errorf("effective flagValues = %+v, want the user's only", got)
		}
	})
	t.Run("removeMatch deletes the built-in one by name", func(t *testing.T) {
		p := mustLoad(t, header+"ccm:\n  removeMatch:\n    flagValues:\n      - name: cloud-provider\n")
		if strong(p, "--cloud-provider=aws") {
			t.Error("--cloud-provider=aws is still a signal")
		}
	})
	t.Run("a veto by flag value", func(t *testing.T) {
		p := mustLoad(t, header+"ccm:\n  veto:\n    flagValues:\n      - name: mode\n        except: [ccm]\n")
		s := p.CCM().Container(CCMContainer{Name: "x", Command: []string{"/aws-cloud-controller-manager", "--mode", "test"}})
		if s.Veto != `flag "--mode=test" in command` {
			t.Errorf("Veto = %q", s.Veto)
		}
	})
}
