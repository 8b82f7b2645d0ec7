//! The embedded registry's state and rules, free of HTTP: globally numbered schemas
//! (identical schema text gets the same id under every subject), subjects as ordered
//! version lists, and Confluent's compatibility levels checked with apache-avro's
//! `SchemaCompatibility::can_read`. Errors carry Confluent's error codes.

use std::collections::{BTreeMap, HashMap};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

/// Confluent compatibility levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    /// (new schema must read old data, old schema must read new data)
    fn directions(self) -> (bool, bool) {
        use CompatibilityLevel::*;
        match self {
            None => (false, false),
            Backward | BackwardTransitive => (true, false),
            Forward | ForwardTransitive => (false, true),
            Full | FullTransitive => (true, true),
        }
    }
}

/// A registry error with Confluent's HTTP status and error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    SubjectNotFound(String),
    VersionNotFound(String),
    SchemaNotFound,
    InvalidSchema(String),
    InvalidVersion(String),
    Incompatible(String),
    BadRequest(String),
}

impl StoreError {
    /// (HTTP status, Confluent error_code, message)
    pub fn parts(&self) -> (u16, u32, String) {
        match self {
            StoreError::SubjectNotFound(s) => (404, 40401, format!("Subject '{s}' not found.")),
            StoreError::VersionNotFound(v) => (404, 40402, format!("Version {v} not found.")),
            StoreError::SchemaNotFound => (404, 40403, "Schema not found".into()),
            StoreError::InvalidSchema(d) => (422, 42201, format!("Invalid schema: {d}")),
            StoreError::InvalidVersion(v) => (
                422,
                42202,
                format!(
                    "The specified version '{v}' is not a valid version id. Allowed values are \
                     between [1, 2^31-1] and the string \"latest\""
                ),
            ),
            StoreError::Incompatible(m) => (409, 409, m.clone()),
            StoreError::BadRequest(m) => (400, 400, m.clone()),
        }
    }
}

/// Which registered version(s) a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    Latest,
    Number(u32),
}

