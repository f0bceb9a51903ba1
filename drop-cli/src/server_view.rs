//! How the server is shown to scripts: its state, its tunnel's and the
//! URLs they give, as `status --json` and `start --json` print them.

use drop_core::supervise::LegacyServer;
use drop_registry::{Home, ServerState, TunnelState};
use serde_json::json;

use crate::error::CliError;
use crate::running::{ServerCondition, running_server};
use crate::urls::{Urls, legacy_state};

/// The server as `status --json` (and `start --json`) shows it, from
/// what was `seen` of it.
pub fn server_document(home: &Home, seen: &ServerSeen) -> Result<serde_json::Value, CliError> {
    let mut server = server_json(
        seen.state.as_ref(),
        seen.tunnel.as_ref(),
        seen.running,
        &seen.urls,
    );
    let legacy = (!seen.running).then(|| LegacyServer::find(home)).flatten();
    server["legacy_server"] = json!(legacy.map(|old| json!({
        "pid": old.id.pid,
        "port": old.port,
    })));
    if server["tunnel"].is_object() {
        let named = home.load_named_tunnel()?.is_some();
        server["tunnel"]["kind"] = json!(if named { "named" } else { "quick" });
    }
    Ok(server)
}

/// The server's state, its tunnel's and the URLs they give, as recorded.
pub struct ServerSeen {
    pub state: Option<ServerState>,
    pub tunnel: Option<TunnelState>,
    pub running: bool,
    pub urls: Urls,
}

impl ServerSeen {
    pub fn load(home: &Home) -> Result<Self, CliError> {
        let state = home
            .load_server_state()?
            .or_else(|| home.legacy_files().any().then(|| legacy_state(home)));
        let running = running_server(state.as_ref()).is_some();
        let tunnel = home.load_tunnel_state()?.filter(|_| running);
        let urls = Urls::new(state.as_ref(), tunnel.as_ref());
        Ok(ServerSeen {
            state,
            tunnel,
            running,
            urls,
        })
    }
}

fn server_json(
    state: Option<&ServerState>,
    tunnel: Option<&TunnelState>,
    running: bool,
    urls: &Urls,
) -> serde_json::Value {
    let tunnel_json = state.filter(|s| s.tunnel && running).map(|s| {
        json!({
            "reason": s.tunnel_reason,
            "url": tunnel.and_then(TunnelState::current_url),
            "protocol": tunnel.and_then(|t| t.protocol.clone()),
            "pid": tunnel.and_then(|t| t.pid),
            "state": tunnel.map_or("not_open", |t| t.state.as_str()),
            "error": tunnel.and_then(|t| t.error.clone()),
            "verified_at": tunnel.and_then(|t| t.verified_at.clone()),
        })
    });
    json!({
        "running": running,
        "status": ServerCondition::of(state).word(),
        "url": urls.base(),
        "reach": urls.reach().as_str(),
        "local_url": urls.local_base(),
        "tunneled": urls.tunneled(),
        "pid": if running { state.and_then(|s| s.pid) } else { None },
        "port": state.map(|s| s.port),
        "host": urls.host(),
        "tunnel": tunnel_json,
        "tunnel_reason": state.and_then(|s| s.tunnel_reason.clone()),
    })
}
