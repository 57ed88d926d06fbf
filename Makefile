# The two commands of the README:
#   go run ./cmd/caddy run --config Caddyfile.example   serves the example
#   make test                                          installs what tests need and runs them all

.PHONY: test sdk

# The PostgreSQL tests run when LICENSE_API_TEST_POSTGRES holds a DSN
# (.ci/run sets it); without one they are skipped, and this says so.
test: sdk
	@if [ -z "$$LICENSE_API_TEST_POSTGRES" ]; then \
		echo "NOTE: LICENSE_API_TEST_POSTGRES is not set: the PostgreSQL tests will be SKIPPED."; \
		echo "      Set it to run them, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"; \
	fi
	go test -race -count=1 ./...

# The official LicenseSpring Node SDK, exactly as pinned in test/sdk/package-lock.json.
sdk:
	npm ci --prefix test/sdk --no-audit --no-fund
