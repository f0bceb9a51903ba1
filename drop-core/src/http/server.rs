//! The page server's connections: warp routes each request, drop's own
//! accept loop owns the connections (TCP_NODELAY, a header-read timeout, a
//! connection cap and an accept loop that waits out fd exhaustion), which
//! `warp::serve` lacks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::answer::{Answer, AnswerBody};
use super::parse_errors::ParseErrorHeaders;
use super::request::PeerAddr;
use super::routes::routes;
use super::sendfile::{FileBody, FileSocket, Spans};
use super::site::Site;
use super::slots::{Slot, Slots};
use super::stall::StallGuard;
use crate::blocking::blocking;
use crate::page::follow_registry;
use tracing::warn;

/// How long counted views gather before they are written to the registry.
const RECEIPTS_EVERY: Duration = Duration::from_secs(1);
/// Pause after an accept error such as EMFILE, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Connections the kernel queues before drop accepts them. The default of
/// std's `bind` (128) drops SYNs in a burst, and each drop costs the client
/// a one-second retransmit.
const LISTEN_BACKLOG: i32 = 4096;
/// Largest request head a connection buffers (hyper's default is ~400 KiB,
/// which 2,048 connections would turn into 800 MiB).
const MAX_HEADER_BUFFER: usize = 16 * 1024;

/// Limits of the page server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long open connections get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// A connection whose client takes none of our bytes for this long is
    /// closed, so a client that never reads cannot hold a slot for good.
    pub write_stall_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 2048,
            shutdown_grace: Duration::from_secs(3),
            write_stall_timeout: Duration::from_secs(30),
        }
    }
}

/// A large file body waiting to be sent; warp's public body type only
/// holds bytes, so the file travels in the response's extensions until
/// [`finish`] makes it the body.
#[derive(Debug, Clone)]
struct PendingFile(Arc<Mutex<Option<(std::fs::File, u64, u64)>>>);

static X_ROBOTS_TAG: header::HeaderName = header::HeaderName::from_static("x-robots-tag");

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ServerBody = UnsyncBoxBody<Bytes, BoxError>;

/// A non-blocking listener on `addr` with a deep accept queue.
pub fn bind_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Serves `site` on `listener` until `shutdown` completes, then lets open
/// connections finish for up to `config.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    // A client gone mid-response makes `sendfile` (and `writev`) raise
    // SIGPIPE, whose default action, which drop's binary keeps for its
    // command line, would end the whole server; with a handler of tokio's
    // in place those writes fail with EPIPE instead. Handled (not ignored),
    // the signal is back to its default in the apps the daemon launches.
    let _sigpipe = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe());
    let follower = tokio::spawn(follow_registry(site.catalog().clone()));
    let receipts = tokio::spawn(keep_receipts(site.clone()));
    let service = warp::service(routes(site.clone()));
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let slots = Arc::new(Slots::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("accept failed, pausing: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Every slot taken: the connections idle for longest make room, a
        // batch at once, so a visitor does not wait behind sockets that
        // send nothing.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                slots.make_room();
                tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (slot_id, slot) = slots.open();
        let spans = Arc::new(Spans::default());
        let handler = handler(
            service.clone(),
            peer,
            slots.clone(),
            slot.clone(),
            spans.clone(),
        );
        let stream = FileSocket::new(stream, spans);
        let stream = ParseErrorHeaders::new(StallGuard::new(stream, config.write_stall_timeout));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(MAX_HEADER_BUFFER)
            // Body frames reach the socket as they are, never copied into
            // one buffer: file bodies rely on it (see `sendfile`).
            .writev(true)
            .serve_connection(TokioIo::new(stream), handler);
        let connection = graceful.watch(connection);
        let slots = slots.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = slot.evicted() => {}
            }
            slots.close(slot_id);
            drop(permit);
        });
    }
    drop(listener);
    follower.abort();
    let _ = tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await;
    receipts.abort();
    // What the last requests counted.
    write_receipts(&site).await;
}

