//! The page server: warp routes the request, drop's own accept loop owns the
//! connections (TCP_NODELAY, a header-read timeout, a connection cap and an
//! accept loop that waits out fd exhaustion), which `warp::serve` lacks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::Filter;
use warp::path::FullPath;

use crate::Manifest;
use crate::cache::{CACHED_FILE_MAX, Checked};
use crate::login::{self, LoginContext};
use crate::respond::{Answer, AnswerBody, Conditions, FileFacts};
use crate::safe_path::{
    RequestPath, Resolved, encode_segment, resolve_file_page, resolve_in_folder,
};
use crate::site::{PageEntry, Site};
use crate::stall::StallGuard;

/// Chunk size when streaming large files.
const STREAM_CHUNK: usize = 64 * 1024;
/// Pause after an accept error such as EMFILE, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Connections the kernel queues before drop accepts them. The default of
/// std's `bind` (128) drops SYNs in a burst, and each drop costs the client
/// a one-second retransmit.
const LISTEN_BACKLOG: i32 = 4096;
/// Largest request head a connection buffers (hyper's default is ~400 KiB,
/// which 2,048 connections would turn into 800 MiB).
const MAX_HEADER_BUFFER: usize = 16 * 1024;
/// How often the registry is checked for changes made by other writers.
const REGISTRY_POLL: Duration = Duration::from_millis(500);

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

/// The peer of a connection, put in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A large file body waiting to be streamed; warp's public body type only
/// holds bytes, so the file travels in the response's extensions.
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
    let poller = tokio::spawn(poll_registry(site.clone()));
    let service = warp::service(routes(site));
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("drop: accept failed, pausing: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let handler = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            let mut service = service.clone();
            async move {
                let response = tower_service::Service::call(&mut service, req).await?;
                Ok::<_, Infallible>(finish(response))
            }
        });
        let stream = StallGuard::new(stream, config.write_stall_timeout);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(MAX_HEADER_BUFFER)
            .serve_connection(TokioIo::new(stream), handler);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    poller.abort();
    let _ = tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await;
}

/// Picks up registry changes that nobody announced (an edit by hand, another
/// drop version). drop's own commands ask the daemon to refresh at once.
async fn poll_registry(site: Arc<Site>) {
    let mut ticks = tokio::time::interval(REGISTRY_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let site = site.clone();
        let _ = tokio::task::spawn_blocking(move || site.refresh()).await;
    }
}

/// Every route of the page server. Each request ends in an [`Answer`]: no
/// rejection escapes, so every response passes through [`finish`].
fn routes(site: Arc<Site>) -> impl Filter<Extract = (Answer,), Error = Infallible> + Clone {
    let robots = warp::path("robots.txt")
        .and(warp::path::end())
        .map(Answer::robots);
    let login_css = warp::path!("_drop" / "login.css").map(Answer::login_css);
    let pages = warp::path("p")
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::body::stream())
        .then(
            move |method, path: FullPath, headers, peer: Option<PeerAddr>, body| {
                let site = site.clone();
                async move {
                    let request = PageRequest {
                        method,
                        path: path.as_str().to_owned(),
                        headers,
                        peer: peer.map(|p| p.0),
                    };
                    answer_page(&site, &request, Box::pin(body)).await
                }
            },
        );
    let anything_else = warp::any().map(Answer::not_found);
    robots
        .or(login_css)
        .unify()
        .or(pages)
        .unify()
        .or(anything_else)
        .unify()
}

/// What the page handler looks at.
struct PageRequest {
    method: Method,
    path: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

impl PageRequest {
    fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_owned)
    }

    fn conditions(&self) -> Conditions {
        Conditions {
            if_none_match: self.header(header::IF_NONE_MATCH),
            if_modified_since: self.header(header::IF_MODIFIED_SINCE),
            range: self.header(header::RANGE),
            if_range: self.header(header::IF_RANGE),
        }
    }

    fn login_context(&self) -> LoginContext {
        LoginContext {
            path: self.path.clone(),
            cookie: self.header(header::COOKIE),
            origin: self.header(header::ORIGIN),
            fetch_site: self.header(header::HeaderName::from_static("sec-fetch-site")),
            host: self.header(header::HOST),
            forwarded_proto: self.header(header::HeaderName::from_static("x-forwarded-proto")),
            cf_connecting_ip: self.header(header::HeaderName::from_static("cf-connecting-ip")),
            content_length: self
                .header(header::CONTENT_LENGTH)
                .and_then(|v| v.parse().ok()),
            peer: self.peer,
        }
    }
}

