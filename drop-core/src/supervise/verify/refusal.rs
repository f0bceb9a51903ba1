//! Dev servers that refuse a `Host` they do not know. Vite answers 403
//! "Blocked request. This host … is not allowed", webpack-dev-server and
//! Angular's "Invalid Host header", Django 400 with `DisallowedHost`,
//! Rails 403 "Blocked hosts". Through a tunnel such an answer is all the
//! human gets, so a check that meets one calls the link broken and says
//! which setting of the framework lets the hostname in.

/// What an app answered to `/`: its status and the start of its body.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// A dev server known by the refusal it gives an unknown `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevServer {
    /// Vite (`server.allowedHosts`).
    Vite,
    /// webpack-dev-server, and Angular's and Vue CLI's built on it
    /// (`devServer.allowedHosts`).
    Webpack,
    /// Django's `runserver` (`ALLOWED_HOSTS`).
    Django,
    /// Rails (`config.hosts`).
    Rails,
}

impl DevServer {
    /// The dev server whose host check `answer` is, if its words tell.
    pub(super) fn of(answer: &Answer) -> Option<Self> {
        let body = String::from_utf8_lossy(&answer.body);
        let says = |words: &str| body.contains(words);
        match answer.status {
            403 if says("Blocked request") && says("allowedHosts") => Some(DevServer::Vite),
            400 | 403 if says("Invalid Host header") => Some(DevServer::Webpack),
            400 if says("DisallowedHost") || says("Invalid HTTP_HOST header") => {
                Some(DevServer::Django)
            }
            403 if says("Blocked host") => Some(DevServer::Rails),
            _ => None,
        }
    }

    /// How its refusal reads, in short.
    pub fn refusal(self) -> &'static str {
        match self {
            DevServer::Vite => "Vite: \"Blocked request. This host is not allowed\"",
            DevServer::Webpack => "webpack-dev-server: \"Invalid Host header\"",
            DevServer::Django => "Django: DisallowedHost",
            DevServer::Rails => "Rails: \"Blocked hosts\"",
        }
    }
}

/// What lets the hostname in. An app sent the public hostname
/// (`keep_host`) is mended by drop's default, `Host: localhost:PORT`; one
/// that refuses even that checks the forwarded host too, and needs the
/// framework's setting.
pub(super) fn fix(dev_server: Option<DevServer>, keep_host: bool) -> String {
    let setting = match dev_server {
        Some(DevServer::Vite) => "add `server: { allowedHosts: true }` to vite.config",
        Some(DevServer::Webpack) => {
            "set `devServer.allowedHosts: 'all'` (Angular: `allowedHosts` in angular.json)"
        }
        Some(DevServer::Django) => {
            "add '.trycloudflare.com' (or your domain) to ALLOWED_HOSTS in settings.py"
        }
        Some(DevServer::Rails) => {
            "add `config.hosts << \".trycloudflare.com\"` (or your domain) to config/environments/development.rb"
        }
        None => "let the app accept the tunnel's hostname (it may check X-Forwarded-Host)",
    };
    match keep_host {
        true => format!(
            "the app is sent the public hostname (--keep-host) and refuses it: add the app again with --no-keep-host --restart (it is then sent Host: localhost), or {setting}"
        ),
        false => format!("{setting}, then 'drop stop <app>' and 'drop start <app>'"),
    }
}

/// What mends a redirect to this machine: the public hostname for an app
/// that builds its redirects from `Host`, else the app's own settings.
pub(super) fn redirect_fix(keep_host: bool) -> String {
    match keep_host {
        false => "the app builds its redirects from the Host it is sent (localhost): add the app again with --keep-host --restart, so it is sent the public hostname, or make its redirects relative".into(),
        true => "the app redirects to this machine whatever Host it is sent: set its public URL in its settings, or make its redirects relative".into(),
    }
}

/// Whether `location` (a redirect) leads to this machine: localhost, a
/// loopback or unspecified address, or the app's own port; a relative one
/// stays on the tunnel's hostname.
pub(super) fn leads_here(location: &str, app_port: u16) -> bool {
    let Ok(url) = reqwest::Url::parse(location) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let address = host.trim_start_matches('[').trim_end_matches(']');
    let local = match address.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => name == "localhost" || name.ends_with(".localhost"),
    };
    local || url.port() == Some(app_port)
}

/// Whether the answer `through` the tunnel is a refusal the app does not
/// give on its own port (`local`): a 4xx or 5xx there, and anything else,
/// or nothing, here. An app that answers `/` with 404 everywhere (an API)
/// refuses nobody.
pub(super) fn is_refusal(through: &Answer, local: Option<&Answer>) -> bool {
    through.status >= 400 && local.is_none_or(|local| local.status < 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A redirect that leaves the tunnel's hostname for this machine; a
    /// relative one, or to another site, stays right.
    #[test]
    fn redirects_to_this_machine_are_told() {
        for here in [
            "http://localhost:7003/login",
            "http://127.0.0.1:7003/",
            "http://[::1]/x",
            "http://0.0.0.0:8000/",
            "http://app.localhost/",
            "https://a-b.trycloudflare.com:7003/",
        ] {
            assert!(leads_here(here, 7003), "{here}");
        }
        for away in [
            "/login",
            "https://a-b.trycloudflare.com/login",
            "https://example.com/",
        ] {
            assert!(!leads_here(away, 7003), "{away}");
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    /// The words each dev server refuses an unknown host with, as they
    /// print them.
    #[test]
    fn dev_servers_are_told_by_their_refusals() {
        let vite = answer(
            403,
            "Blocked request. This host (\"a-b.trycloudflare.com\") is not allowed.\nTo allow this host, add \"a-b.trycloudflare.com\" to `server.allowedHosts` in vite.config.js.",
        );
        assert_eq!(DevServer::of(&vite), Some(DevServer::Vite));
        assert_eq!(
            DevServer::of(&answer(403, "Invalid Host header")),
            Some(DevServer::Webpack)
        );
        let django = answer(
            400,
            "<title>DisallowedHost at /</title> Invalid HTTP_HOST header: 'a-b.trycloudflare.com'.",
        );
        assert_eq!(DevServer::of(&django), Some(DevServer::Django));
        let rails = answer(403, "<h1>Blocked hosts: a-b.trycloudflare.com</h1>");
        assert_eq!(DevServer::of(&rails), Some(DevServer::Rails));
        assert_eq!(DevServer::of(&answer(403, "Forbidden")), None);
        assert_eq!(
            DevServer::of(&answer(200, "Invalid Host header")),
            None,
            "a page that merely says it"
        );
    }

    /// A refusal is what the human gets and the app does not give at home.
    #[test]
    fn only_an_answer_the_app_does_not_give_locally_is_a_refusal() {
        let ok = answer(200, "<html>");
        let forbidden = answer(403, "Blocked request");
        assert!(is_refusal(&forbidden, Some(&ok)));
        assert!(is_refusal(&forbidden, None));
        assert!(!is_refusal(&ok, Some(&ok)));
        assert!(!is_refusal(&answer(404, "{}"), Some(&answer(404, "{}"))));
        assert!(fix(Some(DevServer::Vite), false).contains("allowedHosts"));
        assert!(fix(Some(DevServer::Django), false).contains("ALLOWED_HOSTS"));
        assert!(fix(Some(DevServer::Vite), true).contains("--no-keep-host --restart"));
        assert!(!fix(None, false).contains("keep-host"), "no flag to drop");
    }
}
