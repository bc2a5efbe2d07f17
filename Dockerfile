# Dockerfile - certfleet in a container: built on Debian 12, shipped with the runtime libraries only.
#
#   docker build -t certfleet .
#   docker compose run --rm certfleet migrate      (see docker-compose.yml)

# --- build: the C toolchain and the -dev packages the Makefile asks pkg-config for ---
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config \
        libssl-dev libcurl4-openssl-dev libpq-dev libjansson-dev libidn2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)"

# --- runtime: the shared libraries build/certfleet links against, and CA roots ---
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libssl3 libcurl4 libpq5 libjansson4 libidn2-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /app --shell /usr/sbin/nologin certfleet
WORKDIR /app
COPY --from=build /src/build/certfleet /app/build/certfleet
USER certfleet
ENTRYPOINT ["/app/build/certfleet"]
CMD ["--help"]
