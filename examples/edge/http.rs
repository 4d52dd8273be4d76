//! The `wasi:http/incoming-handler` export (WASI 0.2, the `wasi` crate's proxy world): one
//! call per request, on a fresh instance in `wasmtime serve`. It reads the method and the
//! path, runs the same handler as the native command, and writes the status and the JSON.

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// The most bytes one `blocking-write-and-flush` may carry (`wasi:io/streams`).
const WRITE_CHUNK: usize = 4096;

struct Edge;

impl wasi::exports::http::incoming_handler::Guest for Edge {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = match request.method() {
            Method::Get => "GET".to_owned(),
            Method::Head => "HEAD".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Put => "PUT".to_owned(),
            Method::Delete => "DELETE".to_owned(),
            Method::Connect => "CONNECT".to_owned(),
            Method::Options => "OPTIONS".to_owned(),
            Method::Trace => "TRACE".to_owned(),
            Method::Patch => "PATCH".to_owned(),
            Method::Other(other) => other,
        };
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let answer = crate::handle(&method, &target);
        send(response_out, answer.status, answer.body.as_bytes());
    }
}

/// Writes the response; a host that refuses a step has already lost the client, so there is
/// no one left to tell, and the handler returns instead of trapping.
fn send(response_out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    // Valid name and value: the host cannot refuse them.
    let _ = headers.append("content-type", b"application/json");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    let Ok(stream) = outgoing.write() else {
        return;
    };
    for chunk in body.chunks(WRITE_CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

wasi::http::proxy::export!(Edge);
