//! Receipts: whether the human opened a page. The server counts each time
//! a page's document is opened (a file page's file, a folder's HTML
//! documents; not every asset), by whom (a salted hash of the visitor's
//! address, the same client the login limiter sees), and when; link-preview
//! bots apart. Counts gather in memory and are written to the registry a
//! few seconds later, under its lock, never per request.
//!
//! The same place keeps one-time links: the first human to open the
//! document has the page for a short while; everyone after gets the 404.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use drop_registry::{MAX_VISITORS, Registry, RegistryError, rfc3339, rfc3339_millis};

use crate::auth::SessionKey;
use crate::page::catalog::PageEntry;

/// How long the one visitor of a one-time folder keeps it (its assets and
/// other pages load for them).
const ONCE_FOLDER_SESSION: Duration = Duration::from_secs(30 * 60);
/// How long the one visitor of a one-time file keeps it: long enough for
/// its browser's own second requests (a PDF viewer's ranges), no more.
const ONCE_FILE_GRACE: Duration = Duration::from_secs(60);

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
    /// A one-time page opened now: by whom, when, in which round.
    used: Option<OnceUse>,
}

/// The receipts of one page server.
#[derive(Debug)]
pub struct Receipts {
    key: SessionKey,
    /// Told when something is counted, so the writer sleeps while nothing is.
    counted: tokio::sync::Notify,
    /// Told when a one-time link was used: that is written at once, so a
    /// crash right after cannot give the link a second life.
    used_now: tokio::sync::Notify,
    urgent: AtomicBool,
    pending: Mutex<HashMap<String, Pending>>,
    /// One-time pages opened since this server started (the registry
    /// knows the older ones).
    used: Mutex<HashMap<String, OnceUse>>,
}

/// Who used a one-time page, when, and in which `--once` round.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OnceUse {
    by: String,
    at: SystemTime,
    round: u64,
}

/// Where a one-time page stands for one visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// Nobody used it yet.
    Unused,
    /// This visitor used it, and still has it (a file's short grace, a
    /// folder's session).
    Held,
    /// Used by someone else, or too long ago: the 404 of a page that never
    /// existed.
    Gone,
}

