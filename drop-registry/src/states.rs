//! The named states the state files hold: a page's kind, a tunnel's phase,
//! the user's tunnel choice and why tunnels are on or off. Each is an enum
//! written as the same string as before; a value this version does not
//! know (written by another drop version) is kept as it is in `Other`, so
//! reading never fails and writing gives back what was read.

use std::fmt;

/// Defines a string-backed enum: known names map to variants, any other
/// string to `Other`, and back again unchanged.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value written by another version of drop, kept as it is.
            Other(String),
        }

        impl $name {
            /// The name written in the state files.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $( $text => $name::$variant, )+
                    _ => $name::Other(text),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Other(text) => text,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What a record publishes: `type` in `pages.json`. Anything but an app
    /// is served as a static page.
    #[derive(Default)]
    pub enum PageKind {
        /// A file or a folder, served by the page server.
        #[default]
        Static => "static",
        /// A web app that drop runs on its own port.
        App => "app",
    }
}

string_enum! {
    /// Where a tunnel is in its life: `state` in `tunnel.json`,
    /// `tunnel_state` in an app's record.
    pub enum TunnelPhase {
        /// Opening; no outcome yet.
        Starting => "starting",
        /// Open, and being checked from outside (public DNS, then a
        /// request through the edge) before its URL is handed out.
        Verifying => "verifying",
        /// Up: its URL was seen to work from outside.
        Up => "up",
        /// Up, but its URL was not seen to work from outside within the
        /// bound (or stopped working): handed out with that note while the
        /// checks go on.
        Unconfirmed => "unconfirmed",
        /// Its process runs but lost its edge connection, and is
        /// reconnecting by itself: the URL stays and works again soon.
        Reconnecting => "reconnecting",
        /// Down or not opened; being retried.
        Down => "down",
        /// Refused by the quick-tunnel service for asking too often; being
        /// retried after a longer pause.
        RateLimited => "rate_limited",
        /// Given up: retrying cannot help (cloudflared is missing…).
        Failed => "failed",
    }
}

string_enum! {
    /// How a tunnel reaches Cloudflare's edge.
    pub enum TunnelProtocol {
        /// QUIC over UDP port 7844, cloudflared's choice.
        Quic => "quic",
        /// HTTP/2 over TCP, where UDP is blocked.
        Http2 => "http2",
    }
}

string_enum! {
    /// What the user asked for at the last `drop start`.
    pub enum TunnelChoice {
        /// Tunnel behind NAT only (a plain `drop start`).
        Auto => "auto",
        /// `--tunnel`.
        On => "on",
        /// `--no-tunnel`.
        Off => "off",
    }
}

string_enum! {
    /// Why tunnels are on or off, as `status` says it.
    pub enum TunnelReason {
        /// Detection found the machine behind NAT.
        BehindNat => "behind NAT",
        /// Detection found a public IP of this machine.
        PublicIp => "public IP",
        /// Detection could not tell (offline, services unreachable).
        AddressUnknown => "external address unknown",
        /// The user gave `--tunnel`.
        Forced => "--tunnel",
        /// The user gave `--no-tunnel`.
        Declined => "--no-tunnel",
    }
}

impl TunnelPhase {
    /// Its name for people: `rate limited` rather than `rate_limited`.
    pub fn words(&self) -> String {
        self.as_str().replace('_', " ")
    }

    /// Whether a tunnel in this phase has a URL to hand out: up, up but
    /// unconfirmed (with a note), or reconnecting to the edge with the
    /// same URL. A URL still being verified is not handed out.
    pub fn holds_url(&self) -> bool {
        matches!(
            self,
            TunnelPhase::Up | TunnelPhase::Unconfirmed | TunnelPhase::Reconnecting
        )
    }

    /// Whether a start still waits for this tunnel's first outcome.
    pub fn undecided(&self) -> bool {
        matches!(self, TunnelPhase::Starting | TunnelPhase::Verifying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_read_as_variants_and_write_back_unchanged() {
        let phase: TunnelPhase = serde_json::from_str("\"rate_limited\"").unwrap();
        assert_eq!(phase, TunnelPhase::RateLimited);
        assert_eq!(serde_json::to_string(&phase).unwrap(), "\"rate_limited\"");
        assert_eq!(phase.words(), "rate limited");
        let reason: TunnelReason = serde_json::from_str("\"behind NAT\"").unwrap();
        assert_eq!(reason, TunnelReason::BehindNat);
    }

    #[test]
    fn names_of_other_versions_are_kept_as_they_are() {
        let phase: TunnelPhase = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(phase, TunnelPhase::Other("paused".into()));
        assert_eq!(serde_json::to_string(&phase).unwrap(), "\"paused\"");
        let kind: PageKind = serde_json::from_str("\"proxy\"").unwrap();
        assert_eq!(kind.as_str(), "proxy");
    }
}
