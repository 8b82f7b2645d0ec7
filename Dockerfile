# shopstream: build with the vendored librdkafka, run on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shopstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/shopstream /usr/local/bin/shopstream
COPY shopstream.example.toml /etc/shopstream/shopstream.toml
ENV SHOPSTREAM_CONFIG=/etc/shopstream/shopstream.toml
# Prometheus scrapes across the container network; outside a container the default is
# loopback only (README, "Security").
ENV SHOPSTREAM_METRICS__LISTEN=0.0.0.0:9464
USER 65534
ENTRYPOINT ["shopstream"]
CMD ["run"]
