//! Apps as routes of the user's named tunnel: each app gets a hostname of
//! its own under the tunnel's zone, chosen once, routed in DNS and kept in
//! `named_tunnel.json`, and the tunnel restarts with the route in its
//! ingress, every URL staying. Its followers hear what the server's tunnel
//! does, at their own hostnames.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use drop_registry::{Home, RegistryError};
use drop_tunnel::{NamedCloudflared, NamedRoute, NamedTunnels, OriginHost};
use tokio::sync::mpsc;

use super::AppTarget;
use super::follow::TunnelNews;
use crate::blocking::blocking;
use tracing::{info, warn};

/// A named tunnel as the daemon runs it: the provider the server's tunnel
/// is opened with (whose routes give apps their hostnames), and the
/// management that routes a new app's hostname in DNS.
#[derive(Clone)]
pub struct NamedTunnelAccess {
    /// Runs the tunnel; also the keeper's provider.
    pub provider: Arc<NamedCloudflared>,
    /// Routes hostnames to it.
    pub manage: Arc<NamedTunnels>,
}

/// The apps routed through the named tunnel.
pub(super) struct NamedRoutes {
    access: NamedTunnelAccess,
    /// Each routed app's route, and where its follower hears of it.
    routes: Mutex<BTreeMap<String, Route>>,
    /// What was last heard of the server's tunnel, for a route added later.
    last_news: Mutex<Option<TunnelNews>>,
    /// Held while an app's hostname is chosen, routed and recorded, so each
    /// new one sees every one given before.
    naming: tokio::sync::Mutex<()>,
}

struct Route {
    route: NamedRoute,
    news: mpsc::UnboundedSender<TunnelNews>,
}

impl NamedRoutes {
    pub(super) fn new(access: NamedTunnelAccess) -> Self {
        NamedRoutes {
            access,
            routes: Mutex::default(),
            last_news: Mutex::default(),
            naming: tokio::sync::Mutex::new(()),
        }
    }

    /// Tells every routed app what the server's tunnel just did, and keeps
    /// it for apps routed later.
    pub(super) fn tell(&self, news: &TunnelNews) {
        *self.last_news.lock().expect("news lock") = Some(news.clone());
        for route in self.routes.lock().expect("routes lock").values() {
            let _ = route.news.send(news.for_route(route.route.hostname()));
        }
    }

    /// Routes app `id` to `target`: its hostname (kept from before, else
    /// made from its name and routed in DNS) and its route.
    /// Returns where its follower hears of it, and whether the tunnel must
    /// restart to carry the route (not when it was routed before the
    /// tunnel started).
    pub(super) async fn add(
        &self,
        home: &Home,
        id: &str,
        target: AppTarget,
    ) -> Result<(mpsc::UnboundedReceiver<TunnelNews>, bool), String> {
        let hostname = self.hostname(home, id).await?;
        let route = route_to(&hostname, target).map_err(|e| e.to_string())?;
        let mut routes = self.routes.lock().expect("routes lock");
        let routed = routes.get(id).is_some_and(|r| r.route == route);
        let (news, heard) = mpsc::unbounded_channel();
        // Where the tunnel is now: down, that is the app's state too at
        // once; up with this route already, so is the app. Else the Up of
        // the restart with the new route (or of the first start) is to come.
        let now = self.last_news.lock().expect("news lock").clone();
        match now {
            Some(now) if !matches!(now, TunnelNews::Up { .. }) || routed => {
                let _ = news.send(now.for_route(&hostname));
            }
            _ => {}
        }
        routes.insert(id.to_owned(), Route { route, news });
        Ok((heard, !routed))
    }

