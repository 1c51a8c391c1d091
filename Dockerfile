# `genesys-webhook serve`, the verifying, durable relay, in one image: built in a Rust
# image, run as a non-root user in a slim Debian one, ready when /readyz says so. The
# same binary holds the rest of the command (`inbox`, `send`, `setup`, ...).
#
#   scripts/container.sh          builds it with docker or podman and checks /readyz
#   docker run -e GENESYS_WEBHOOK_SECRET=... -e GENESYS_FORWARD_SECRET=... \
#     -e GENESYS_FORWARD_URL=http://app:8080/genesys \
#     -p 5000:5000 -v genesys-inbox:/var/lib/genesys-webhook genesys-webhook

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --features cli --bin genesys-webhook

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/genesys-webhook genesys
COPY --from=build /src/target/release/genesys-webhook /usr/local/bin/genesys-webhook
USER genesys
WORKDIR /var/lib/genesys-webhook
# The inbox lives on the volume; freed body buffers go back to the system at once.
ENV LISTEN_ADDR=0.0.0.0:5000 \
    GENESYS_INBOX=sqlite:/var/lib/genesys-webhook/genesys-inbox.db \
    MALLOC_MMAP_THRESHOLD_=131072
VOLUME /var/lib/genesys-webhook
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD curl -fsS http://127.0.0.1:5000/readyz || exit 1
ENTRYPOINT ["genesys-webhook"]
CMD ["serve"]
