//! Whether `drop start` tunnels: `--tunnel` / `--no-tunnel`, a choice made
//! with them earlier, or NAT detection (drop-nat), asked only here, never
//! by `add`, `list` or `status`, which must stay fast offline.

use std::net::IpAddr;

use drop_nat::{NatConfig, Reachability};
use drop_registry::{ServerState, TunnelChoice, TunnelReason};

use crate::error::CliError;

/// What `start` decided.
#[derive(Debug)]
pub struct Decision {
    /// Tunnel the server and its apps.
    pub tunnel: bool,
    /// What the user asked for.
    pub choice: TunnelChoice,
    /// Why, for `status`.
    pub reason: TunnelReason,
    /// A line to print before the server starts.
    pub note: Option<String>,
    /// The machine's public address, when detection found one.
    pub public_ip: Option<IpAddr>,
}

/// Decides from the flag, else by detection: a plain `drop start` asks
/// again each time (a laptop moves between networks; a VPS never tunnels).
/// The decision is recorded in `server.json`, so a restarted daemon and
/// apps started later follow it until the next `drop start`.
pub fn decide(flag: Option<bool>, config: &NatConfig) -> Result<Decision, CliError> {
    match flag {
        Some(true) => Ok(forced(true)),
        Some(false) => Ok(forced(false)),
        None => detect(config),
    }
}

fn forced(on: bool) -> Decision {
    Decision {
        tunnel: on,
        choice: if on {
            TunnelChoice::On
        } else {
            TunnelChoice::Off
        },
        reason: if on {
            TunnelReason::Forced
        } else {
            TunnelReason::Declined
        },
        note: on.then(|| "Starting tunnel...".to_owned()),
        public_ip: None,
    }
}

/// Asks the IP-echo services (within their deadline) and judges.
fn detect(config: &NatConfig) -> Result<Decision, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("start the async runtime"))?;
    let verdict = runtime.block_on(drop_nat::detect(config));
    Ok(judge(&verdict))
}

fn judge(verdict: &Reachability) -> Decision {
    match verdict {
        Reachability::BehindNat { .. } => Decision {
            tunnel: true,
            choice: TunnelChoice::Auto,
            reason: TunnelReason::BehindNat,
            note: Some("Detected NAT, starting tunnel...".into()),
            public_ip: None,
        },
        Reachability::Public { ip } => Decision {
            tunnel: false,
            choice: TunnelChoice::Auto,
            reason: TunnelReason::PublicIp,
            note: None,
            public_ip: Some(*ip),
        },
        Reachability::Unknown { reason } => Decision {
            tunnel: false,
            choice: TunnelChoice::Auto,
            reason: TunnelReason::AddressUnknown,
            note: Some(format!(
                "External address unknown ({reason}): not tunneling. 'drop start --tunnel' forces a tunnel."
            )),
            public_ip: None,
        },
    }
}

/// The line `start <app>` prints before the app's tunnel opens.
pub fn tunnel_note(state: &ServerState) -> &'static str {
    if state.tunnel_reason == Some(TunnelReason::BehindNat) {
        "Detected NAT, starting tunnel..."
    } else {
        "Starting tunnel..."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_force_the_decision() {
        let on = decide(Some(true), &NatConfig::default()).unwrap();
        assert!(on.tunnel && on.choice == TunnelChoice::On);
        assert_eq!(on.note.as_deref(), Some("Starting tunnel..."));
        let off = decide(Some(false), &NatConfig::default()).unwrap();
        assert!(!off.tunnel && off.choice == TunnelChoice::Off && off.note.is_none());
    }

    #[test]
    fn verdicts_map_to_the_documented_lines() {
        let nat = judge(&Reachability::BehindNat {
            external: "203.0.113.7".parse().unwrap(),
            local: None,
        });
        assert!(nat.tunnel);
        assert_eq!(
            nat.note.as_deref(),
            Some("Detected NAT, starting tunnel...")
        );
        let public = judge(&Reachability::Public {
            ip: "94.131.101.149".parse().unwrap(),
        });
        assert!(!public.tunnel && public.note.is_none());
        assert_eq!(public.public_ip, Some("94.131.101.149".parse().unwrap()));
        let unknown = judge(&Reachability::Unknown {
            reason: "offline".into(),
        });
        assert!(!unknown.tunnel);
        assert!(
            unknown
                .note
                .unwrap()
                .starts_with("External address unknown (offline)")
        );
    }
}
