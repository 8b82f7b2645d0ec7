//! An in-process, Confluent-compatible schema registry (axum) for `shopstream demo` and
//! tests. It serves the REST subset Confluent clients and schema_registry_converter use —
//! schemas by id, subjects and versions, register, lookup, compatibility checks and
//! compatibility config — with Confluent's content type and error JSON
//! (`{"error_code":40403,"message":"Schema not found"}`). State is in memory and lost on
//! shutdown. [`EmbeddedRegistry::set_available`] simulates an outage (every request answers
//! 503), so callers can test that they pause rather than dead-letter.

mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use store::Store;
pub use store::{CompatibilityLevel, StoreError, SubjectVersion, VersionSel};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

struct Shared {
    store: Mutex<Store>,
    available: AtomicBool,
    requests: AtomicUsize,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running embedded registry. Stops when dropped.
pub struct EmbeddedRegistry {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl EmbeddedRegistry {
    /// Starts on 127.0.0.1 on a free port with BACKWARD_TRANSITIVE compatibility.
    pub async fn start() -> std::io::Result<EmbeddedRegistry> {
        Self::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            CompatibilityLevel::BackwardTransitive,
        )
        .await
    }

    /// Starts on `addr` (port 0 = any free port) with the given global level. Must be
    /// called inside a tokio runtime; the server runs as a task on it.
    pub async fn start_on(
        addr: SocketAddr,
        level: CompatibilityLevel,
    ) -> std::io::Result<EmbeddedRegistry> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(level)),
            available: AtomicBool::new(true),
            requests: AtomicUsize::new(0),
        });
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(EmbeddedRegistry {
            url,
            shared,
            shutdown: Some(tx),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// While unavailable, every request is answered with 503 (error_code 50003).
    pub fn set_available(&self, available: bool) {
        self.shared.available.store(available, Ordering::SeqCst);
    }

    /// Number of requests served so far (to test client-side caching).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Registers a schema directly (without HTTP), e.g. to seed a demo.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, StoreError> {
        self.shared.store().register(subject, schema)
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .fallback(|| async {
            reply(
                StatusCode::NOT_FOUND,
                json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
            )
        })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if !shared.available.load(Ordering::SeqCst) {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error_code": 50003, "message": "Error while forwarding the request to the leader"}),
        );
    }
    next.run(request).await
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn answer(result: Result<Value, StoreError>) -> Response {
    match result {
        Ok(body) => reply(StatusCode::OK, body),
        Err(e) => {
            let (status, code, message) = e.parts();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            reply(status, json!({"error_code": code, "message": message}))
        }
    }
}

/// Request body of register, lookup and compatibility calls.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

fn schema_body(body: &[u8]) -> Result<String, StoreError> {
    let body: SchemaBody = serde_json::from_slice(body)
        .map_err(|e| StoreError::BadRequest(format!("Invalid request body: {e}")))?;
    match body.schema_type.as_deref() {
        None | Some("AVRO") => {}
        Some(other) => {
            return Err(StoreError::InvalidSchema(format!(
                "schema type {other} is not supported by the embedded registry"
            )))
        }
    }
    if !body.references.is_empty() {
        return Err(StoreError::InvalidSchema(
            "schema references are not supported by the embedded registry".into(),
        ));
    }
    Ok(body.schema)
}

fn to_json(v: SubjectVersion) -> Value {
    json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema})
}

async fn schema_by_id(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let result = id
        .parse::<u32>()
        .map_err(|_| StoreError::SchemaNotFound)
        .and_then(|id| s.store().schema_by_id(id).map(|t| json!({"schema": t})));
    answer(result)
}

async fn subjects(State(s): State<Arc<Shared>>) -> Response {
    answer(Ok(json!(s.store().subjects())))
}

async fn versions(State(s): State<Arc<Shared>>, Path(subject): Path<String>) -> Response {
    answer(s.store().versions(&subject).map(|v| json!(v)))
}

async fn version(
    State(s): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    let result = VersionSel::parse(&version).and_then(|sel| s.store().version(&subject, sel));
    answer(result.map(to_json))
}

async fn register(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Response {
    let result = schema_body(&body).and_then(|schema| s.store().register(&subject, &schema));
    answer(result.map(|id| json!({"id": id})))
}

async fn lookup(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Response {
    let result = schema_body(&body).and_then(|schema| s.store().lookup(&subject, &schema));
    answer(result.map(to_json))
}

fn compatibility(s: &Shared, subject: &str, version: Option<&str>, body: &[u8]) -> Response {
    let result = (|| {
        let schema = schema_body(body)?;
        let against = version.map(VersionSel::parse).transpose()?;
        let store = s.store();
        if against.is_none() && store.versions(subject).is_err() {
            // Nothing registered yet: registering would succeed.
            return Ok(json!({"is_compatible": true}));
        }
        let problems = store.check(subject, &schema, against)?;
        Ok(json!({"is_compatible": problems.is_empty(), "messages": problems}))
    })();
    answer(result)
}

async fn check_all(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Response {
    compatibility(&s, &subject, None, &body)
}

async fn check_version(
    State(s): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    compatibility(&s, &subject, Some(&version), &body)
}

async fn global_config(State(s): State<Arc<Shared>>) -> Response {
    answer(Ok(json!({"compatibilityLevel": s.store().level(None)})))
}

async fn subject_config(State(s): State<Arc<Shared>>, Path(subject): Path<String>) -> Response {
    answer(Ok(
        json!({"compatibilityLevel": s.store().level(Some(&subject))}),
    ))
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: CompatibilityLevel,
}

fn set_config(s: &Shared, subject: Option<&str>, body: &[u8]) -> Response {
    match serde_json::from_slice::<ConfigBody>(body) {
        Ok(c) => {
            s.store().set_level(subject, c.compatibility);
            answer(Ok(json!({"compatibility": c.compatibility})))
        }
        Err(e) => answer(Err(StoreError::BadRequest(format!(
            "Invalid compatibility level: {e}"
        )))),
    }
}

async fn set_global_config(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    set_config(&s, None, &body)
}

async fn set_subject_config(
    State(s): State<Arc<Shared>>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Response {
    set_config(&s, Some(&subject), &body)
}
