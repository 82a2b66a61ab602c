# syntax=docker/dockerfile:1
# The inferperf image for deploy/kubernetes: one binary, `inferperf`, on PATH; runs as the
# non-root user 65532 (the manifests' runAsUser).
#
#   docker build -t inferperf:latest .
#
# Why glibc on distroless/cc rather than a static musl binary: the tokenizer crate
# (`tokenizers`) compiles C and C++ through the `cc` crate (onig_sys: Oniguruma, C;
# esaxx-rs: C++), so a static musl build needs a musl C++ toolchain and a static libstdc++,
# which was not verified for this workspace. The glibc build links only glibc, libm and
# libgcc_s, all in distroless/cc (and no shell or package manager, so nothing else runs in it).

# --- build: Debian 12 (bookworm), the same glibc as the final image ---
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io downloads and the build between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p inferperf --bin inferperf \
    && install -D -m 0755 target/release/inferperf /out/inferperf

# --- run ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/inferperf /usr/local/bin/inferperf
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/inferperf"]
CMD ["--help"]
