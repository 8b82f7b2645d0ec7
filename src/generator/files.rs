//! Writing the generated stream and its ground truth to files. The stream goes to one
//! JSONL file per topic, `DIR/<topic>.jsonl`, each line an envelope
//! `{"seq":..,"topic_seq":..,"key":"..","timestamp":..,"value":<the message value>}` where
//! the value is embedded as JSON when it is a JSON document and as `"value_b64":"..."`
//! (standard base64) otherwise (undecodable records, Avro). The truth file holds one
//! `TruthEntry` per line.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine;

use super::record::{GenRecord, Payload, TopicKind, TopicNames, TruthEntry};

/// The JSONL file of `topic` under `dir`.
pub fn topic_file(dir: &Path, topic: &str) -> PathBuf {
    dir.join(format!("{topic}.jsonl"))
}

/// One JSONL file per topic.
pub struct FileSink {
    writers: Vec<(PathBuf, BufWriter<File>)>,
    values_are_json: bool,
}

impl FileSink {
    /// Creates `dir` and the three topic files in it. `values_are_json` says whether
    /// encoded typed records are JSON documents (raw records are checked one by one).
    pub fn create(
        dir: &Path,
        topics: &TopicNames,
        values_are_json: bool,
    ) -> anyhow::Result<FileSink> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let writers = TopicKind::ALL
            .iter()
            .map(|&k| {
                let path = topic_file(dir, topics.name(k));
                let f =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Ok((path, BufWriter::with_capacity(1 << 20, f)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(FileSink {
            writers,
            values_are_json,
        })
    }

    /// Appends `record`, whose message value is `value`.
    pub fn write(&mut self, record: &GenRecord, value: &[u8]) -> anyhow::Result<()> {
        let json = match record.payload {
            Payload::Raw(_) => serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok(),
            _ => self.values_are_json,
        };
        let (path, w) = &mut self.writers[record.topic.index()];
        let mut line = Vec::with_capacity(value.len() + 128);
        write!(
            line,
            "{{\"seq\":{},\"topic_seq\":{},\"key\":",
            record.seq, record.topic_seq
        )?;
        serde_json::to_writer(&mut line, &record.key)?;
        write!(line, ",\"timestamp\":{},", record.event_time)?;
        if json {
            line.extend_from_slice(b"\"value\":");
            line.extend_from_slice(value);
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(value);
            write!(line, "\"value_b64\":\"{b64}\"")?;
        }
        line.extend_from_slice(b"}\n");
        w.write_all(&line)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn finish(&mut self) -> anyhow::Result<()> {
        for (path, w) in &mut self.writers {
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// The ground-truth JSONL file.
pub struct TruthWriter {
    path: PathBuf,
    w: BufWriter<File>,
}

impl TruthWriter {
    pub fn create(path: &Path) -> anyhow::Result<TruthWriter> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TruthWriter {
            path: path.to_path_buf(),
            w: BufWriter::new(f),
        })
    }

    pub fn write(&mut self, entry: &TruthEntry) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.w, entry)?;
        self.w
            .write_all(b"\n")
            .with_context(|| format!("writing {}", self.path.display()))
    }

    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.w
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}
