//! Receipts: whether the human opened a page. The server counts each time
//! a page's document is opened (a file page's file, a folder's HTML
//! documents; not every asset), by whom (a salted hash of the visitor's
//! address, the same client the login limiter sees), and when; link-preview
//! bots apart. Counts gather in memory and are written to the registry a
//! few seconds later, under its lock, never per request.
//!
//! The same place keeps one-time links: the first human to open the
//! document has the page for a short while, in the browser it was
//! delivered to (a signed cookie); everyone after gets the 404. The use is
//! written to the registry before the document goes out.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use drop_registry::{MAX_VISITORS, Registry, RegistryError, rfc3339, rfc3339_millis};

use crate::auth::SessionKey;
use crate::auth::gate::{cookie_values, page_cookie};
use crate::log::Throttle;
use crate::page::catalog::PageEntry;

/// How long the one visitor of a one-time folder keeps it (its assets and
/// other pages load for them).
const ONCE_FOLDER_SESSION: Duration = Duration::from_secs(30 * 60);
/// How long the one visitor of a one-time file keeps it: long enough for
/// its browser's own second requests (a PDF viewer's ranges), no more.
const ONCE_FILE_GRACE: Duration = Duration::from_secs(60);
/// Holder cookies looked at per request; a browser sends one.
const MAX_PASSES_CHECKED: usize = 4;

/// `User-Agent` words of link-preview fetchers: chat apps and social sites
/// that open a link to show a card, not a human opening it.
const PREVIEW_BOTS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "twitterbot",
    "facebookexternalhit",
    "facebot",
    "linkedinbot",
    "skypeuripreview",
    "microsoft teams",
    "teamsbot",
    "applebot",
    "imessage",
    "mattermost",
    "rocket.chat",
    "zulip",
    "redditbot",
    "pinterestbot",
    "pinterest/0.",
    "embedly",
    "iframely",
    "vkshare",
    "snap url preview",
    "mastodon/",
    "synapse (bot",
    "cardyb",
    "bluesky",
    "line-poker",
    "kakaotalk-scrap",
    "googlebot",
    "bingbot",
    "bitlybot",
];

/// Whether a request with this `User-Agent` is a link-preview bot.
pub fn is_preview_bot(user_agent: &str) -> bool {
    let agent = user_agent.to_ascii_lowercase();
    PREVIEW_BOTS.iter().any(|bot| agent.contains(bot))
}

/// Views not yet written to the registry, per page.
#[derive(Debug, Default)]
struct Pending {
    views: u64,
    bot_views: u64,
    /// Client keys as the limiter sees them, made tags only when written:
    /// no hashing, no text on the way of a request.
    clients: BTreeSet<IpAddr>,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
}

/// The receipts of one page server.
#[derive(Debug)]
pub struct Receipts {
    key: SessionKey,
    /// Told when something is counted, so the writer sleeps while nothing is.
    counted: tokio::sync::Notify,
    pending: Mutex<HashMap<String, Pending>>,
    /// One-time pages claimed since this server started (the registry
    /// knows the older ones): the claim decides among racing visitors
    /// before the use is written.
    used: Mutex<HashMap<String, OnceUse>>,
    /// Uses that could not be written, logged at most once a minute.
    warnings: Throttle,
}

/// Who used a one-time page, when, and in which `--once` round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceUse {
    by: String,
    at: SystemTime,
    round: u64,
}

/// Where a one-time page stands for one visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// Nobody used it yet.
    Unused,
    /// This browser used it, and still has it (a file's short grace, a
    /// folder's session).
    Held,
    /// Used by someone else, or too long ago: the 404 of a page that never
    /// existed.
    Gone,
}

impl Receipts {
    /// Receipts salting visitors' addresses, and signing one-time
    /// holders' cookies, with `key`.
    pub fn new(key: SessionKey) -> Self {
        Receipts {
            key,
            counted: tokio::sync::Notify::new(),
            pending: Mutex::default(),
            used: Mutex::default(),
            warnings: Throttle::default(),
        }
    }

    /// The tag receipts keep of a client address.
    pub fn visitor(&self, client: &str) -> String {
        self.key.visitor_tag(client)
    }

    /// Counts an opening of `page`'s document by `client` (its key as
    /// the login limiter sees it). Cheap: a lock, no hashing, an allocation
    /// only for what is new since the last write.
    pub fn saw(&self, page: &str, client: Option<IpAddr>, bot: bool, now: SystemTime) {
        let mut pending = self.pending.lock().expect("receipts lock");
        // The writer sleeps until the first count after a write.
        if pending.is_empty() {
            self.counted.notify_one();
        }
        if !pending.contains_key(page) {
            pending.insert(page.to_owned(), Pending::default());
        }
        let entry = pending.get_mut(page).expect("inserted above");
        if bot {
            entry.bot_views += 1;
            return;
        }
        entry.views += 1;
        if let Some(client) = client
            && entry.clients.len() < MAX_VISITORS
        {
            entry.clients.insert(client);
        }
        entry.first.get_or_insert(now);
        entry.last = Some(now);
    }

