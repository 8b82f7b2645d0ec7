//! The embedded Confluent-compatible registry speaks the REST subset and error shapes
//! Confluent clients rely on, and `register_all` registers every topic's schema under its
//! TopicNameStrategy subject, idempotently, refusing incompatible changes by subject.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{json, Value};
use shopstream::codec::admin::{register_all, register_builtin, register_defaults};
use shopstream::codec::embedded_registry::EmbeddedRegistry;
use shopstream::codec::subjects::{topic_schemas, KPI_FAMILIES};
use shopstream::codec::RegistryError;

const CT: &str = "application/vnd.schemaregistry.v1+json";
const V1: &str =
    r#"{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"],"default":null}]}"#;
const V2_BAD: &str = r#"{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}"#;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/avro")
}

async fn call(method: &str, url: String, body: Option<Value>) -> (StatusCode, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req.header("content-type", CT).body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], CT);
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn rest_subset_and_confluent_error_shapes() {
    let r = EmbeddedRegistry::start().await.unwrap();
    let u = |p: &str| format!("{}{p}", r.url());

    assert_eq!(
        call("GET", u("/subjects"), None).await,
        (StatusCode::OK, json!([]))
    );
    assert_eq!(
        call("GET", u("/schemas/ids/1?deleted=true"), None).await,
        (
            StatusCode::NOT_FOUND,
            json!({"error_code": 40403, "message": "Schema not found"})
        )
    );
    let (s, b) = call("GET", u("/subjects/t-value/versions/latest"), None).await;
    assert_eq!(
        (s, b["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40401))
    );
    // Compatibility against a subject that does not exist yet: registering would work.
    let (_, b) = call(
        "POST",
        u("/compatibility/subjects/t-value/versions"),
        Some(json!({"schema": V1})),
    )
    .await;
    assert_eq!(b["is_compatible"], json!(true));

    let (s, b) = call(
        "POST",
        u("/subjects/t-value/versions"),
        Some(json!({"schema": V1, "schemaType": "AVRO"})),
    )
    .await;
    assert_eq!((s, b.clone()), (StatusCode::OK, json!({"id": 1})));
    // Same schema again (different whitespace): same id, no new version.
    let again = serde_json::to_string_pretty(&serde_json::from_str::<Value>(V1).unwrap()).unwrap();
    assert_eq!(
        call(
            "POST",
            u("/subjects/t-value/versions"),
            Some(json!({"schema": again}))
        )
        .await
        .1,
        b
    );
    assert_eq!(
        call("GET", u("/subjects/t-value/versions"), None).await.1,
        json!([1])
    );

    let (s, b) = call(
        "POST",
        u("/subjects/t-value/versions"),
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(
        (s, b["error_code"].clone()),
        (StatusCode::CONFLICT, json!(409))
    );
    assert!(b["message"].as_str().unwrap().contains("t-value"), "{b}");
    for path in [
        "/compatibility/subjects/t-value/versions/latest",
        "/compatibility/subjects/t-value/versions/1",
        "/compatibility/subjects/t-value/versions",
    ] {
        assert_eq!(
            call("POST", u(path), Some(json!({"schema": V2_BAD})))
                .await
                .1["is_compatible"],
            json!(false),
            "{path}"
        );
        assert_eq!(
            call("POST", u(path), Some(json!({"schema": V2}))).await.1["is_compatible"],
            json!(true),
            "{path}"
        );
    }

    assert_eq!(
        call(
            "POST",
            u("/subjects/t-value/versions"),
            Some(json!({"schema": V2}))
        )
        .await
        .1,
        json!({"id": 2})
    );
    let (_, latest) = call("GET", u("/subjects/t-value/versions/latest"), None).await;
    assert_eq!(
        (
            latest["subject"].clone(),
            latest["version"].clone(),
            latest["id"].clone()
        ),
        (json!("t-value"), json!(2), json!(2))
    );
    assert_eq!(
        call("GET", u("/subjects/t-value/versions/1"), None).await.1["id"],
        json!(1)
    );
    assert_eq!(
        call("GET", u("/subjects/t-value/versions/3"), None).await.1["error_code"],
        json!(40402)
    );
    assert_eq!(
        call("GET", u("/subjects/t-value/versions/zero"), None)
            .await
            .1["error_code"],
        json!(42202)
    );
    assert_eq!(
        call("GET", u("/schemas/ids/2"), None).await.1,
        json!({"schema": V2})
    );

    // Lookup without registering.
    let (s, b) = call("POST", u("/subjects/t-value"), Some(json!({"schema": V1}))).await;
    assert_eq!(
        (s, b["id"].clone(), b["version"].clone()),
        (StatusCode::OK, json!(1), json!(1))
    );
    let (s, b) = call(
        "POST",
        u("/subjects/t-value"),
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(
        (s, b["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40403))
    );

    // Invalid schema, unknown route, per-subject compatibility config.
    let (s, b) = call(
        "POST",
        u("/subjects/x-value/versions"),
        Some(json!({"schema": "{\"type\":\"recrd\"}"})),
    )
    .await;
    assert_eq!(
        (s, b["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42201))
    );
    assert_eq!(call("GET", u("/nope"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call("GET", u("/config"), None).await.1,
        json!({"compatibilityLevel": "BACKWARD_TRANSITIVE"})
    );
    call(
        "PUT",
        u("/config/t-value"),
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(
        call(
            "POST",
            u("/subjects/t-value/versions"),
            Some(json!({"schema": V2_BAD}))
        )
        .await
        .1,
        json!({"id": 3})
    );
    assert_eq!(
        call("GET", u("/subjects"), None).await.1,
        json!(["t-value"])
    );
}

#[tokio::test]
async fn subjects_with_slashes_are_escaped_and_found() {
    let r = EmbeddedRegistry::start().await.unwrap();
    let client =
        shopstream::codec::RegistryClient::new(r.url(), std::time::Duration::from_secs(2)).unwrap();
    let id = client.register("team/a-value", V1).await.unwrap();
    assert_eq!(client.lookup("team/a-value", V1).await.unwrap().id, id);
    assert_eq!(
        client.subjects().await.unwrap(),
        vec!["team/a-value".to_string()]
    );
}

#[tokio::test]
async fn register_all_registers_every_topic_idempotently() {
    let r = EmbeddedRegistry::start().await.unwrap();
    let first = register_defaults(r.url(), &schema_dir())
        .await
        .expect("registered");
    assert_eq!(first.len(), topic_schemas().len());
    let subjects: Vec<&str> = first.iter().map(|x| x.subject.as_str()).collect();
    for expected in [
        "shop.transactions-value",
        "shop.events-value",
        "shop.products-value",
        "shop.orders.enriched-value",
        "shop.fraud.alerts-value",
        "shop.dlq-value",
        "shop.late-value",
        "shop.kpi.revenue-value",
        "shop.kpi.funnel-value",
    ] {
        assert!(
            subjects.contains(&expected),
            "{expected} missing from {subjects:?}"
        );
    }
    assert!(first.iter().all(|x| x.version == Some(1)));
    // All KPI families share one schema, hence one id.
    let kpi_ids: Vec<u32> = first
        .iter()
        .filter(|x| x.subject.starts_with("shop.kpi."))
        .map(|x| x.id)
        .collect();
    assert_eq!(kpi_ids.len(), KPI_FAMILIES.len());
    assert!(kpi_ids.iter().all(|id| *id == kpi_ids[0]));

    let second = register_defaults(r.url(), &schema_dir()).await.unwrap();
    assert_eq!(first, second, "registering again changes nothing");
    // The compiled-in schemas are the files.
    assert_eq!(register_builtin(r.url()).await.unwrap(), first);
}

#[tokio::test]
async fn register_all_refuses_an_incompatible_change_and_names_the_subject() {
    let r = EmbeddedRegistry::start().await.unwrap();
    register_defaults(r.url(), &schema_dir()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let tx: Value = serde_json::from_str(
        &std::fs::read_to_string(schema_dir().join("transaction.avsc")).unwrap(),
    )
    .unwrap();
    let with = |field: Value| {
        let mut s = tx.clone();
        s["fields"].as_array_mut().unwrap().push(field);
        s.to_string()
    };
    std::fs::write(
        dir.path().join("bad.avsc"),
        with(json!({"name": "tenant", "type": "string"})),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.avsc"),
        with(json!({"name": "tenant", "type": ["null", "string"], "default": null})),
    )
    .unwrap();
    std::fs::copy(
        schema_dir().join("product.avsc"),
        dir.path().join("product_v1.avsc"),
    )
    .unwrap();
    let mut product: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_dir().join("product.avsc")).unwrap())
            .unwrap();
    product["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "color", "type": ["null", "string"], "default": null}));
    std::fs::write(dir.path().join("product_v2.avsc"), product.to_string()).unwrap();

    // One incompatible schema fails the whole run, before anything is registered.
    let err = register_all(
        r.url(),
        dir.path(),
        &[
            ("shop.products", "product_v2.avsc"),
            ("shop.transactions", "bad.avsc"),
        ],
    )
    .await
    .unwrap_err();
    match &err {
        RegistryError::Incompatible { subject, detail } => {
            assert_eq!(subject, "shop.transactions-value");
            assert!(
                detail.contains("bad.avsc") && detail.contains("tenant"),
                "{detail}"
            );
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    assert!(err.to_string().contains("shop.transactions-value"), "{err}");
    let client =
        shopstream::codec::RegistryClient::new(r.url(), std::time::Duration::from_secs(2)).unwrap();
    let (latest, _) = client.latest("shop.products-value").await.unwrap().unwrap();
    assert_eq!(latest.version, Some(1), "nothing was registered");

    let ok = register_all(
        r.url(),
        dir.path(),
        &[
            ("shop.products", "product_v2.avsc"),
            ("shop.transactions", "good.avsc"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        ok.iter().map(|x| x.version).collect::<Vec<_>>(),
        vec![Some(2), Some(2)]
    );

    // A missing or invalid file is named.
    std::fs::write(dir.path().join("broken.avsc"), "{\"type\": \"record\"").unwrap();
    let err = register_all(r.url(), dir.path(), &[("x", "broken.avsc")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::InvalidSchema { source_name, .. } if source_name.ends_with("broken.avsc")),
        "{err}"
    );
}

#[tokio::test]
async fn register_all_reports_an_unreachable_registry_as_retriable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = register_defaults(&format!("http://127.0.0.1:{port}"), &schema_dir())
        .await
        .unwrap_err();
    assert!(err.is_retriable(), "{err}");
}
