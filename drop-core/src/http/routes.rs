//! The routes of the page server: `robots.txt`, the login stylesheet and
//! `/p/<id>/…`; everything else is the one 404. A protected page checks its
//! session before any path is resolved.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use warp::Filter;
use warp::path::{Peek, Tail};

use super::answer::{Answer, Conditions, FileFacts, read_part};
use super::cache::{CACHED_FILE_MAX, Checked};
use super::login;
use super::receipts::{Once, is_preview_bot};
use super::request::{PageRequest, PeerAddr};
use super::site::Site;
use crate::auth::gate::came_over_https;
use crate::blocking::blocking;
use crate::page::catalog::PageEntry;
use crate::page::id::is_plausible_id;
use crate::page::manifest::Manifest;
use crate::page::safe_path::{
    RequestPath, Resolved, encode_segment, resolve_file_page, resolve_in_folder,
};

/// Every route of the page server. Each request ends in an [`Answer`]: no
/// rejection escapes, so every response gets the headers all answers carry.
pub(super) fn routes(
    site: Arc<Site>,
) -> impl Filter<Extract = (Answer,), Error = Infallible> + Clone {
    let robots = warp::path("robots.txt")
        .and(warp::path::end())
        .map(Answer::robots);
    // auth::form::LOGIN_CSS_PATH
    let login_css = warp::path!("_drop" / "login.css").map(Answer::login_css);
    // probe::PROBE_PREFIX: the daemon checking its own tunnel.
    let prober = site.clone();
    let probe = warp::path!("_drop" / "probe" / String)
        .and(warp::get())
        .map(move |nonce: String| match prober.probes().accepts(&nonce) {
            true => Answer::probe(),
            false => Answer::not_found(),
        });
    // probe::PROBE_HEADER: the check of an app's tunnel reached drop instead.
    let prober = site.clone();
    let app_probe = warp::path::end()
        .and(warp::get())
        .and(warp::header::<String>(super::probe::PROBE_HEADER))
        .map(move |nonce: String| match prober.probes().accepts(&nonce) {
            true => Answer::probe(),
            false => Answer::not_found(),
        });
    let pages = warp::path("p")
        .and(page_path())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::body::stream())
        .then(
            move |page: PagePath, method, headers, peer: Option<PeerAddr>, body| {
                let site = site.clone();
                async move {
                    let Some(rest) = page.rest else {
                        // Whether or not the id exists, so this reveals nothing.
                        return Answer::redirect(&format!("{}/", page.id));
                    };
                    let request = PageRequest {
                        method,
                        id: page.id,
                        rest,
                        headers,
                        peer: peer.map(|p| p.0),
                    };
                    answer_page(&site, &request, Box::pin(body)).await
                }
            },
        );
    let anything_else = warp::any().map(Answer::not_found);
    // Pages first: nearly every request is one, and each route tried
    // before the one that matches costs a little.
    pages
        .or(robots)
        .unify()
        .or(login_css)
        .unify()
        .or(probe)
        .unify()
        .or(app_probe)
        .unify()
        .or(anything_else)
        .unify()
}

/// What follows `/p/`: the page id, and the rest of the path after the
/// slash that ends it (`None` for a bare `/p/<id>`).
struct PagePath {
    id: String,
    rest: Option<String>,
}

/// `<id>` and what follows it. warp's segments read `/p/<id>` and
/// `/p/<id>/` alike, so whether a slash follows the id is looked at ahead.
fn page_path() -> impl Filter<Extract = (PagePath,), Error = warp::Rejection> + Copy {
    warp::path::peek()
        .map(|ahead: Peek| ahead.as_str().contains('/'))
        .and(warp::path::param::<PlausibleId>())
        .and(warp::path::tail())
        .map(|slash: bool, id: PlausibleId, rest: Tail| PagePath {
            id: id.0,
            rest: slash.then(|| rest.as_str().to_owned()),
        })
}

/// A path segment that could be a page id of any drop version; any other
/// falls through to the one 404 without a look at the catalog.
struct PlausibleId(String);

impl FromStr for PlausibleId {
    type Err = ();

    fn from_str(segment: &str) -> Result<Self, ()> {
        match is_plausible_id(segment) {
            true => Ok(PlausibleId(segment.to_owned())),
            false => Err(()),
        }
    }
}