    /// Where one-time `page` stands for the browser that sent `cookie`
    /// (the request's `Cookie` header) now. Its use in this round is the
    /// one claimed since this server started, else the one recorded (a
    /// `drop add --once` since then begins a new round).
    pub fn once_for(&self, page: &PageEntry, cookie: Option<&str>, now: SystemTime) -> Once {
        let claimed = self.used.lock().expect("once lock").get(&page.id).cloned();
        let at = match (claimed.filter(|u| u.round == page.once_round), page.used_at) {
            (Some(u), _) => u.at,
            (None, Some(at)) => at,
            (None, None) => return Once::Unused,
        };
        let in_grace = now.duration_since(at).is_ok_and(|held| held < keeps(page));
        let holder = cookie_values(cookie, &once_cookie_name(&page.id))
            .take(MAX_PASSES_CHECKED)
            .any(|pass| {
                self.key
                    .accepts_once_pass(&page.id, page.once_round, at, pass)
            });
        match in_grace && holder {
            true => Once::Held,
            false => Once::Gone,
        }
    }

    /// Claims one-time `page` for `visitor`, whose request is to get its
    /// document; `None` when someone claimed it first (then they must not
    /// have it). Nothing is written yet: see [`Receipts::record_use`].
    pub fn claim_once(&self, page: &PageEntry, visitor: &str, now: SystemTime) -> Option<OnceUse> {
        let mut used = self.used.lock().expect("once lock");
        if used
            .get(&page.id)
            .is_some_and(|u| u.round == page.once_round)
        {
            return None;
        }
        let claim = OnceUse {
            by: visitor.to_owned(),
            at: now,
            round: page.once_round,
        };
        used.insert(page.id.clone(), claim.clone());
        Some(claim)
    }

    /// Writes the use `claim` of one-time `page` to the registry (fsync'd:
    /// a crash after this cannot give the link a second life). False when
    /// the registry's page is no longer that round's unused page (removed,
    /// or added again meanwhile): then the claim is void.
    pub fn record_use(
        &self,
        registry: &Registry,
        page: &PageEntry,
        claim: &OnceUse,
    ) -> Result<bool, RegistryError> {
        let recorded = Self::write_use(registry, page, claim);
        if let Err(e) = &recorded {
            self.warnings.line(
                "use",
                format_args!(
                    "could not record the use of one-time page {} (its visitor is told to try again): {e}",
                    page.id
                ),
            );
        }
        recorded
    }

    fn write_use(
        registry: &Registry,
        page: &PageEntry,
        claim: &OnceUse,
    ) -> Result<bool, RegistryError> {
        registry.update(|pages| {
            let Some(record) = pages.get_mut(&page.id) else {
                return Ok(false);
            };
            if !record.once || record.used_at.is_some() || record.once_round != claim.round {
                return Ok(false);
            }
            record.used_at = Some(rfc3339(claim.at));
            record.used_by = Some(claim.by.clone());
            Ok(true)
        })
    }

    /// Gives up a claim whose use could not be recorded, so that the page
    /// is unused again.
    pub fn release(&self, page: &PageEntry, claim: &OnceUse) {
        let mut used = self.used.lock().expect("once lock");
        if used.get(&page.id) == Some(claim) {
            used.remove(&page.id);
        }
    }

    /// The `Set-Cookie` value that lets the browser of `claim` keep
    /// one-time `page` for its grace; `secure` when it came over HTTPS.
    pub fn holder_cookie(&self, page: &PageEntry, claim: &OnceUse, secure: bool) -> String {
        let pass = self.key.once_pass(&page.id, claim.round, claim.at);
        page_cookie(
            &once_cookie_name(&page.id),
            &pass,
            &page.id,
            keeps(page),
            secure,
        )
    }

    /// Waits until something was counted since the last write.
    pub async fn counted(&self) {
        self.counted.notified().await;
    }

