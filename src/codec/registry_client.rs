//! A thin client for the Confluent schema registry REST API, built on
//! schema_registry_converter's async client (reqwest, rustls). It maps the converter's
//! `SRCError` onto shopstream's errors so that callers can tell the registry being down
//! (network errors, 5xx, unexpected answers: retriable) from the registry saying no
//! (unknown schema id, unknown subject, incompatible schema: final).

use std::error::Error as _;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    get_all_subjects, get_schema_by_id, get_schema_by_subject, is_compatible_schema,
    perform_sr_call, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SrCall, SubjectNameStrategy, SuppliedSchema,
};

use super::error::{DecodeError, RegistryError};

/// Confluent error codes the client distinguishes.
const SUBJECT_NOT_FOUND: u32 = 40401;
const VERSION_NOT_FOUND: u32 = 40402;
const SCHEMA_NOT_FOUND: u32 = 40403;
const INCOMPATIBLE: u32 = 409;

/// A schema registered under a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub subject: String,
    pub id: u32,
    pub version: Option<u32>,
}

/// A connection to one schema registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    url: String,
    settings: SrSettings,
}

impl RegistryClient {
    /// A client for the registry at `url` (e.g. `http://localhost:8081`), with a request
    /// timeout so an unreachable registry fails fast and retriably.
    pub fn new(url: &str, timeout: Duration) -> Result<RegistryClient, RegistryError> {
        let url = url.trim_end_matches('/').to_owned();
        let mut builder = SrSettings::new_builder(url.clone());
        builder.set_timeout(timeout);
        if is_loopback(&url) {
            builder.no_proxy();
        }
        let settings = builder.build().map_err(|e| RegistryError::InvalidSchema {
            source_name: url.clone(),
            detail: format!("cannot build the registry client: {e}"),
        })?;
        Ok(RegistryClient { url, settings })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema text for a schema id (GET /schemas/ids/{id}?deleted=true).
    pub async fn schema_by_id(&self, id: u32) -> Result<String, DecodeError> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(s) if s.schema_type == SchemaType::Avro => Ok(s.schema),
            Ok(s) => Err(DecodeError::UnsupportedSchema {
                id,
                detail: format!("schema type {:?} is not Avro", s.schema_type),
            }),
            Err(e) if error_code(&e) == Some(SCHEMA_NOT_FOUND) => {
                Err(DecodeError::UnknownSchemaId { id })
            }
            Err(e) => Err(DecodeError::RegistryUnavailable {
                detail: format!("{}: fetching schema id {id}: {}", self.url, describe(&e)),
            }),
        }
    }

    /// Registers `schema` under `subject` (POST /subjects/{s}/versions); registering the
    /// same schema again returns the same id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        post_schema(&self.settings, subject.to_owned(), supplied(schema))
            .await
            .map(|r| r.id)
            .map_err(|e| self.map_err(subject, e))
    }

    /// Looks `schema` up under `subject` without registering it (POST /subjects/{s}).
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<Registered, RegistryError> {
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
        match perform_sr_call(&self.settings, SrCall::PostForVersion(subject, &body)).await {
            Ok(raw) => match raw.id {
                Some(id) => Ok(Registered {
                    subject: subject.to_owned(),
                    id,
                    version: raw.version,
                }),
                None => Err(RegistryError::Rejected {
                    subject: subject.to_owned(),
                    detail: "lookup answer carries no id".into(),
                }),
            },
            Err(e) if matches!(error_code(&e), Some(SUBJECT_NOT_FOUND | SCHEMA_NOT_FOUND)) => {
                Err(RegistryError::NotRegistered {
                    subject: subject.to_owned(),
                })
            }
            Err(e) => Err(self.map_err(subject, e)),
        }
    }

    /// The latest version under `subject` (GET /subjects/{s}/versions/latest), or `None`
    /// if the subject does not exist.
    pub async fn latest(
        &self,
        subject: &str,
    ) -> Result<Option<(Registered, String)>, RegistryError> {
        let strategy = SubjectNameStrategy::RecordNameStrategy(subject.to_owned());
        match get_schema_by_subject(&self.settings, &strategy).await {
            Ok(s) => Ok(Some((
                Registered {
                    subject: subject.to_owned(),
                    id: s.id,
                    version: s.version,
                },
                s.schema,
            ))),
            Err(e) if matches!(error_code(&e), Some(SUBJECT_NOT_FOUND | VERSION_NOT_FOUND)) => {
                Ok(None)
            }
            Err(e) => Err(self.map_err(subject, e)),
        }
    }

    /// Whether `schema` could be registered under `subject` given its compatibility level
    /// (POST /compatibility/subjects/{s}/versions). A subject that does not exist yet
    /// accepts anything.
    pub async fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        match is_compatible_schema(&self.settings, subject.to_owned(), supplied(schema)).await {
            Ok(ok) => Ok(ok),
            Err(e) if error_code(&e) == Some(SUBJECT_NOT_FOUND) => Ok(true),
            Err(e) => Err(self.map_err(subject, e)),
        }
    }

    /// All subjects (GET /subjects).
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        get_all_subjects(&self.settings)
            .await
            .map_err(|e| self.map_err("*", e))
    }

    fn map_err(&self, subject: &str, e: SRCError) -> RegistryError {
        match error_code(&e) {
            Some(INCOMPATIBLE) => RegistryError::Incompatible {
                subject: subject.to_owned(),
                detail: describe(&e),
            },
            Some(code) if code < 50000 => RegistryError::Rejected {
                subject: subject.to_owned(),
                detail: describe(&e),
            },
            // Network errors, 5xx and answers without a Confluent error body.
            _ => RegistryError::Unavailable {
                url: self.url.clone(),
                detail: describe(&e),
            },
        }
    }
}

fn supplied(schema: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned())
}

/// The Confluent `error_code` of an error response, if the registry sent one.
fn error_code(e: &SRCError) -> Option<u32> {
    e.source()
        .and_then(|s| s.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
        .filter(|code| *code != 0)
}

fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{} ({cause})", e.error),
        None => e.error.clone(),
    }
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || url.contains("://[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_bypass_proxies() {
        assert!(is_loopback("http://127.0.0.1:8081"));
        assert!(is_loopback("http://localhost:8081/"));
        assert!(is_loopback("http://[::1]:8081"));
        assert!(!is_loopback("https://registry.example.com"));
    }
}
