//! Prints whether this machine is public, behind NAT, or unknown.
//!
//! ```sh
//! cargo run -p drop-nat --example whereami
//! DROP_IP_ECHO_URLS=http://127.0.0.1:8000/ DROP_NAT_DEADLINE_MS=500 cargo run -p drop-nat --example whereami
//! ```

use std::process::ExitCode;

use drop_nat::{NatConfig, Reachability};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match NatConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let verdict = drop_nat::detect(&config).await;
    println!("{verdict}");
    match verdict {
        Reachability::Unknown { .. } => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