    /// Writes what was counted to the registry, adding to what it holds
    /// (pages removed meanwhile are skipped). What could not be written is
    /// kept for the next try.
    pub fn flush(&self, registry: &Registry) -> Result<(), RegistryError> {
        let taken = std::mem::take(&mut *self.pending.lock().expect("receipts lock"));
        if taken.is_empty() {
            return Ok(());
        }
        let written = registry.update(|pages| {
            for (id, counted) in &taken {
                let Some(record) = pages.get_mut(id) else {
                    continue;
                };
                record.views += counted.views;
                record.bot_views += counted.bot_views;
                for client in &counted.clients {
                    if record.visitors.len() >= MAX_VISITORS {
                        break;
                    }
                    // The same tag as a one-time page's visitor gets.
                    let visitor = self.visitor(&client.to_string());
                    if !record.visitors.contains(&visitor) {
                        record.visitors.push(visitor);
                    }
                }
                if let Some(first) = counted.first {
                    record
                        .first_opened_at
                        .get_or_insert_with(|| rfc3339_millis(first));
                }
                if let Some(last) = counted.last {
                    record.last_opened_at = Some(rfc3339_millis(last));
                }
            }
            Ok::<_, RegistryError>(())
        });
        if written.is_err() {
            // Put it back, merged with what came meanwhile.
            let mut pending = self.pending.lock().expect("receipts lock");
            for (id, counted) in taken {
                let entry = pending.entry(id).or_default();
                entry.views += counted.views;
                entry.bot_views += counted.bot_views;
                entry.clients.extend(counted.clients);
                entry.first = entry.first.min(counted.first).or(counted.first);
                entry.last = entry.last.max(counted.last);
            }
        }
        written
    }
}

/// How long the one visitor of one-time `page` keeps it.
fn keeps(page: &PageEntry) -> Duration {
    match page.is_dir {
        true => ONCE_FOLDER_SESSION,
        false => ONCE_FILE_GRACE,
    }
}