impl VersionSel {
    pub fn parse(s: &str) -> Result<VersionSel, StoreError> {
        match s {
            "latest" | "-1" => Ok(VersionSel::Latest),
            _ => match s.parse::<u32>() {
                Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(VersionSel::Number(n)),
                _ => Err(StoreError::InvalidVersion(s.to_owned())),
            },
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

struct Stored {
    text: String,
    avro: Schema,
}

/// All registry state.
pub struct Store {
    level: CompatibilityLevel,
    subject_levels: HashMap<String, CompatibilityLevel>,
    /// Schema id `n` is at index `n - 1`.
    schemas: Vec<Stored>,
    ids_by_text: HashMap<String, u32>,
    /// Subject → schema ids by version (version `n` at index `n - 1`).
    subjects: BTreeMap<String, Vec<u32>>,
}

impl Store {
    pub fn new(level: CompatibilityLevel) -> Store {
        Store {
            level,
            subject_levels: HashMap::new(),
            schemas: Vec::new(),
            ids_by_text: HashMap::new(),
            subjects: BTreeMap::new(),
        }
    }

    pub fn level(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|s| self.subject_levels.get(s).copied())
            .unwrap_or(self.level)
    }

    pub fn set_level(&mut self, subject: Option<&str>, level: CompatibilityLevel) {
        match subject {
            Some(s) => {
                self.subject_levels.insert(s.to_owned(), level);
            }
            None => self.level = level,
        }
    }

    pub fn schema_by_id(&self, id: u32) -> Result<&str, StoreError> {
        id.checked_sub(1)
            .and_then(|i| self.schemas.get(i as usize))
            .map(|s| s.text.as_str())
            .ok_or(StoreError::SchemaNotFound)
    }

    pub fn subjects(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, StoreError> {
        let ids = self.subject(subject)?;
        Ok((1..=ids.len() as u32).collect())
    }

    pub fn version(&self, subject: &str, sel: VersionSel) -> Result<SubjectVersion, StoreError> {
        let ids = self.subject(subject)?;
        let version = match sel {
            VersionSel::Latest => ids.len() as u32,
            VersionSel::Number(n) => n,
        };
        let id = version
            .checked_sub(1)
            .and_then(|i| ids.get(i as usize))
            .copied()
            .ok_or_else(|| StoreError::VersionNotFound(version.to_string()))?;
        Ok(self.subject_version(subject, version, id))
    }

    /// Registers `text` under `subject`; an already registered schema keeps its id and
    /// version. Returns the schema id.
    pub fn register(&mut self, subject: &str, text: &str) -> Result<u32, StoreError> {
        let (key, avro) = parse(text)?;
        if let Ok(found) = self.lookup_key(subject, &key) {
            return Ok(found.id);
        }
        let problems = self.problems(subject, &avro, None)?;
        if !problems.is_empty() {
            return Err(StoreError::Incompatible(format!(
                "Schema being registered is incompatible with an earlier schema for subject \
                 \"{subject}\", details: [{}]",
                problems.join("; ")
            )));
        }
        let id = match self.ids_by_text.get(&key) {
            Some(id) => *id,
            None => {
                self.schemas.push(Stored {
                    text: text.to_owned(),
                    avro,
                });
                let id = self.schemas.len() as u32;
                self.ids_by_text.insert(key, id);
                id
            }
        };
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .push(id);
        Ok(id)
    }

    /// Finds `text` among the versions of `subject`.
    pub fn lookup(&self, subject: &str, text: &str) -> Result<SubjectVersion, StoreError> {
        let (key, _) = parse(text)?;
        self.lookup_key(subject, &key)
    }

    /// Compatibility problems of `text` against `subject` (empty = compatible): against
    /// one version, or with `None` against what the subject's level requires.
    pub fn check(
        &self,
        subject: &str,
        text: &str,
        against: Option<VersionSel>,
    ) -> Result<Vec<String>, StoreError> {
        let (_, avro) = parse(text)?;
        if let Some(sel) = against {
            self.version(subject, sel)?;
        }
        self.problems(subject, &avro, against)
    }

    fn problems(
        &self,
        subject: &str,
        new: &Schema,
        against: Option<VersionSel>,
    ) -> Result<Vec<String>, StoreError> {
        let level = self.level(Some(subject));
        let ids = match self.subjects.get(subject) {
            Some(ids) => ids.as_slice(),
            None => return Ok(Vec::new()),
        };
        let versions: Vec<u32> = match against {
            Some(sel) => vec![self.version(subject, sel)?.version],
            None if level.transitive() => (1..=ids.len() as u32).collect(),
            None => vec![ids.len() as u32],
        };
        let (backward, forward) = level.directions();
        let mut problems = Vec::new();
        for version in versions {
            let old = &self.schemas[(ids[version as usize - 1] - 1) as usize].avro;
            if backward {
                if let Err(e) = SchemaCompatibility::can_read(old, new) {
                    problems.push(format!("new schema cannot read version {version}: {e}"));
                }
            }
            if forward {
                if let Err(e) = SchemaCompatibility::can_read(new, old) {
                    problems.push(format!("version {version} cannot read the new schema: {e}"));
                }
            }
        }
        Ok(problems)
    }

    fn subject(&self, subject: &str) -> Result<&Vec<u32>, StoreError> {
        self.subjects
            .get(subject)
            .ok_or_else(|| StoreError::SubjectNotFound(subject.to_owned()))
    }

    fn lookup_key(&self, subject: &str, key: &str) -> Result<SubjectVersion, StoreError> {
        let ids = self.subject(subject)?;
        let id = *self
            .ids_by_text
            .get(key)
            .ok_or(StoreError::SchemaNotFound)?;
        let version = ids
            .iter()
            .position(|v| *v == id)
            .ok_or(StoreError::SchemaNotFound)? as u32
            + 1;
        Ok(self.subject_version(subject, version, id))
    }

    fn subject_version(&self, subject: &str, version: u32, id: u32) -> SubjectVersion {
        SubjectVersion {
            subject: subject.to_owned(),
            version,
            id,
            schema: self.schemas[(id - 1) as usize].text.clone(),
        }
    }
}

/// Parses a schema, returning its identity key (the JSON re-serialized without
/// insignificant whitespace) and the apache-avro schema.
fn parse(text: &str) -> Result<(String, Schema), StoreError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StoreError::InvalidSchema(e.to_string()))?;
    let avro = Schema::parse(&json).map_err(|e| StoreError::InvalidSchema(e.to_string()))?;
    Ok((json.to_string(), avro))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
    const V2_OPTIONAL: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},
        {"name":"b","type":["null","string"],"default":null}]}"#;
    const V2_REQUIRED: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},
        {"name":"b","type":"string"}]}"#;

    #[test]
    fn same_schema_same_id_and_versions_grow() {
        let mut s = Store::new(CompatibilityLevel::BackwardTransitive);
        let id1 = s.register("t-value", V1).unwrap();
        assert_eq!(s.register("t-value", &format!(" {V1} ")).unwrap(), id1);
        assert_eq!(s.register("u-value", V1).unwrap(), id1, "ids are global");
        let id2 = s.register("t-value", V2_OPTIONAL).unwrap();
        assert_ne!(id1, id2);
        assert_eq!(s.versions("t-value").unwrap(), vec![1, 2]);
        assert_eq!(s.version("t-value", VersionSel::Latest).unwrap().id, id2);
        assert_eq!(s.lookup("t-value", V1).unwrap().version, 1);
    }

    #[test]
    fn backward_transitive_rejects_a_required_field_without_default() {
        let mut s = Store::new(CompatibilityLevel::BackwardTransitive);
        s.register("t-value", V1).unwrap();
        let err = s.register("t-value", V2_REQUIRED).unwrap_err();
        assert_eq!(err.parts().0, 409);
        assert!(!s.check("t-value", V2_REQUIRED, None).unwrap().is_empty());
        assert!(s.check("t-value", V2_OPTIONAL, None).unwrap().is_empty());
        s.set_level(Some("t-value"), CompatibilityLevel::None);
        assert!(s.register("t-value", V2_REQUIRED).is_ok());
    }

    #[test]
    fn confluent_error_codes() {
        let s = Store::new(CompatibilityLevel::Backward);
        assert_eq!(s.schema_by_id(1).unwrap_err().parts().1, 40403);
        assert_eq!(s.versions("x").unwrap_err().parts().1, 40401);
        assert_eq!(VersionSel::parse("0").unwrap_err().parts().1, 42202);
        let mut s = s;
        assert_eq!(s.register("x", "{").unwrap_err().parts().1, 42201);
    }
}
