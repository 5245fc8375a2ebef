# mcp-warden: a static binary in an empty image.
#   docker build -t mcp-warden .

# Build with the same script CI runs: static musl binary, link check, size budget,
# smoke test. Debian bookworm, like the machine that script is tested on.
FROM rust:1.95-slim-bookworm AS build
# What build-static would install itself; a layer of its own, so source edits reuse it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# build-static prints the binary's path as its last line of stdout.
RUN bin="$(scripts/build-static)" && cp "$bin" /mcp-warden

# Run: the binary alone. No shell, no libc, no CA files (rustls carries its roots).
FROM scratch
COPY --from=build /mcp-warden /mcp-warden
# Non-root; numeric, since scratch has no /etc/passwd.
USER 65532:65532
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
ENTRYPOINT ["/mcp-warden"]
