# The two commands of the README, and their parts.

.PHONY: build run test xcaddy clean

build:
	@[ -x bin/caddy ] || echo "build: compiling bin/caddy (Caddy and this plugin); the first build takes a few minutes"
	go build -o bin/caddy ./cmd/caddy

run: build
	scripts/run.sh

test:
	scripts/test.sh

# The release binary, built the way operators build it.
xcaddy:
	./xcaddy.sh

clean:
	rm -rf bin
	scripts/pg-down.sh .data/pg
	scripts/pg-down.sh .data/test-pg
