#!/usr/bin/env bash
# Installs what shopstream's demo and tests need on a fresh Debian/Ubuntu machine:
# the PostgreSQL server binaries (for the throw-away database), a C toolchain (for the
# vendored librdkafka) and OpenSSL's headers (for its TLS and SCRAM). Idempotent: does nothing when everything is already there.
set -euo pipefail

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
command -v runuser >/dev/null || need+=(util-linux)
# librdkafka's TLS and SCRAM link the system OpenSSL (rdkafka feature `ssl`); the openssl
# command makes encrypted keys in tests/security_kafka.rs.
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
command -v openssl >/dev/null || need+=(openssl)

if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a cluster of its own; shopstream never uses it.
command -v cargo >/dev/null || { echo "setup: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
echo "setup: ok" >&2
