//! WebSocket clients of a job's stream, on a fresh connection or on a kept-alive one.

use super::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket of job `id` whose upgrade is its connection's first request (served straight
/// from the socket), or follows another request on the connection (`reused`: axum serves it);
/// with the server's handshake response.
pub async fn websocket_on(
    app: &TestApp,
    id: &str,
    reused: bool,
) -> (
    Socket,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    if reused {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: jobcast\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        while !String::from_utf8_lossy(&response).contains("\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            let read = stream.read(&mut chunk).await.unwrap();
            response.extend_from_slice(&chunk[..read]);
        }
    }
    let url = format!("ws://{}/api/v4/job/{id}/ws", app.addr);
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    tokio_tungstenite::client_async(&url, stream).await.unwrap()
}