/// The cookie of the browser that holds one-time page `id`.
fn once_cookie_name(id: &str) -> String {
    format!("drop_once_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment of a use, well after the epoch.
    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    fn page(id: &str, is_dir: bool) -> PageEntry {
        PageEntry {
            id: id.into(),
            name: String::new(),
            root: "/".into(),
            is_dir,
            is_app: false,
            password_hash: String::new(),
            expires_at: None,
            once: true,
            once_round: 1,
            used_at: None,
        }
    }

    fn receipts() -> Receipts {
        Receipts::new(SessionKey::from_bytes([7; 32]))
    }

    /// The `Cookie` header of the browser that got `claim`.
    fn cookie_of(r: &Receipts, p: &PageEntry, claim: &OnceUse) -> String {
        let set = r.holder_cookie(p, claim, false);
        set.split(';').next().unwrap().to_owned()
    }

    /// A registry holding one-time page `id` in `round`.
    fn registry_with(id: &str, round: u64) -> (tempfile::TempDir, Registry) {
        let home = tempfile::tempdir().unwrap();
        let registry = Registry::at(home.path().join("pages.json"));
        registry
            .update(|pages| {
                let mut record = drop_registry::Record::static_page("/x".into(), false);
                record.once = true;
                record.once_round = round;
                pages.insert(id.into(), record);
                Ok::<_, RegistryError>(())
            })
            .unwrap();
        (home, registry)
    }

    #[test]
    fn preview_bots_are_told_from_browsers() {
        for bot in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "WhatsApp/2.23.20.0",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        ] {
            assert!(is_preview_bot(bot), "{bot}");
        }
        for fediverse in [
            "Mastodon/4.2.0 (http.rb/5.1.1; +https://mastodon.social/)",
            "Synapse (bot; +https://github.com/matrix-org/synapse)",
            "Bluesky Cardyb/1.1",
        ] {
            assert!(is_preview_bot(fediverse), "{fediverse}");
        }
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert!(!is_preview_bot(firefox));
        // Humans in apps' own browsers.
        for human in [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.46 (like Safari/8617.2.4.10.8, panda)",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
        ] {
            assert!(!is_preview_bot(human), "{human}");
        }
        assert!(!is_preview_bot("curl/8.5.0"));
    }

    #[test]
    fn visitors_are_kept_as_salted_tags_only() {
        let r = receipts();
        let tag = r.visitor("203.0.113.50");
        assert_eq!(tag.len(), 16);
        assert!(!tag.contains("203"));
        assert_eq!(tag, r.visitor("203.0.113.50"));
        assert_ne!(tag, r.visitor("203.0.113.51"));
        let other_key = Receipts::new(SessionKey::from_bytes([8; 32]));
        assert_ne!(tag, other_key.visitor("203.0.113.50"), "salted");
    }

    /// The first claim wins, even by the same visitor's address; the
    /// browser it went to keeps the page for the short grace by its
    /// cookie, and no other browser does.
    #[test]
    fn a_one_time_file_opens_for_one_browser_for_a_short_while() {
        let r = receipts();
        let p = page("p1", false);
        assert_eq!(r.once_for(&p, None, t0()), Once::Unused);
        let claim = r.claim_once(&p, "alice", t0()).expect("the human");
        assert_eq!(r.claim_once(&p, "alice", t0()), None, "one claim a round");
        assert_eq!(r.claim_once(&p, "bob", t0()), None);
        let cookie = cookie_of(&r, &p, &claim);
        assert!(cookie.starts_with("drop_once_p1="), "{cookie}");
        assert_eq!(r.once_for(&p, None, t0()), Once::Gone, "another browser");
        let soon = t0() + Duration::from_secs(5);
        let with = format!("a=1; {cookie}");
        assert_eq!(
            r.once_for(&p, Some(&with), soon),
            Once::Held,
            "her viewer's ranges"
        );
        let later = t0() + ONCE_FILE_GRACE;
        assert_eq!(r.once_for(&p, Some(&cookie), later), Once::Gone, "once");
    }

    #[test]
    fn a_one_time_folder_is_one_browsers_session() {
        let r = receipts();
        let p = page("p2", true);
        let claim = r.claim_once(&p, "alice", t0()).unwrap();
        let cookie = cookie_of(&r, &p, &claim);
        let in_session = t0() + Duration::from_secs(600);
        assert_eq!(r.once_for(&p, Some(&cookie), in_session), Once::Held);
        assert_eq!(r.once_for(&p, None, in_session), Once::Gone);
        let over = t0() + ONCE_FOLDER_SESSION;
        assert_eq!(r.once_for(&p, Some(&cookie), over), Once::Gone);
    }

    /// A cookie holds the use it was given for: not another page's, and
    /// after a restart (the registry keeps the use to the second) still
    /// its own.
    #[test]
    fn a_holder_keeps_the_page_across_a_restart_and_no_other_page() {
        let r = receipts();
        let p = page("p3", false);
        let at = t0() + Duration::from_millis(1_700);
        let claim = r.claim_once(&p, "alice", at).unwrap();
        let cookie = cookie_of(&r, &p, &claim);
        let restarted = receipts();
        let recorded = PageEntry {
            used_at: Some(t0() + Duration::from_secs(1)),
            ..page("p3", false)
        };
        let soon = t0() + Duration::from_secs(2);
        assert_eq!(restarted.once_for(&recorded, None, soon), Once::Gone);
        assert_eq!(
            restarted.once_for(&recorded, Some(&cookie), soon),
            Once::Held
        );
        let other = PageEntry {
            used_at: Some(t0() + Duration::from_secs(1)),
            ..page("p4", false)
        };
        let theirs = cookie.replace("drop_once_p3=", "drop_once_p4=");
        assert_eq!(restarted.once_for(&other, Some(&theirs), soon), Once::Gone);
    }

    /// `drop add --once` again starts a new round: a claim of the earlier
    /// one no longer counts, nor does its holder's cookie, nor is it
    /// written.
    #[test]
    fn a_new_once_round_forgets_the_use_of_the_last() {
        let r = receipts();
        let first = page("p5", false);
        let old = r.claim_once(&first, "alice", t0()).unwrap();
        let cookie = cookie_of(&r, &first, &old);
        let second = PageEntry {
            once_round: 2,
            ..first
        };
        assert_eq!(r.once_for(&second, Some(&cookie), t0()), Once::Unused);
        let new = r.claim_once(&second, "bob", t0()).unwrap();
        assert_eq!(r.once_for(&second, Some(&cookie), t0()), Once::Gone);

        let (_home, registry) = registry_with("p5", 3);
        assert!(!r.record_use(&registry, &second, &new).unwrap());
        let record = registry.load().unwrap().get("p5").cloned().unwrap();
        assert_eq!(record.used_at, None, "round 2's use is not round 3's");
    }

    /// A use is written to the registry when it is recorded (the caller
    /// answers after), once; a claim given up leaves the page unused.
    #[test]
    fn a_use_is_recorded_in_the_registry_once() {
        let r = receipts();
        let p = page("p6", false);
        let (_home, registry) = registry_with("p6", 1);
        let claim = r.claim_once(&p, "alice", t0()).unwrap();
        assert!(r.record_use(&registry, &p, &claim).unwrap());
        let record = registry.load().unwrap().get("p6").cloned().unwrap();
        assert_eq!(record.used_at.as_deref(), Some(rfc3339(t0()).as_str()));
        assert_eq!(record.used_by.as_deref(), Some("alice"));
        assert!(!r.record_use(&registry, &p, &claim).unwrap(), "once");

        let q = page("p7", false);
        let claim = r.claim_once(&q, "bob", t0()).unwrap();
        r.release(&q, &claim);
        assert_eq!(r.once_for(&q, None, t0()), Once::Unused);
        assert!(r.claim_once(&q, "carol", t0()).is_some());
    }
}
