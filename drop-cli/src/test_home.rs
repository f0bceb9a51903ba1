//! A drop home for unit tests, with the daemon faked: a temporary folder,
//! a page published from a file in it, and a server that seems to run
//! (this test process is recorded as it). A test plays the daemon by
//! writing the registry as the daemon would.

use drop_core::supervise::ProcessId;
use drop_registry::{Home, Record, RegistryError, ServerState};
use tempfile::TempDir;

use crate::context::Context;
use crate::output::Output;
use crate::settings::Settings;

/// The id of the page every test home has.
pub const PAGE: &str = "pagepagepagepagepage";

/// A temporary home; removed when dropped.
pub struct TestHome {
    dir: TempDir,
}

impl TestHome {
    /// A home with [`PAGE`] published and its server "running".
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let home = TestHome { dir };
        let source = home.dir.path().join("report.html");
        std::fs::write(&source, "report").expect("write the page's file");
        let me = ProcessId::of(std::process::id()).expect("this process");
        let mut server = ServerState::new(9);
        server.host = Some("127.0.0.1".into());
        server.pid = Some(me.pid);
        server.start_time = Some(me.start_time);
        let drop_home = home.home();
        drop_home.ensure().expect("create the home");
        drop_home
            .save_server_state(&server)
            .expect("save server.json");
        home.change_page(|pages| pages.insert(PAGE.into(), Record::static_page(source, false)));
        home
    }

    pub fn home(&self) -> Home {
        Home::new(self.dir.path().join("home"))
    }

    /// A context on this home with every setting at its default.
    pub fn context(&self, out: Output) -> Context {
        Context {
            home: self.home(),
            settings: Settings::from_lookup(|_| None)
                .strict()
                .expect("default settings"),
            out,
        }
    }

    /// Changes the registry as the daemon would.
    pub fn change_page(&self, change: impl FnOnce(&mut drop_registry::Pages)) {
        self.home()
            .registry()
            .update(|pages| {
                change(pages);
                Ok::<_, RegistryError>(())
            })
            .expect("update pages.json");
    }

    /// Counts a human's view of [`PAGE`], now. The daemon writes times to
    /// the millisecond, so the view is dated the next one: a view dated
    /// the millisecond a wait began may be from before it.
    pub fn count_a_view(&self) {
        let at = std::time::SystemTime::now() + std::time::Duration::from_millis(1);
        self.change_page(|pages| {
            let page = pages.get_mut(PAGE).expect("the page");
            page.views += 1;
            page.last_opened_at = Some(drop_registry::rfc3339_millis(at));
        });
    }
}
