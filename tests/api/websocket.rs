//! WebSocket: the same frames as SSE, a normal close after the end, clear codes for bad peers.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn connect(app: &TestApp, id: &str, query: &str) -> Socket {
    let url = format!("ws://{}/api/v4/job/{id}/ws{query}", app.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

/// The next message: a JSON frame, or the close code.
async fn next(socket: &mut Socket) -> Result<Value, Option<CloseCode>> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

#[tokio::test]
async fn a_client_gets_the_snapshot_then_changes_then_a_normal_close() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut socket = connect(&app, &id, "").await;

    let snapshot = next(&mut socket).await.unwrap();
    app.report(
        &id,
        "progress",
        &json!({"progress": 40, "current_step": "Working"}),
    )
    .await;
    let progress = next(&mut socket).await.unwrap();
    app.report(&id, "complete", &json!({"result": {"n": 1}}))
        .await;
    let completed = next(&mut socket).await.unwrap();

    assert_eq!(
        (snapshot["event"].as_str(), snapshot["seq"].as_u64()),
        (Some("snapshot"), Some(1))
    );
    assert_eq!(snapshot["job"]["job_id"], id.as_str());
    assert_eq!(
        (
            progress["event"].as_str(),
            progress["job"]["progress"].as_u64()
        ),
        (Some("progress"), Some(40))
    );
    assert_eq!(
        (completed["event"].as_str(), completed["seq"].as_u64()),
        (Some("completed"), Some(3))
    );
    assert_eq!(next(&mut socket).await, Err(Some(CloseCode::Normal)));
}

#[tokio::test]
async fn last_seq_resumes_without_a_snapshot() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    app.report(&id, "progress", &json!({"progress": 10})).await;

    let mut socket = connect(&app, &id, "?last_seq=2").await;
    app.report(&id, "progress", &json!({"progress": 20})).await;

    let frame = next(&mut socket).await.unwrap();
    assert_eq!(
        (frame["event"].as_str(), frame["seq"].as_u64()),
        (Some("progress"), Some(3))
    );
}

#[tokio::test]
async fn an_unknown_job_is_404_before_the_upgrade() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let url = format!("ws://{}/api/v4/job/{}/ws", app.addr, uuid::Uuid::new_v4());

    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();

    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 404),
        other => panic!("expected an HTTP 404, got {other}"),
    }
}

#[tokio::test]
async fn frames_a_client_should_not_send_get_a_close_code_and_other_clients_are_unaffected() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    for reused in [false, true] {
        let open = || connect_on(&app, &id, reused);
        let (mut texter, mut binary) = (open().await, open().await);
        let (mut oversized, mut healthy) = (open().await, open().await);
        for socket in [&mut texter, &mut binary, &mut oversized, &mut healthy] {
            assert_eq!(next(socket).await.unwrap()["event"], "snapshot");
        }

        texter
            .send(Message::Text("{not json".into()))
            .await
            .unwrap();
        binary
            .send(Message::Binary(vec![0xde, 0xad].into()))
            .await
            .unwrap();
        let policy = next(&mut texter).await;
        assert_eq!(policy, Err(Some(CloseCode::Policy)), "reused: {reused}");
        let unsupported = next(&mut binary).await;
        assert_eq!(
            unsupported,
            Err(Some(CloseCode::Unsupported)),
            "reused: {reused}"
        );
        let too_big = "x".repeat(jobcast::routes::ws::WS_MAX_MESSAGE_BYTES + 1);
        oversized.send(Message::Text(too_big.into())).await.unwrap();
        let size = next(&mut oversized).await;
        assert_eq!(size, Err(Some(CloseCode::Size)), "reused: {reused}");

        let progress = if reused { 71 } else { 70 };
        app.report(&id, "progress", &json!({"progress": progress}))
            .await;
        assert_eq!(
            next(&mut healthy).await.unwrap()["job"]["progress"],
            progress
        );
    }
}

#[tokio::test]
async fn frames_that_break_the_protocol_get_a_1002_close_on_both_paths() {
    use tokio::io::AsyncWriteExt;
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mask = [0u8; 4];
    let broken: [(&str, Vec<u8>); 4] = [
        ("reserved bits set", [&[0xC1, 0x80][..], &mask].concat()),
        ("an unmasked frame", vec![0x81, 0x00]),
        ("an unknown opcode", [&[0x83, 0x80][..], &mask].concat()),
        ("a fragmented ping", [&[0x09, 0x80][..], &mask].concat()),
    ];
    for reused in [false, true] {
        for (what, frame) in &broken {
            let mut socket = connect_on(&app, &id, reused).await;
            assert_eq!(next(&mut socket).await.unwrap()["event"], "snapshot");
            let tokio_tungstenite::MaybeTlsStream::Plain(stream) = socket.get_mut() else {
                unreachable!("a plain TCP stream");
            };
            stream.write_all(frame).await.unwrap();

            let closed = next(&mut socket).await;
            assert_eq!(
                closed,
                Err(Some(CloseCode::Protocol)),
                "{what}, reused: {reused}"
            );
        }
    }
}

/// A socket whose upgrade is its connection's first request (served straight from the socket),
/// or that follows another request on the connection (`reused`: axum serves it, and hyper adds
/// a Date header to the handshake, which tells the two apart).
async fn connect_on(app: &TestApp, id: &str, reused: bool) -> Socket {
    let (socket, handshake) = websocket_on(app, id, reused).await;
    assert_eq!(handshake.headers().contains_key("date"), reused);
    socket
}

#[tokio::test]
async fn a_pinging_client_gets_its_pong() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut socket = connect(&app, &id, "").await;
    next(&mut socket).await.unwrap();

    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();

    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.unwrap() {
            Some(Ok(Message::Pong(payload))) => break assert_eq!(&payload[..], b"are you there"),
            Some(Ok(_)) => continue,
            other => panic!("no pong: {other:?}"),
        }
    }
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_going_away() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut socket = connect(&app, &id, "").await;
    next(&mut socket).await.unwrap();

    let stopping = tokio::spawn(app.stop());

    assert_eq!(next(&mut socket).await, Err(Some(CloseCode::Away)));
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.ws_ping_secs = 1;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let mut socket = connect(&app, &id, "").await;
    next(&mut socket).await.unwrap();

    // Not reading means not answering: the client library answers pings only as it reads.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

    assert_eq!(next(&mut socket).await, Err(Some(CloseCode::Away)));
}

#[tokio::test]
async fn a_socket_is_the_same_on_a_new_connection_and_after_another_request_on_it() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    let final_seq = app.wait_until_finished(&id).await["seq"].as_u64().unwrap();
    for reused in [false, true] {
        let mut socket = connect_on(&app, &id, reused).await;
        let snapshot = next(&mut socket).await.unwrap();
        assert_eq!(snapshot["event"], "snapshot", "reused: {reused}");
        assert_eq!(snapshot["seq"], final_seq);
        assert_eq!(next(&mut socket).await, Err(Some(CloseCode::Normal)));
    }
}