impl Receipts {
    /// Receipts salting visitors' addresses with `key`.
    pub fn new(key: SessionKey) -> Self {
        Receipts {
            key,
            counted: tokio::sync::Notify::new(),
            used_now: tokio::sync::Notify::new(),
            urgent: AtomicBool::new(false),
            pending: Mutex::default(),
            used: Mutex::default(),
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

    /// Where one-time `page` stands for `visitor` now. Its use in this
    /// round is the one seen since this server started, else the one
    /// recorded (a `drop add --once` since then begins a new round).
    pub fn once_for(&self, page: &PageEntry, visitor: &str, now: SystemTime) -> Once {
        let used = self.used.lock().expect("once lock");
        let seen = used.get(&page.id).filter(|u| u.round == page.once_round);
        let (by, at) = match (seen, &page.used) {
            (Some(u), _) => (u.by.as_str(), u.at),
            (None, Some((by, at))) => (by.as_str(), *at),
            (None, None) => return Once::Unused,
        };
        let keeps = match page.is_dir {
            true => ONCE_FOLDER_SESSION,
            false => ONCE_FILE_GRACE,
        };
        match by == visitor && now.duration_since(at).is_ok_and(|held| held < keeps) {
            true => Once::Held,
            false => Once::Gone,
        }
    }

    /// Uses one-time `page` up for `visitor`, once its document was
    /// delivered to them; false when someone else used it meanwhile (then
    /// they must not have it).
    pub fn use_once(&self, page: &PageEntry, visitor: &str, now: SystemTime) -> bool {
        let mut used = self.used.lock().expect("once lock");
        if let Some(u) = used.get(&page.id).filter(|u| u.round == page.once_round) {
            return u.by == visitor;
        }
        let this = OnceUse {
            by: visitor.to_owned(),
            at: now,
            round: page.once_round,
        };
        used.insert(page.id.clone(), this.clone());
        let mut pending = self.pending.lock().expect("receipts lock");
        pending.entry(page.id.clone()).or_default().used = Some(this);
        self.urgent.store(true, Ordering::SeqCst);
        self.used_now.notify_one();
        self.counted.notify_one();
        true
    }

    /// Waits until something was counted since the last write.
    pub async fn counted(&self) {
        self.counted.notified().await;
    }

    /// Lets what comes within `every` gather before a write, unless a
    /// one-time link was used: then at once.
    pub async fn gathered(&self, every: Duration) {
        if !self.urgent.swap(false, Ordering::SeqCst) {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.used_now.notified() => {}
            }
        }
        self.urgent.store(false, Ordering::SeqCst);
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
                // Not a use of a round that a new `--once` has ended.
                if let Some(u) = &counted.used
                    && record.used_at.is_none()
                    && record.once_round == u.round
                {
                    record.used_at = Some(rfc3339(u.at));
                    record.used_by = Some(u.by.clone());
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
                entry.used = entry.used.take().or(counted.used);
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            used: None,
        }
    }

    fn receipts() -> Receipts {
        Receipts::new(SessionKey::from_bytes([7; 32]))
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

    #[test]
    fn a_one_time_file_opens_for_one_human_for_a_short_while() {
        let r = receipts();
        let p = page("p1", false);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(r.once_for(&p, "alice", t0), Once::Unused);
        assert!(r.use_once(&p, "alice", t0), "the human");
        assert!(r.use_once(&p, "alice", t0), "hers still");
        assert!(!r.use_once(&p, "bob", t0), "not anyone else's");
        assert_eq!(r.once_for(&p, "bob", t0), Once::Gone);
        let soon = t0 + Duration::from_secs(5);
        assert_eq!(
            r.once_for(&p, "alice", soon),
            Once::Held,
            "her viewer's ranges"
        );
        let later = t0 + ONCE_FILE_GRACE;
        assert_eq!(r.once_for(&p, "alice", later), Once::Gone, "once");
    }

    #[test]
    fn a_one_time_folder_is_one_visitors_session() {
        let r = receipts();
        let p = page("p2", true);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(r.use_once(&p, "alice", t0));
        let in_session = t0 + Duration::from_secs(600);
        assert_eq!(r.once_for(&p, "alice", in_session), Once::Held);
        assert_eq!(r.once_for(&p, "bob", in_session), Once::Gone);
        assert_eq!(
            r.once_for(&p, "alice", t0 + ONCE_FOLDER_SESSION),
            Once::Gone
        );
    }

    #[test]
    fn a_page_used_before_a_restart_stays_used() {
        let r = receipts();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let p = PageEntry {
            used: Some(("alice".into(), t0)),
            ..page("p3", false)
        };
        assert_eq!(r.once_for(&p, "bob", t0), Once::Gone);
        assert_eq!(
            r.once_for(&p, "alice", t0 + Duration::from_secs(1)),
            Once::Held
        );
    }

    /// `drop add --once` again starts a new round: a use seen in the
    /// earlier one no longer counts, here or when it is written.
    #[test]
    fn a_new_once_round_forgets_the_use_of_the_last() {
        let r = receipts();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let first = page("p4", false);
        assert!(r.use_once(&first, "alice", t0));
        let second = PageEntry {
            once_round: 2,
            ..first
        };
        assert_eq!(r.once_for(&second, "bob", t0), Once::Unused);
        assert!(r.use_once(&second, "bob", t0));
        assert_eq!(r.once_for(&second, "alice", t0), Once::Gone);

        let home = tempfile::tempdir().unwrap();
        let registry = Registry::at(home.path().join("pages.json"));
        registry
            .update(|pages| {
                let mut record = drop_registry::Record::static_page("/x".into(), false);
                record.once = true;
                record.once_round = 3;
                pages.insert("p4".into(), record);
                Ok::<_, RegistryError>(())
            })
            .unwrap();
        r.flush(&registry).unwrap();
        let record = registry.load().unwrap().get("p4").cloned().unwrap();
        assert_eq!(record.used_at, None, "round 2's use is not round 3's");
    }

    /// Views gather for the whole interval before they are written; a
    /// one-time link's use is written at once, also when it comes while
    /// views gather, so a crash right after cannot give the link a second
    /// life.
    #[tokio::test(start_paused = true)]
    async fn a_one_time_use_is_written_at_once_and_views_in_batches() {
        let every = Duration::from_secs(1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let gathering = |r: Receipts| async move {
            let began = tokio::time::Instant::now();
            r.gathered(every).await;
            began.elapsed()
        };

        let views = receipts();
        views.saw("p5", None, false, t0);
        assert_eq!(gathering(views).await, every, "views wait for the batch");

        let used = receipts();
        assert!(used.use_once(&page("p6", false), "alice", t0));
        assert_eq!(gathering(used).await, Duration::ZERO, "a use at once");

        let both = receipts();
        both.saw("p7", None, false, t0);
        let began = tokio::time::Instant::now();
        let use_later = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(both.use_once(&page("p8", false), "bob", t0));
        };
        tokio::join!(both.gathered(every), use_later);
        assert_eq!(
            began.elapsed(),
            Duration::from_millis(100),
            "a use ends the gathering"
        );
    }
}