    /// Routes app `id` under the hostname it was given before, ahead of the
    /// tunnel's start (see `Supervisor::preroute`); nobody follows it until
    /// it is added. Whether it was routed.
    pub(super) async fn preroute(&self, home: &Home, id: &str, target: AppTarget) -> bool {
        let home = home.clone();
        let Ok(Some(setup)) = blocking(move || home.load_named_tunnel()).await else {
            return false;
        };
        let Some(route) = setup
            .app_hostnames
            .get(id)
            .and_then(|hostname| route_to(hostname, target).ok())
        else {
            return false;
        };
        let (news, _) = mpsc::unbounded_channel();
        let mut routes = self.routes.lock().expect("routes lock");
        routes.insert(id.to_owned(), Route { route, news });
        true
    }

    /// Takes app `id`'s route off; whether it had one.
    pub(super) fn remove(&self, id: &str) -> bool {
        self.routes
            .lock()
            .expect("routes lock")
            .remove(id)
            .is_some()
    }

    /// Takes every route off (the daemon is stopping).
    pub(super) fn clear(&self) {
        self.routes.lock().expect("routes lock").clear();
    }

    /// Gives the tunnel's provider the routes of now, for its next start;
    /// false when it refused them (logged).
    pub(super) fn apply(&self) -> bool {
        let routes: Vec<NamedRoute> = (self.routes.lock().expect("routes lock").values())
            .map(|r| r.route.clone())
            .collect();
        match self.access.provider.set_routes(routes) {
            Ok(()) => true,
            Err(e) => {
                warn!("could not give the named tunnel its routes: {e}");
                false
            }
        }
    }

    /// The hostname of app `id`: the one it was given before, else a new
    /// one under the tunnel's zone, routed in DNS and recorded so it never
    /// changes.
    async fn hostname(&self, home: &Home, id: &str) -> Result<String, String> {
        let _one = self.naming.lock().await;
        let (home, app) = (home.clone(), id.to_owned());
        let loaded = blocking({
            let home = home.clone();
            move || {
                let setup = home.load_named_tunnel()?;
                let name = home.registry().load()?.get(&app).map(|r| r.name.clone());
                Ok::<_, RegistryError>((setup, name.unwrap_or_default()))
            }
        });
        let (setup, name) = loaded.await.map_err(|e| e.to_string())?;
        let Some(mut setup) = setup else {
            return Err(
                "the named tunnel is no longer set up: run 'drop stop' then 'drop start'".into(),
            );
        };
        if let Some(hostname) = setup.app_hostnames.get(id) {
            return Ok(hostname.clone());
        }
        let routed: Vec<String> = (self.routes.lock().expect("routes lock").values())
            .map(|r| r.route.hostname().to_owned())
            .collect();
        let taken: Vec<&String> = (setup.app_hostnames.values())
            .chain(routed.iter())
            .chain(std::iter::once(&setup.hostname))
            .collect();
        let hostname = app_hostname(&setup.hostname, id, &name, &taken)?;
        self.access
            .manage
            .route_dns(self.access.provider.tunnel(), &hostname)
            .await
            .map_err(|e| format!("could not route {hostname} to the named tunnel: {e}"))?;
        setup.app_hostnames.insert(id.to_owned(), hostname.clone());
        blocking(move || home.save_named_tunnel(&setup))
            .await
            .map_err(|e| e.to_string())?;
        info!("app {id} routed at {hostname} on the named tunnel");
        Ok(hostname)
    }
}

/// The route of `hostname` to the app at `target`, sending it the `Host`
/// the target asks for.
fn route_to(hostname: &str, target: AppTarget) -> Result<NamedRoute, drop_tunnel::TunnelError> {
    let host = match target.keep_host {
        true => OriginHost::Public,
        false => OriginHost::Localhost,
    };
    NamedRoute::to_local(hostname, target.local)?.with_origin_host(host)
}

