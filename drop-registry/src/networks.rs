//! `networks.json`: what drop learned about the networks this machine was
//! on, by a key its caller chooses (the address it goes out from). So far:
//! where QUIC to the tunnel edge is blocked, tunnels there use HTTP/2.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::read_json;
use crate::{Home, RegistryError, TunnelProtocol, write_atomic};

/// What is known of one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkNote {
    /// The protocol tunnels use there, once QUIC was found blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_protocol: Option<TunnelProtocol>,
    /// When it was noted, RFC 3339.
    #[serde(default)]
    pub noted_at: String,
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Every network noted, by key.
pub type NetworkNotes = BTreeMap<String, NetworkNote>;

impl Home {
    /// What is known of the networks this machine was on.
    pub fn load_network_notes(&self) -> Result<NetworkNotes, RegistryError> {
        Ok(read_json(&self.root().join("networks.json"))?.unwrap_or_default())
    }

    /// Notes that tunnels on `network` use `protocol` (written only when
    /// that is news).
    pub fn note_network_protocol(
        &self,
        network: &str,
        protocol: TunnelProtocol,
    ) -> Result<(), RegistryError> {
        let mut notes = self.load_network_notes()?;
        let note = notes.entry(network.to_owned()).or_default();
        if note.tunnel_protocol.as_ref() == Some(&protocol) {
            return Ok(());
        }
        note.tunnel_protocol = Some(protocol);
        note.noted_at = crate::now_rfc3339();
        let json = serde_json::to_vec_pretty(&notes).expect("notes always serialise");
        write_atomic(&self.root().join("networks.json"), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_protocol_is_noted_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        assert!(home.load_network_notes().unwrap().is_empty());
        home.note_network_protocol("192.168.1.50", TunnelProtocol::Http2)
            .unwrap();
        let first = home.load_network_notes().unwrap();
        assert_eq!(
            first["192.168.1.50"].tunnel_protocol,
            Some(TunnelProtocol::Http2)
        );
        home.note_network_protocol("192.168.1.50", TunnelProtocol::Http2)
            .unwrap();
        assert_eq!(home.load_network_notes().unwrap(), first, "nothing new");
    }
}
