//! Named tunnels: a tunnel of the user's own Cloudflare account, reached
//! at hostnames of the user's own domain, whose URLs stay the same across
//! restarts (a quick tunnel's change at every start).
//!
//! Once the user ran `cloudflared tunnel login` (it opens a browser once
//! to pick the domain, and writes `cert.pem`), [`NamedTunnels`] creates the
//! tunnel and routes hostnames to it, and [`NamedCloudflared`] runs it with
//! ingress rules of its own: the main hostname to the local address it is
//! given, each [`NamedRoute`] to its service, a 404 for anything else. Its
//! failures are typed in [`TunnelError`](crate::TunnelError), each saying
//! what to do.

mod certificate;
mod ingress;
mod manage;
mod output;
mod run;
mod tunnel;

pub use certificate::CertificateSearch;
pub use ingress::NamedRoute;
pub use manage::{DnsRoute, NamedTunnels};
pub use run::NamedCloudflared;
pub use tunnel::NamedTunnel;
