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
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use drop_registry::{MAX_VISITORS, Registry, RegistryError, rfc3339};

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
    "pinterest",
    "embedly",
    "iframely",
    "vkshare",
    "viber",
    "snapchat",
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
    visitors: BTreeSet<String>,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
    /// A one-time page opened now: by whom, when.
    used: Option<(String, SystemTime)>,
}

/// The receipts of one page server.
#[derive(Debug)]
pub struct Receipts {
    key: SessionKey,
    /// Told when something is counted, so the writer sleeps while nothing is.
    counted: tokio::sync::Notify,
    pending: Mutex<HashMap<String, Pending>>,
    /// One-time pages opened since this server started (the registry
    /// knows the older ones).
    used: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl Receipts {
    /// Receipts salting visitors' addresses with `key`.
    pub fn new(key: SessionKey) -> Self {
        Receipts {
            key,
            counted: tokio::sync::Notify::new(),
            pending: Mutex::default(),
            used: Mutex::default(),
        }
    }

    /// The tag receipts keep of a client address.
    pub fn visitor(&self, client: &str) -> String {
        self.key.visitor_tag(client)
    }

    /// Counts an opening of `page`'s document by `visitor`.
    pub fn saw(&self, page: &str, visitor: &str, bot: bool, now: SystemTime) {
        self.counted.notify_one();
        let mut pending = self.pending.lock().expect("receipts lock");
        let entry = pending.entry(page.to_owned()).or_default();
        if bot {
            entry.bot_views += 1;
            return;
        }
        entry.views += 1;
        if entry.visitors.len() < MAX_VISITORS {
            entry.visitors.insert(visitor.to_owned());
        }
        entry.first.get_or_insert(now);
        entry.last = Some(now);
    }

    /// Whether `visitor` may have one-time `page` now: before anyone used
    /// it (a human opening its document uses it up; a preview bot does
    /// not), or as the one who did, for a short while after.
    pub fn allows_once(
        &self,
        page: &PageEntry,
        visitor: &str,
        document: bool,
        bot: bool,
        now: SystemTime,
    ) -> bool {
        let mut used = self.used.lock().expect("once lock");
        let by = used.get(&page.id).cloned().or_else(|| page.used.clone());
        match by {
            Some((by, at)) => {
                let keeps = match page.is_dir {
                    true => ONCE_FOLDER_SESSION,
                    false => ONCE_FILE_GRACE,
                };
                by == visitor && now.duration_since(at).is_ok_and(|held| held < keeps)
            }
            None if document && !bot => {
                used.insert(page.id.clone(), (visitor.to_owned(), now));
                let mut pending = self.pending.lock().expect("receipts lock");
                let entry = pending.entry(page.id.clone()).or_default();
                entry.used = Some((visitor.to_owned(), now));
                self.counted.notify_one();
                true
            }
            None => true,
        }
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
                for visitor in &counted.visitors {
                    if record.visitors.len() >= MAX_VISITORS {
                        break;
                    }
                    if !record.visitors.contains(visitor) {
                        record.visitors.push(visitor.clone());
                    }
                }
                if let Some(first) = counted.first {
                    record.first_opened_at.get_or_insert_with(|| rfc3339(first));
                }
                if let Some(last) = counted.last {
                    record.last_opened_at = Some(rfc3339(last));
                }
                if let Some((by, at)) = &counted.used
                    && record.used_at.is_none()
                {
                    record.used_at = Some(rfc3339(*at));
                    record.used_by = Some(by.clone());
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
                entry.visitors.extend(counted.visitors);
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
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert!(!is_preview_bot(firefox));
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
    fn a_one_time_file_opens_for_one_human_and_a_bot_does_not_use_it() {
        let r = receipts();
        let p = page("p1", false);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(r.allows_once(&p, "bot", true, true, t0), "the preview card");
        assert!(r.allows_once(&p, "alice", true, false, t0), "the human");
        assert!(!r.allows_once(&p, "bob", true, false, t0), "anyone else");
        assert!(!r.allows_once(&p, "bot", true, true, t0), "even a bot, now");
        let soon = t0 + Duration::from_secs(5);
        assert!(
            r.allows_once(&p, "alice", false, false, soon),
            "her viewer's ranges"
        );
        let later = t0 + ONCE_FILE_GRACE;
        assert!(!r.allows_once(&p, "alice", true, false, later), "once");
    }

    #[test]
    fn a_one_time_folder_is_one_visitors_session() {
        let r = receipts();
        let p = page("p2", true);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(
            r.allows_once(&p, "alice", false, false, t0),
            "an asset uses nothing"
        );
        assert!(r.allows_once(&p, "alice", true, false, t0));
        let in_session = t0 + Duration::from_secs(600);
        assert!(r.allows_once(&p, "alice", false, false, in_session));
        assert!(!r.allows_once(&p, "bob", false, false, in_session));
        assert!(!r.allows_once(&p, "alice", true, false, t0 + ONCE_FOLDER_SESSION));
    }

    #[test]
    fn a_page_used_before_a_restart_stays_used() {
        let r = receipts();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let p = PageEntry {
            used: Some(("alice".into(), t0)),
            ..page("p3", false)
        };
        assert!(!r.allows_once(&p, "bob", true, false, t0));
        assert!(r.allows_once(&p, "alice", true, false, t0 + Duration::from_secs(1)));
    }
}
