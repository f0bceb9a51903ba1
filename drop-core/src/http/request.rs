//! What the page server reads of a request.

use std::net::{IpAddr, SocketAddr};

use http::Method;
use http::header::{self, HeaderMap};

use super::answer::Conditions;
use crate::auth::gate::LoginRequest;

/// The peer of a connection, put in each request's extensions.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerAddr(pub(super) SocketAddr);

/// What the page handler looks at, as warp's filters routed it.
pub(super) struct PageRequest {
    pub(super) method: Method,
    /// The page id: the segment after `/p/`.
    pub(super) id: String,
    /// The rest of the path after `/p/<id>/`, as sent (not yet decoded).
    pub(super) rest: String,
    pub(super) headers: HeaderMap,
    pub(super) peer: Option<SocketAddr>,
}

impl PageRequest {
    pub(super) fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_owned)
    }

    /// The path asked for, as sent.
    pub(super) fn path(&self) -> String {
        format!("/p/{}/{}", self.id, self.rest)
    }

    pub(super) fn conditions(&self) -> Conditions {
        Conditions::of(&self.headers)
    }

    /// Who is asking, as the login limiter and receipts see it: the
    /// tunnel's `CF-Connecting-IP` when the peer is this machine, else the
    /// peer.
    pub(super) fn client(&self) -> String {
        match self.client_ip() {
            Some(ip) => ip.to_string(),
            None => "unknown".to_owned(),
        }
    }

    /// [`PageRequest::client`] without text: for what runs on every view.
    pub(super) fn client_ip(&self) -> Option<IpAddr> {
        let cf = self
            .headers
            .get("cf-connecting-ip")
            .and_then(|v| v.to_str().ok());
        Some(crate::auth::limiter::client_of(self.peer?, cf))
    }

    /// What the gate of a protected page looks at.
    pub(super) fn login_request(&self) -> LoginRequest {
        LoginRequest {
            cookie: self.header(header::COOKIE),
            origin: self.header(header::ORIGIN),
            fetch_site: self.header(header::HeaderName::from_static("sec-fetch-site")),
            host: self.header(header::HOST),
            forwarded_proto: self.header(header::HeaderName::from_static("x-forwarded-proto")),
            cf_connecting_ip: self.header(header::HeaderName::from_static("cf-connecting-ip")),
            peer: self.peer,
        }
    }
}