/// Writes receipts to the registry a few seconds after something was
/// counted (gathering what comes meanwhile); asleep while nothing is.
async fn keep_receipts(site: Arc<Site>) {
    loop {
        site.receipts().counted().await;
        tokio::time::sleep(RECEIPTS_EVERY).await;
        write_receipts(&site).await;
    }
}

async fn write_receipts(site: &Arc<Site>) {
    let site = site.clone();
    let written = blocking(move || site.receipts().flush(site.catalog().registry())).await;
    if let Err(e) = written {
        warn!("could not write who opened which page (kept for the next try): {e}");
    }
}

/// The service of one connection: marks the connection busy while it
/// answers, refuses requests without exactly one `Host`, and hands the rest
/// to warp's routes; file bodies go out by the connection's `spans`.
fn handler<S>(
    service: S,
    peer: SocketAddr,
    slots: Arc<Slots>,
    slot: Arc<Slot>,
    spans: Arc<Spans>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ServerBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ServerBody>, Infallible>> + Send,
> + Clone
where
    S: tower_service::Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        let mut service = service.clone();
        let (slots, slot, spans) = (slots.clone(), slot.clone(), spans.clone());
        async move {
            slots.busy(&slot);
            let response = match host_refusal(&req) {
                Some(refusal) => warp::Reply::into_response(refusal),
                None => tower_service::Service::call(&mut service, req).await?,
            };
            // Idle again once the whole response is out (its body dropped).
            let idle = IdleWhenDone(slots, slot);
            Ok::<_, Infallible>(finish(response, idle, spans))
        }
    })
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with
/// more than one, is answered 400.
fn host_refusal<B>(req: &Request<B>) -> Option<Answer> {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    let missing = hosts == 0 && req.version() == http::Version::HTTP_11;
    (missing || hosts > 1).then(|| {
        let mut answer = Answer::fixed_text(
            http::StatusCode::BAD_REQUEST,
            "Bad request: send exactly one Host header.\n",
        );
        answer
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        answer
    })
}

/// A response body that carries the mark of its connection's slot, so the
/// connection is idle again once the body is done; sizes pass through, so
/// hyper still sends `Content-Length`.
struct UntilDone {
    body: ServerBody,
    _idle: IdleWhenDone,
}

impl http_body::Body for UntilDone {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Marks the connection idle when dropped with the response body.
struct IdleWhenDone(Arc<Slots>, Arc<Slot>);

impl Drop for IdleWhenDone {
    fn drop(&mut self) {
        self.0.idle(&self.1);
    }
}

impl warp::Reply for Answer {
    fn into_response(self) -> warp::reply::Response {
        let mut response = match self.body {
            AnswerBody::Empty => warp::reply::Response::new(Bytes::new().into()),
            AnswerBody::Bytes(bytes) => warp::reply::Response::new(bytes.into()),
            AnswerBody::File { file, start, len } => {
                let mut response = warp::reply::Response::new(Bytes::new().into());
                let pending = PendingFile(Arc::new(Mutex::new(Some((file, start, len)))));
                response.extensions_mut().insert(pending);
                response
            }
        };
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Adds the headers every answer carries and swaps in the body of a large
/// file, sent by the connection that shares `spans`; `idle` goes with the
/// body.
fn finish(
    response: warp::reply::Response,
    idle: IdleWhenDone,
    spans: Arc<Spans>,
) -> Response<ServerBody> {
    let (mut parts, body) = response.into_parts();
    let headers = &mut parts.headers;
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        X_ROBOTS_TAG.clone(),
        HeaderValue::from_static("noindex, nofollow"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let pending = parts
        .extensions
        .remove::<PendingFile>()
        .and_then(|p| p.0.lock().ok()?.take());
    let body = match pending {
        Some((file, start, len)) => FileBody::new(file, start, len, spans)
            .map_err(|never| match never {})
            .boxed_unsync(),
        None => body.map_err(BoxError::from).boxed_unsync(),
    };
    let body = UntilDone { body, _idle: idle }.boxed_unsync();
    Response::from_parts(parts, body)
}
