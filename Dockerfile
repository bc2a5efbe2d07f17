# Dockerfile - certfleet in a container: built on Debian 12, shipped with the runtime libraries only.
#
#   docker build -t certfleet .
#   docker compose run --rm certfleet migrate      (see docker-compose.yml)
#
# Both stages install the package lists in packaging/deps/ (one package a line, '#' comments), the
# same lists scripts/install-deps.sh reads. scripts/image-check.sh repeats these two stages without
# Docker (mmdebstrap and chroot) and runs certfleet against the local stack.

# --- build: the C toolchain and the -dev packages the Makefile asks pkg-config for ---
FROM debian:12 AS build
COPY packaging/deps/build.txt /tmp/build.txt
RUN apt-get update \
 && sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' /tmp/build.txt \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" build/certfleet

# --- runtime: the shared libraries build/certfleet links against, and CA roots ---
FROM debian:12-slim
COPY packaging/deps/runtime.txt /tmp/runtime.txt
RUN apt-get update \
 && sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' /tmp/runtime.txt \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime.txt \
 && useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin certfleet \
 && install -d -o certfleet -g certfleet -m 0700 /var/lib/certfleet
# what PostgreSQL refuses for good waits here for the next run (mount a volume to keep it)
ENV CERTFLEET_JOURNAL=/var/lib/certfleet/journal
COPY --from=build /src/build/certfleet /usr/bin/certfleet
USER certfleet
ENTRYPOINT ["/usr/bin/certfleet"]
CMD ["--help"]
