# Developer shortcuts; CI runs .ci/run, which does not need just.
version := `bash scripts/version.sh`

build:
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version={{version}}" -o bin/proxmox-agent ./cmd/proxmox-agent

test:
    go test -race ./...

lint:
    test -z "$(gofmt -l .)" || (gofmt -l . && false)
    go vet ./...

bench:
    go test -run '^$' -bench . -benchmem ./...

run config="testdata/agent.toml":
    go run ./cmd/proxmox-agent run --config {{config}}

once config="testdata/agent.toml":
    go run ./cmd/proxmox-agent once --config {{config}}

ci:
    bash .ci/run
