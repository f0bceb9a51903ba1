//! Prints whether this machine is public, behind NAT, or unknown.
//!
//! ```sh
//! cargo run -p drop-nat --example whereami
//! cargo run -p drop-nat --example whereami -- http://127.0.0.1:8000/ 500
//! ```
//! The optional arguments are the IP-echo URLs (comma-separated) and the
//! deadline in milliseconds.

use std::process::ExitCode;
use std::time::Duration;

use drop_nat::{NatConfig, Reachability};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let services = args.next().unwrap_or_default();
    let mut config = match NatConfig::default().with_services(&services) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(ms) = args.next().and_then(|ms| ms.parse().ok()) {
        config.deadline = Duration::from_millis(ms);
    }
    let verdict = drop_nat::detect(&config).await;
    println!("{verdict}");
    match verdict {
        Reachability::Unknown { .. } => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
