//! Schema administration for `shopstream schemas register`: registers each topic's value
//! schema (a file under `schemas/avro/`) under its TopicNameStrategy subject. Every
//! schema is parsed and checked for compatibility first, and nothing is registered unless
//! all pass, so a rejected change leaves the registry as it was; the error names the
//! subject and says why (with the apache-avro explanation against the latest version).

use std::path::Path;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use super::error::RegistryError;
use super::format::REGISTRY_TIMEOUT;
use super::registry_client::{Registered, RegistryClient};
use super::schemas::by_file;
use super::subjects::{topic_schemas, value_subject};

/// Registers every shopstream topic's schema from `schema_dir` (see
/// [`super::subjects::topic_schemas`]).
pub async fn register_defaults(
    registry_url: &str,
    schema_dir: &Path,
) -> Result<Vec<Registered>, RegistryError> {
    register_all(registry_url, schema_dir, &topic_schemas()).await
}

/// Registers the schemas compiled into the binary for every shopstream topic, for when no
/// schema directory is at hand (e.g. `demo` seeding its embedded registry).
pub async fn register_builtin(registry_url: &str) -> Result<Vec<Registered>, RegistryError> {
    let mut planned = Vec::new();
    for (topic, file) in topic_schemas() {
        let schema = by_file(file).ok_or_else(|| RegistryError::InvalidSchema {
            source_name: file.to_owned(),
            detail: "no such compiled-in schema".into(),
        })?;
        planned.push((
            value_subject(&topic),
            file.to_owned(),
            schema.json.to_owned(),
        ));
    }
    register_checked(registry_url, planned).await
}

/// Registers `schema_dir/<file>` under `<topic>-value` for each `(topic, file)`.
pub async fn register_all<T: AsRef<str>, F: AsRef<str>>(
    registry_url: &str,
    schema_dir: &Path,
    topics: &[(T, F)],
) -> Result<Vec<Registered>, RegistryError> {
    let mut planned = Vec::with_capacity(topics.len());
    for (topic, file) in topics {
        let path = schema_dir.join(file.as_ref());
        let text = read_schema(&path)?;
        planned.push((
            value_subject(topic.as_ref()),
            path.display().to_string(),
            text,
        ));
    }
    register_checked(registry_url, planned).await
}

/// Checks every (subject, source name, schema) for compatibility, then registers them all.
async fn register_checked(
    registry_url: &str,
    planned: Vec<(String, String, String)>,
) -> Result<Vec<Registered>, RegistryError> {
    let client = RegistryClient::new(registry_url, REGISTRY_TIMEOUT)?;
    for (subject, source, text) in &planned {
        if !client.is_compatible(subject, text).await? {
            return Err(RegistryError::Incompatible {
                detail: explain(&client, subject, text, source).await,
                subject: subject.clone(),
            });
        }
    }
    let mut registered = Vec::with_capacity(planned.len());
    for (subject, _, text) in planned {
        client.register(&subject, &text).await?;
        registered.push(client.lookup(&subject, &text).await?);
    }
    Ok(registered)
}

fn read_schema(path: &Path) -> Result<String, RegistryError> {
    let invalid = |detail: String| RegistryError::InvalidSchema {
        source_name: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    Schema::parse_str(&text).map_err(|e| invalid(e.to_string()))?;
    Ok(text)
}

/// Why `text` is incompatible, as far as a local check against the latest version can
/// tell (the registry only answers yes or no).
async fn explain(client: &RegistryClient, subject: &str, text: &str, file: &str) -> String {
    let Ok(Some((latest, old_text))) = client.latest(subject).await else {
        return format!("{file} is rejected by the registry's compatibility level");
    };
    let version = latest
        .version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    let local = match (Schema::parse_str(&old_text), Schema::parse_str(text)) {
        (Ok(old), Ok(new)) => match SchemaCompatibility::can_read(&old, &new) {
            Err(e) => format!("it cannot read data written with version {version}: {e}"),
            Ok(_) => match SchemaCompatibility::can_read(&new, &old) {
                Err(e) => format!("version {version} cannot read data it writes: {e}"),
                Ok(_) => "it conflicts with an earlier version".into(),
            },
        },
        _ => "the registered version cannot be parsed".into(),
    };
    format!("{file}: {local}")
}