/// An app's hostname under the named tunnel's `main` hostname, one label
/// below the same zone (Cloudflare's free certificate covers
/// `*.example.com`, not `*.drop.example.com`): `<label>-drop.example.com`
/// for `drop.example.com`, `<label>.example.com` for `example.com`. The
/// label is the app's name made DNS-safe (letters, digits, single hyphens),
/// else its id's start, cut so the DNS label stays within 63 characters;
/// with the id's start added when the first choice is `taken`.
fn app_hostname(main: &str, id: &str, name: &str, taken: &[&String]) -> Result<String, String> {
    const MAX_LABEL: usize = 63;
    let (first, zone) = match main.split_once('.') {
        Some((first, zone)) if zone.contains('.') => (Some(first), zone),
        _ => (None, main),
    };
    let room = MAX_LABEL.saturating_sub(first.map_or(0, |f| f.len() + 1));
    if room < 8 {
        return Err(format!(
            "the first label of {main} is too long to give apps hostnames beside it (DNS labels have at most 63 characters): set the tunnel up with a shorter hostname"
        ));
    }
    let short_id = dns_label(&id[..id.len().min(6)]);
    let build = |label: &str| {
        let label: String = label.chars().take(room).collect();
        let label = label.trim_end_matches('-');
        match first {
            Some(first) => format!("{label}-{first}.{zone}"),
            None => format!("{label}.{zone}"),
        }
    };
    let named = match dns_label(name) {
        label if label.is_empty() => short_id.clone(),
        label => label,
    };
    let free = |hostname: &String| !taken.contains(&hostname);
    let hostname = build(&named);
    if free(&hostname) {
        return Ok(hostname);
    }
    // Room for the id's start at the end, however long the name.
    let keep = room.saturating_sub(short_id.len() + 1);
    let named: String = named.chars().take(keep).collect();
    let hostname = build(&format!("{}-{short_id}", named.trim_end_matches('-')));
    match free(&hostname) {
        true => Ok(hostname),
        false => Err(format!("no free hostname for app {id} under {main}")),
    }
}

/// `text` as a DNS label: lower-case letters and digits, other runs made
/// one hyphen, none at the ends.
fn dns_label(text: &str) -> String {
    let mut label = String::new();
    for c in text.chars() {
        match c.is_ascii_alphanumeric() {
            true => label.push(c.to_ascii_lowercase()),
            false if !label.ends_with('-') => label.push('-'),
            false => {}
        }
    }
    label.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apps' hostnames on a named tunnel: one DNS-safe label beside the
    /// server's, never one already given (nor the server's own), within DNS's
    /// 63 characters a label.
    #[test]
    fn app_hostnames_are_safe_distinct_and_short_enough() {
        let main = "drop.example.com".to_owned();
        let none: Vec<&String> = vec![&main];
        let id = "abcdef1234567890wxyz";
        assert_eq!(
            app_hostname(&main, id, "api", &none).unwrap(),
            "api-drop.example.com"
        );
        assert_eq!(
            app_hostname("example.com", id, "api", &[]).unwrap(),
            "api.example.com"
        );
        assert_eq!(
            app_hostname(&main, id, "Same__A.b", &none).unwrap(),
            "same-a-b-drop.example.com",
            "one hyphen between words, never two"
        );
        assert_eq!(
            app_hostname(&main, id, "", &none).unwrap(),
            "abcdef-drop.example.com"
        );
        let taken = "api-drop.example.com".to_owned();
        assert_eq!(
            app_hostname(&main, id, "api", &[&main, &taken]).unwrap(),
            "api-abcdef-drop.example.com"
        );
        let long = "x".repeat(80);
        let hostname = app_hostname(&main, id, &long, &none).unwrap();
        assert!(
            hostname.split('.').all(|label| label.len() <= 63),
            "{hostname}"
        );
        let long_main = format!("{}.example.com", "d".repeat(60));
        assert!(
            app_hostname(&long_main, id, "api", &[])
                .unwrap_err()
                .contains("too long")
        );
        // The server's own hostname is never an app's.
        let server = "api-drop.example.com".to_owned();
        let main_only = vec![&server];
        assert_ne!(app_hostname(&main, id, "api", &main_only).unwrap(), server);
    }
}
