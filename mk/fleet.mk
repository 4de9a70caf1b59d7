##@ Fleet

.PHONY: bench-fleet
bench-fleet: build control-plane ## Fleet wiring at scale: 1,000 control planes with a 10 KB k0sConfig; time to wire, serve's peak RSS, API requests per control plane.
	HCP_BENCH=1 go test -count=1 -v -timeout 20m -run '^TestFleetScale$$' ./e2e | grep -E 'fleet scale|created|^(ok|FAIL|---)' | tee $(BIN)/bench-fleet.txt

# make bench runs the fleet benchmark too (first: it starts its own API server).
bench: bench-fleet
