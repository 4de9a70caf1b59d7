package mutate

import (
	"encoding/json"
	"testing"

	"github.com/hcp-ingress/hcp-ingress-webhook/internal/rules"
)

// The API server of a control plane, as the server's lookup (a decoded map)
// and the offline command (raw JSON) read it: one reader, the same answers.
func TestControlPlaneAPIServer(t *testing.T) {
	cases := map[string]struct {
		object  string
		want    *rules.APIServer
		wantErr string
	}{
		"host and port":                {object: `{"spec":{"ingress":{"apiHost":"api.example.com","port":8443}}}`, want: &rules.APIServer{Host: "api.example.com", Port: 8443}},
		"no port is 443":               {object: `{"spec":{"ingress":{"apiHost":"api.example.com"}}}`, want: &rules.APIServer{Host: "api.example.com", Port: 443}},
		"no apiHost":                   {object: `{"spec":{"ingress":{"port":8443}}}`},
		"spec.ingress null":            {object: `{"spec":{"ingress":null}}`},
		"no spec.ingress":              {object: `{"spec":{}}`},
		"no spec":                      {object: `{}`},
		"a fractional port is refused": {object: `{"spec":{"ingress":{"apiHost":"a.example.com","port":443.9}}}`, wantErr: "spec.ingress.port: 443.9 is not a port number (an integer from 1 to 65535)"},
		"a port out of range":          {object: `{"spec":{"ingress":{"apiHost":"a.example.com","port":70000}}}`, wantErr: "spec.ingress.port: 70000 is not a port number"},
		"a port that is a string":      {object: `{"spec":{"ingress":{"apiHost":"a.example.com","port":"443"}}}`, wantErr: "spec.ingress.port: must be a number, got string"},
		"spec.ingress a string":        {object: `{"spec":{"ingress":"x"}}`, wantErr: "spec.ingress: must be an object, got string"},
		"spec a list":                  {object: `{"spec":[1]}`, wantErr: "spec: must be an object, got array"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var object map[string]any
			if err := json.Unmarshal([]byte(tc.object), &object); err != nil {
				t.Fatal(err)
			}
			fromMap, okMap, errMap := IngressAPIServer(object)
			fromRaw, okRaw, errRaw := ControlPlaneAPIServer([]byte(tc.object))
			for _, got := range []struct {
				api *rules.APIServer
				ok  bool
				err error
			}{{fromMap, okMap, errMap}, {fromRaw, okRaw, errRaw}} {
				if tc.wantErr != "" {
					if got.err == nil || len(got.err.Error()) < len(tc.wantErr) || got.err.Error()[:len(tc.wantErr)] != tc.wantErr {
						t.Errorf("error %v, want %q", got.err, tc.wantErr)
					}
					continue
				}
				if got.err != nil {
					t.Fatal(got.err)
				}
				if got.ok != (tc.want != nil) || (tc.want != nil && *got.api != *tc.want) {
					t.Errorf("got %v %t, want %v", got.api, got.ok, tc.want)
				}
			}
		})
	}
}
