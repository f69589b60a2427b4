//! The API document: it lists every operation the server answers, it is valid OpenAPI 3.1,
//! real answers match its schemas, and `/docs` shows it without fetching anything from elsewhere.

use crate::helpers::*;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The methods a path can be asked with (HEAD is answered wherever GET is).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn served_document(app: &TestApp) -> Value {
    json_of(app.get("/openapi.json").await, StatusCode::OK).await
}

/// The JSON body of `response`, asserting its status.
async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("the answer is JSON")
}

/// `path` with each `{param}` replaced by its documented example.
fn with_examples(document: &Value, path: &str, operation: &Value) -> String {
    let mut concrete = path.to_owned();
    for param in operation["parameters"].as_array().into_iter().flatten() {
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap();
            let example = param["example"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {name} has no example in {document:.0}"));
            concrete = concrete.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(
        !concrete.contains('{'),
        "{path}: every parameter has an example"
    );
    concrete
}

/// Whether `response` is the router's own 404 or 405 (not a handler's answer).
async fn is_fallback(response: reqwest::Response) -> bool {
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => true,
        // Only a 404's body is read: a stream's never ends.
        StatusCode::NOT_FOUND => {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            body["detail"] == "Not Found"
        }
        _ => false,
    }
}

async fn ask(app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    app.client
        .request(method, app.url(path))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_its_handler_and_no_other_method_is() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let document = served_document(&app).await;
    let library = serde_json::to_value(jobcast::routes::document::document()).unwrap();
    assert_eq!(document, library, "the served document is the library's");

    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{:?}", paths.keys());
    for (path, item) in paths {
        let item = item.as_object().unwrap();
        let any_operation = item.values().next().unwrap();
        let concrete = with_examples(&document, path, any_operation);
        for method in METHODS {
            let documented = item.contains_key(&method.to_lowercase());
            let fallback = is_fallback(ask(&app, method, &concrete).await).await;
            assert_eq!(
                fallback, !documented,
                "{method} {concrete}: documented {documented}, yet answered by the fallback {fallback}"
            );
        }
    }
    assert!(is_fallback(app.get("/api/v4/not-a-route").await).await);
}

/// Every `"$ref"` in `value`, with where it is.
fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("$ref", Value::String(target)) => found.push((at.clone(), target)),
                    _ => refs(field, format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                refs(item, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_reference_in_it_resolves() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let document = served_document(&app).await;

    let spec = oas3::from_json(document.to_string()).expect("an OpenAPI 3.1 document");
    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    let operations: Vec<_> = spec.operations().collect();
    assert_eq!(
        operations.len(),
        document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum::<usize>()
    );
    let schemes = &document["components"]["securitySchemes"];
    for (path, method, operation) in operations {
        let id = format!("{method} {path}");
        assert!(!operation.responses(&spec).is_empty(), "{id} has responses");
        for requirement in &operation.security {
            for scheme in requirement.0.keys() {
                assert!(
                    schemes.get(scheme).is_some(),
                    "{id}: scheme {scheme} exists"
                );
            }
        }
    }

    let mut found = Vec::new();
    refs(&document, String::new(), &mut found);
    assert!(found.len() > 20, "{found:?}");
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {target} is local"));
        assert!(
            document.pointer(pointer).is_some(),
            "{at}: {target} resolves"
        );
    }
}

#[tokio::test]
async fn docs_is_served_from_the_binary_with_nothing_from_another_origin() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let page = app.get("/docs").await;
    assert_eq!(page.url().path(), "/docs/", "redirected to the page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            assets.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    assert!(assets.len() >= 4, "{assets:?}");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    for asset in assets {
        assert!(
            !asset.starts_with("//") && !asset.contains(':'),
            "{asset} is local"
        );
        let file = asset.trim_start_matches("./");
        let response = app.get(&format!("/docs/{file}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{file} loads");
        assert!(
            !response.bytes().await.unwrap().is_empty(),
            "{file} has content"
        );
    }

    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("\"/openapi.json\""), "{initializer}");
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );
    assert!(!initializer.contains("http"), "{initializer}");
}

