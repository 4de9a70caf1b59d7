##@ Certificates

.PHONY: cert-rotation
cert-rotation: build control-plane ## Self-managed certificates: rotation under load (5 serving + 1 CA rotation, ~2 min) and readiness on an expired certificate; figures in bin/cert-rotation.log.
	go test -count=1 -timeout 10m -v ./e2e/ -run 'TestSelfManagedCertificates|TestExpiredCertificate' 2>&1 | tee $(BIN)/cert-rotation.log | grep -E '^(=== RUN|--- |\s+certs_test.go|PASS|FAIL|ok)'

# Part of `make e2e`, which `make test` runs: nothing to add to TEST_TARGETS.
