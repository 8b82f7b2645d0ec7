//! Typed configuration: one TOML file plus `SHOPSTREAM_*` environment overrides.
