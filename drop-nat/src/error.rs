//! What can go wrong while looking for the external address.

use std::time::Duration;

/// Why no external address was found, or why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// The request did not complete: DNS, refused connection, TLS, timeout.
    #[error("ip-echo service `{url}` could not be asked")]
    Request {
        /// The service's URL.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with a status other than 2xx.
    #[error("ip-echo service `{url}` answered with HTTP status {status}")]
    Status {
        /// The service's URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body was not a bare IP address: HTML, an error text, empty, too long.
    #[error("ip-echo service `{url}` answered with something that is not an ip address")]
    Garbage {
        /// The service's URL.
        url: String,
    },
    /// Every service failed before the deadline; `last` is the last failure.
    #[error("all {count} ip-echo services failed")]
    AllFailed {
        /// How many services were asked.
        count: usize,
        /// The last failure seen.
        #[source]
        last: Box<NatError>,
    },
    /// No service gave a valid answer before the deadline.
    #[error("no ip-echo service answered within {} ms", deadline.as_millis())]
    Deadline {
        /// The total time allowed.
        deadline: Duration,
    },
    /// The list of services is empty.
    #[error("no ip-echo service is configured")]
    NoServices,
    /// A service URL is not an absolute http or https URL.
    #[error("ip-echo service url `{url}` is not an absolute http or https url")]
    BadUrl {
        /// The rejected text.
        url: String,
    },
    /// The HTTP client could not be set up (its TLS configuration, say).
    #[error("could not set up the http client for ip-echo services")]
    Client {
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The operating system would not list the network interfaces.
    #[error("could not list this machine's network interfaces")]
    Interfaces {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The error and each of its causes on one line, joined by `: `.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
