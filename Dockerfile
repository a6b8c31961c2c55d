# syntax=docker/dockerfile:1
# The tvm client as a container: the `tvm serve` sidecar for ECS tasks
# (docs/client.md). A static (musl) binary on a distroless base: no shell,
# no package manager, CA certificates only, running as a non-root user.
#
#   docker build -t tvm:0.1.0 .
#   docker run --rm tvm:0.1.0 --version

FROM rust:1.95-alpine3.22 AS build
# The builder stage is thrown away; only the binary leaves it.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tvm-cli --bin tvm \
 && cp target/release/tvm /tvm \
 && mkdir -p /token-dir

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tvm /usr/local/bin/tvm
# The token file's directory, owned by the user tvm runs as: a volume
# mounted here starts with this ownership (docs/client.md).
COPY --from=build --chown=65532:65532 /token-dir /tvm
# distroless nonroot: uid and gid 65532
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tvm"]
CMD ["serve", "--help"]