/// The schema `document` gives for `operation`'s (`"method path"`) `status` answer, checking
/// `value` against it.
fn assert_documented(document: &Value, operation: &str, status: u16, value: &Value) {
    let (method, path) = operation
        .split_once(' ')
        .expect("an operation is `method path`");
    let escaped = path.replace('~', "~0").replace('/', "~1");
    let content = format!("/paths/{escaped}/{method}/responses/{status}/content");
    let media = document
        .pointer(&content)
        .and_then(Value::as_object)
        .and_then(|types| types.values().next())
        .unwrap_or_else(|| panic!("{method} {path} documents a {status} body"));
    assert_matches(
        document,
        &media["schema"],
        value,
        &format!("{method} {path} {status}"),
    );
}

/// Validates `value` against `schema`, a schema of `document` (its `$ref`s resolved there).
fn assert_matches(document: &Value, schema: &Value, value: &Value, what: &str) {
    let mut root = document.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["allOf"] = json!([schema]);
    let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?} in {value}");
}

/// `value` is `operation`'s documented `status` answer, with exactly the fields of schema `name`.
fn assert_answer(document: &Value, operation: &str, status: u16, name: &str, value: &Value) {
    assert_documented(document, operation, status, value);
    assert_exact_fields(document, name, value);
}

/// The schema named `name`, its fields: (every documented field, the required ones).
fn fields_of(document: &Value, name: &str) -> (Vec<String>, Vec<String>) {
    let schema = &document["components"]["schemas"][name];
    let names = |value: &Value| -> Vec<String> {
        match value {
            Value::Object(fields) => fields.keys().cloned().collect(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect(),
            _ => Vec::new(),
        }
    };
    (names(&schema["properties"]), names(&schema["required"]))
}

/// `value`'s fields are the documented ones: every required one, and none undocumented.
fn assert_exact_fields(document: &Value, name: &str, value: &Value) {
    let (documented, required) = fields_of(document, name);
    let sent: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    for field in &sent {
        assert!(
            documented.contains(field),
            "{name}: {field} is sent but not documented"
        );
    }
    for field in &required {
        assert!(
            sent.contains(field),
            "{name}: {field} is required but not sent: {value}"
        );
    }
}

#[tokio::test]
async fn a_served_job_has_exactly_the_fields_its_schema_documents() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let document = served_document(&app).await;
    let id = app.create_external_job().await;

    let pending = app.job(&id).await;
    assert_exact_fields(&document, "Job", &pending);
    let (mut documented, _) = fields_of(&document, "Job");
    documented.retain(|field| field != "superseded"); // sent only after a merge of diverged states
    let sent: Vec<_> = pending.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        sent, documented,
        "every documented field is sent (both lists sorted by name)"
    );
    assert_documented(&document, "get /api/v4/job/{job_id}", 200, &pending);

    let started = app.report(&id, "progress", &json!({"progress": 50})).await;
    assert_eq!(started.status(), StatusCode::OK);
    let result = json!({"result": {"answer": [1, 2]}});
    let completed = json_of(app.report(&id, "complete", &result).await, StatusCode::OK).await;
    let complete = "post /api/v4/job/{job_id}/complete";
    assert_answer(&document, complete, 200, "Job", &completed);
    let finished = app.job(&id).await;
    assert_documented(&document, "get /api/v4/job/{job_id}", 200, &finished);

    // A creation answer carries the job's control token; a cancelled job is a Job too.
    let created = app.post("/api/v4/jobs", &json!({"kind": "external"})).await;
    let created = json_of(created, StatusCode::CREATED).await;
    assert_answer(&document, "post /api/v4/jobs", 201, "CreatedJob", &created);
    let cancel_path = format!("/api/v4/job/{}/cancel", created["job_id"].as_str().unwrap());
    let cancelled = json_of(app.post_raw(&cancel_path, "").await, StatusCode::OK).await;
    let cancel = "post /api/v4/job/{job_id}/cancel";
    assert_answer(&document, cancel, 200, "Job", &cancelled);

    let missing = app
        .get("/api/v4/job/3f2c8a4e-9b1d-4c7a-8e6f-2a5b7c9d0e1f")
        .await;
    let missing = json_of(missing, StatusCode::NOT_FOUND).await;
    assert_answer(
        &document,
        "get /api/v4/job/{job_id}",
        404,
        "Detail",
        &missing,
    );
}

