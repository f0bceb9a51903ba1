//! drop's end-to-end tests, in one test binary (linked once): the page
//! server in-process, the real `drop` binary in temporary homes, the
//! tunnel library against the fake cloudflared, the install scripts, a
//! real browser, and the workspace's layout. One module per subject; run
//! one with `cargo test -p drop-tests --test e2e <module>::`.
//!
//! The tests of all modules run side by side in this one process, so none
//! may change what the process shares: no `std::env::set_var`, no
//! `set_current_dir`, no fixed port. Each test gets its own temporary
//! folders and free loopback ports, and passes settings to the processes
//! it starts through their own environment.

mod common;

mod apps;
mod browser;
mod dev_servers;
mod doctor;
mod hardening;
mod hostile_home;
mod hostile_paths;
mod install;
mod layout;
mod lifecycle;
mod mcp;
mod named_tunnel;
mod new_user;
mod one_time;
mod page_server;
mod passwords;
mod phase3;
mod protected_pages;
mod publish;
mod real_cloudflared;
mod real_dev_servers;
mod receipts;
mod rough_edges;
mod scripting;
mod tunnel_cloudflared;
mod tunnel_keeper;
mod tunnel_named;
mod tunnel_watchdog;
mod upgrade;
