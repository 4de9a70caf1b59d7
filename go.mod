module github.com/hcp-ingress/hcp-ingress-webhook

go 1.26.0

require (
	github.com/evanphx/json-patch/v5 v5.9.11
	gomodules.xyz/jsonpatch/v2 v2.5.0
	k8s.io/apimachinery v0.37.2
)

require github.com/stretchr/testify v1.12.1 // indirect