#[tokio::test]
async fn listings_batches_streams_and_operations_answers_match_their_schemas() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let document = served_document(&app).await;
    let id = app.create_external_job().await;

    let page: Value = app.get("/api/v4/jobs").await.json().await.unwrap();
    assert_answer(&document, "get /api/v4/jobs", 200, "JobPage", &page);
    let listed = &page["jobs"][0];
    assert!(listed.get("result").is_none(), "{listed}");
    let schema = json!({"$ref": "#/components/schemas/JobSummary"});
    assert_matches(&document, &schema, listed, "a listed job");
    assert_exact_fields(&document, "JobSummary", listed);

    let batch = json!([{"job_id": id, "progress": 10}, {"job_id": id, "progress": 5}]);
    let results: Value = app
        .post("/api/v4/jobs/progress", &batch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (results[0]["status"].as_u64(), results[1]["status"].as_u64()),
        (Some(200), Some(409))
    );
    assert_documented(&document, "post /api/v4/jobs/progress", 200, &results);

    let (mut socket, _) = websocket_on(&app, &id, false).await;
    let message = socket.next().await.unwrap().unwrap().into_text().unwrap();
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["event"], "snapshot");
    let socket_path = "get /api/v4/job/{job_id}/ws";
    assert_answer(&document, socket_path, 101, "StreamMessage", &message);

    let mut events = SseStream::connect(&app.url(&format!("/api/v4/job/{id}/events")), None).await;
    let snapshot = events.next_event().await.unwrap();
    assert_eq!(snapshot.kind(), "snapshot");
    let schema = json!({"$ref": "#/components/schemas/Job"});
    assert_matches(&document, &schema, &snapshot.json(), "an SSE event's data");

    for path in ["/health", "/ready"] {
        let answer: Value = app.get(path).await.json().await.unwrap();
        assert_documented(&document, &format!("get {path}"), 200, &answer);
    }
    let cleanup_path = "/api/v4/admin/cleanup-jobs";
    let cleanup: Value = ask(&app, "DELETE", cleanup_path)
        .await
        .json()
        .await
        .unwrap();
    let cleanup_operation = format!("delete {cleanup_path}");
    assert_answer(
        &document,
        &cleanup_operation,
        200,
        "CleanupAnswer",
        &cleanup,
    );
}

#[tokio::test]
async fn the_stats_answer_has_exactly_the_fields_its_schema_documents() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let document = served_document(&app).await;
    let id = app.start_research("Diet cola", json!(["aspartame"])).await;
    app.wait_until_finished(&id).await;

    let stats: Value = app.get("/api/v4/stats").await.json().await.unwrap();
    assert_answer(&document, "get /api/v4/stats", 200, "StatsReport", &stats);
    assert_exact_fields(&document, "Distribution", &stats["duration_ms"]);
    assert_exact_fields(&document, "HourCounts", &stats["per_hour"][0]);
    assert_eq!(stats["top_findings"][0]["ingredient"], "aspartame");
    let bad = app.get("/api/v4/stats?window=1w").await;
    let bad = json_of(bad, StatusCode::BAD_REQUEST).await;
    assert_documented(&document, "get /api/v4/stats", 400, &bad);
}
