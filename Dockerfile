# shopstream: build with the vendored librdkafka, run on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shopstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/shopstream /usr/local/bin/shopstream
COPY shopstream.example.toml /etc/shopstream/shopstream.toml
ENV SHOPSTREAM_CONFIG=/etc/shopstream/shopstream.toml
USER 65534
ENTRYPOINT ["shopstream"]
CMD ["run"]