/// `/p/<id>/`, `/p/<id>/<slug>/…` and `/p/<id>/<path>`. On a protected
/// page the session is checked before any path is resolved.
async fn answer_page<S, B>(site: &Arc<Site>, req: &PageRequest, body: S) -> Answer
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let now = site.now();
    let Some(page) = site.catalog().serving(&req.id, now) else {
        return Answer::not_found();
    };
    // A path that does not parse is refused after the password gate, so a
    // protected page answers every path alike.
    let request = RequestPath::parse(&req.rest);
    // Told from the decoded path, as the file is found: `%6c` is an `l`.
    let document = request.as_ref().is_some_and(|r| is_document(&page, r));
    let once = page.once.then(|| {
        let cookie = req.header(header::COOKIE);
        site.receipts().once_for(&page, cookie.as_deref(), now)
    });
    let bot = req
        .header(header::USER_AGENT)
        .is_some_and(|agent| is_preview_bot(&agent));
    // A used one-time page is the 404 of a page that never existed, for
    // every method and before any login form; for a bot too, whatever
    // cookie it sends.
    if once == Some(Once::Gone) || (bot && once == Some(Once::Held)) {
        return Answer::not_found();
    }
    if let Some(refusal) = gatekeep(site, &page, req, body).await {
        return refusal;
    }
    // Anyone can send a bot's User-Agent: of an unused one-time page it
    // gets a card, never a byte of the page.
    if bot && once == Some(Once::Unused) {
        if document && req.method == Method::GET {
            site.receipts().saw(&page.id, req.client_ip(), true, now);
        }
        return Answer::preview_card(&page.title());
    }
    let Some(request) = request else {
        return Answer::not_found();
    };
    let mut conditions = req.conditions();
    if once == Some(Once::Unused) && document {
        // The document goes out whole with its use, or not at all: a range
        // past its first byte would give the rest of it away unused.
        conditions.range = None;
    }
    let mut answer = answer_path(site, &page, &req.method, request, &conditions);
    if page.protected() {
        answer
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !(document && delivers_document(&req.method, &answer)) {
        return answer;
    }
    // A human's first delivered document uses a one-time page up, on disk
    // before the answer goes out.
    if once == Some(Once::Unused) {
        match use_once(site, &page, req, now).await {
            Ok(cookie) => answer.headers.append(header::SET_COOKIE, cookie),
            Err(refusal) => return refusal,
        };
    }
    site.receipts().saw(&page.id, req.client_ip(), bot, now);
    answer
}

/// What a page answers instead of its files, if anything: the login form
/// (or a login's outcome) of a protected page without a session, 405 for
/// a method other than GET and HEAD.
async fn gatekeep<S, B>(
    site: &Arc<Site>,
    page: &PageEntry,
    req: &PageRequest,
    body: S,
) -> Option<Answer>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let readable = req.method == Method::GET || req.method == Method::HEAD;
    if !page.protected() {
        return (!readable).then(Answer::method_not_allowed);
    }
    if req.method == Method::POST {
        return Some(login::attempt(site, page, req, body).await);
    }
    if !readable {
        return Some(Answer::method_not_allowed());
    }
    let gate = site.gate();
    let session = gate.has_session(&page.id, &page.password_hash, &req.login_request());
    (!session).then(|| Answer::login_form(StatusCode::OK, &gate.form_token(&page.id), None))
}

/// Whether `answer` gets the document to the visitor: a whole GET, a
/// revalidation, or a range from its start (a viewer's later ranges are
/// the same view).
fn delivers_document(method: &Method, answer: &Answer) -> bool {
    *method == Method::GET
        && match answer.status.as_u16() {
            200 | 304 => true,
            206 => answer.starts_at_first_byte(),
            _ => false,
        }
}

/// Uses one-time `page` up for the browser of `req`: claimed first (one
/// winner among racing visitors), then written to the registry before the
/// document goes out, so a crash right after cannot give the link a
/// second life. The cookie that lets that browser keep it for its grace,
/// or what to answer instead of the document.
async fn use_once(
    site: &Arc<Site>,
    page: &Arc<PageEntry>,
    req: &PageRequest,
    now: SystemTime,
) -> Result<HeaderValue, Answer> {
    let receipts = site.receipts();
    let visitor = receipts.visitor(&req.client());
    let Some(claim) = receipts.claim_once(page, &visitor, now) else {
        return Err(Answer::not_found());
    };
    let recorded = {
        let (site, page, claim) = (site.clone(), page.clone(), claim.clone());
        blocking(move || {
            let registry = site.catalog().registry();
            site.receipts().record_use(registry, &page, &claim)
        })
        .await
    };
    let refusal = match recorded {
        Ok(true) => {
            let secure = came_over_https(&req.login_request());
            let cookie = receipts.holder_cookie(page, &claim, secure);
            return HeaderValue::from_str(&cookie).map_err(|_| Answer::not_found());
        }
        // Removed or added again meanwhile: not the page this was.
        Ok(false) => Answer::not_found(),
        Err(_) => Answer::use_not_recorded(),
    };
    receipts.release(page, &claim);
    Err(refusal)
}

fn answer_path(
    site: &Site,
    page: &PageEntry,
    method: &Method,
    mut request: RequestPath,
    cond: &Conditions,
) -> Answer {
    let asked_last = request.segments.last().cloned();
    if !page.name.is_empty() && request.segments.first() == Some(&page.name) {
        request.segments.remove(0);
    }
    let manifest = match page.is_dir {
        true => match site.catalog().manifest(&page.root) {
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
        // drop's own files (the registry, the session key, logs): never,
        // whatever was published.
        Resolved::File { path, .. } if site.catalog().is_drops_own(&path) => Answer::not_found(),
        Resolved::File { file, meta, path } if cacheable && meta.len() <= CACHED_FILE_MAX => {
            let Some(bytes) = read_part(&file, 0, meta.len()) else {
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

/// Whether `request` (decoded) asks for the page's document rather than
/// an asset: a file page's file, or a folder's HTML (its index, or an
/// `.html` file).
fn is_document(page: &PageEntry, request: &RequestPath) -> bool {
    let mut segments = request.segments.as_slice();
    if !page.name.is_empty() && segments.first() == Some(&page.name) {
        segments = &segments[1..];
    }
    match (page.is_dir, segments.last()) {
        (false, last) => last.is_none(),
        (true, None) => true,
        (true, Some(_)) if request.trailing_slash => true,
        (true, Some(last)) => {
            let last = last.to_ascii_lowercase();
            last.ends_with(".html") || last.ends_with(".htm")
        }
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
