##@ Soak

# Whole minutes of load for `make soak`; the short run in `make test` is fixed.
SOAK_MINUTES ?= 5
SOAK_SHORT   := 40s

.PHONY: soak
soak: build control-plane ## Soak test: SOAK_MINUTES (default 5) of mixed admissions while the policy flips, the certificate rotates and kube-apiserver restarts (log in bin/soak.log).
	HCP_SOAK_DURATION=$(SOAK_MINUTES)m go test -count=1 -timeout $$(( $(SOAK_MINUTES) + 10 ))m -v -run '^TestSoak$$' ./e2e 2>&1 | tee $(BIN)/soak.log

.PHONY: soak-short
soak-short: build control-plane ## The soak test for 40 seconds (part of make test; log in bin/soak-short.log).
	HCP_SOAK_DURATION=$(SOAK_SHORT) go test -count=1 -timeout 10m -v -run '^TestSoak$$' ./e2e 2>&1 | tee $(BIN)/soak-short.log

TEST_TARGETS += soak-short
