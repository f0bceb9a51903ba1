//! What every command runs with, built once in `main`: the drop home, the
//! settings read from the environment, and where output goes.

use std::path::PathBuf;
use std::time::Duration;

use drop_registry::Home;
use drop_tunnel::CloudflaredConfig;

use crate::output::Output;
use crate::settings::Settings;

/// How long a tunnel process gets between SIGTERM and SIGKILL when the
/// daemon closes it.
const TUNNEL_STOP_GRACE: Duration = Duration::from_secs(3);

/// One command's world: passed down to everything that needs the home, a
/// setting or the output, so nothing reads the environment twice.
#[derive(Debug, Clone)]
pub struct Context {
    /// The drop home (`--home`, `DROP_HOME`, else `~/.drop`).
    pub home: Home,
    /// Every `DROP_*` setting, read once.
    pub settings: Settings,
    /// Text, `--json`, or kept for an in-process caller.
    pub out: Output,
}

impl Context {
    /// The same world with output going to `out`: how `drop mcp` runs a
    /// command with its words kept rather than printed.
    pub fn with_output(&self, out: Output) -> Context {
        Context {
            out,
            ..self.clone()
        }
    }

    /// cloudflared as drop runs it: found on `PATH` or in the home's `bin/`
    /// (where install.sh puts it), its config and logs in the home's `logs/`.
    pub fn cloudflared(&self) -> CloudflaredConfig {
        let mut config = CloudflaredConfig::new(self.home.logs_dir());
        config.stop_grace = TUNNEL_STOP_GRACE;
        config.fallback_paths = vec![self.home.root().join("bin").join("cloudflared")];
        config.not_found_hint = Some("Run ./install.sh".into());
        config
    }

    /// The folder of the `--config` file every tunnel process of this home
    /// carries, quick or named: how leftovers of a killed daemon are found.
    pub fn tunnel_config_dir(&self) -> PathBuf {
        self.cloudflared().state_dir
    }
}