/// `/p/<id>`, `/p/<id>/`, `/p/<id>/<slug>/…` and `/p/<id>/<path>`. On a
/// protected page the session is checked before any path is resolved.
async fn answer_page<S, B>(site: &Arc<Site>, req: &PageRequest, body: S) -> Answer
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let Some(rest) = req.path.strip_prefix("/p/") else {
        return Answer::not_found();
    };
    let (id, tail) = match rest.split_once('/') {
        Some((id, tail)) => (id, tail),
        // Redirect whether or not the id exists, so this reveals nothing.
        None if crate::id::is_plausible_id(rest) => return Answer::redirect(&format!("{rest}/")),
        None => return Answer::not_found(),
    };
    let Some(page) = site.page(id).filter(|p| !p.is_app) else {
        return Answer::not_found();
    };
    let readable = req.method == Method::GET || req.method == Method::HEAD;
    if page.protected() {
        let ctx = req.login_context();
        if req.method == Method::POST {
            return login::attempt(site, &page, &ctx, body).await;
        }
        if !readable {
            return Answer::method_not_allowed();
        }
        if !site.gate().has_session(&page, &ctx) {
            return site.gate().form(&page, StatusCode::OK, None);
        }
    } else if !readable {
        return Answer::method_not_allowed();
    }
    let mut answer = answer_path(site, &page, &req.method, tail, &req.conditions());
    if page.protected() {
        answer
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    answer
}

fn answer_path(
    site: &Site,
    page: &PageEntry,
    method: &Method,
    tail: &str,
    cond: &Conditions,
) -> Answer {
    let Some(mut request) = RequestPath::parse(tail) else {
        return Answer::not_found();
    };
    let asked_last = request.segments.last().cloned();
    if !page.name.is_empty() && request.segments.first() == Some(&page.name) {
        request.segments.remove(0);
    }
    let manifest = match page.is_dir {
        true => match site.manifest(&page.root) {
            Some(manifest) => Some(manifest),
            None => return Answer::not_found(),
        },
        false => None,
    };
    let cacheable = is_cacheable(&request, manifest.as_deref());
    if cacheable
        && let Some(hit) = site
            .files()
            .get(&page.root, &request.segments, manifest.as_ref())
    {
        return Answer::cached(method, &hit.facts, &hit.bytes, cond);
    }
    match resolve(page, manifest.as_deref(), &request) {
        Resolved::File { file, meta, path } if cacheable && meta.len() <= CACHED_FILE_MAX => {
            let Some(bytes) = read_whole(&file, meta.len()) else {
                return Answer::changed_while_read();
            };
            let facts = FileFacts::of(&meta, &path);
            let answer = Answer::cached(method, &facts, &bytes, cond);
            let checked = Checked {
                real: &path,
                meta: &meta,
                manifest,
                facts,
                bytes,
            };
            site.files().put(&page.root, &request.segments, checked);
            answer
        }
        Resolved::File { file, meta, path } => Answer::file(method, file, &meta, &path, cond),
        Resolved::AddSlash => match asked_last {
            Some(last) => Answer::redirect(&format!("{}/", encode_segment(&last))),
            None => Answer::not_found(),
        },
        Resolved::Forbidden => Answer::forbidden(),
        Resolved::NotFound => Answer::not_found(),
    }
}

/// Whether a request can be answered from the cache: a file page's file,
/// or a file of a folder that the manifest allows by name. Folders go the
/// long way.
fn is_cacheable(request: &RequestPath, manifest: Option<&Manifest>) -> bool {
    match manifest {
        None => request.segments.is_empty(),
        Some(manifest) => {
            !request.trailing_slash
                && !request.segments.is_empty()
                && manifest.allows(&request.joined())
        }
    }
}

fn resolve(page: &PageEntry, manifest: Option<&Manifest>, request: &RequestPath) -> Resolved {
    match manifest {
        Some(manifest) => resolve_in_folder(&page.root, manifest, request),
        None if request.segments.is_empty() => resolve_file_page(&page.root),
        None => Resolved::NotFound,
    }
}

/// The whole of a small file, or `None` when it reads shorter than it claimed.
fn read_whole(file: &std::fs::File, len: u64) -> Option<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(Bytes::from(buf))
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

/// Adds the headers every answer carries and swaps in a streamed body for
/// large files.
fn finish(response: warp::reply::Response) -> Response<ServerBody> {
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
        Some((file, start, len)) => file_stream(file, start, len),
        None => body.map_err(BoxError::from).boxed_unsync(),
    };
    Response::from_parts(parts, body)
}

fn file_stream(file: std::fs::File, start: u64, len: u64) -> ServerBody {
    let state = (None::<tokio::fs::File>, Some(file), start, len);
    let chunks = stream::unfold(state, |(open, std_file, start, left)| async move {
        if left == 0 {
            return None;
        }
        let mut file = match open {
            Some(file) => file,
            None => {
                let mut file = tokio::fs::File::from_std(std_file?);
                tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(start))
                    .await
                    .ok()?;
                file
            }
        };
        let want = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(STREAM_CHUNK);
        let mut buf = BytesMut::zeroed(want);
        match file.read(&mut buf).await {
            // A file cut short ends the body early; the client sees the length mismatch.
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                let frame = Ok::<_, BoxError>(Frame::data(buf.freeze()));
                Some((frame, (Some(file), None, start, left - n as u64)))
            }
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}
