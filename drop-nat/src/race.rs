//! Several external-IP sources asked at once: the first valid answer wins.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::source::echo_client;
use crate::{ExternalIpSource, HttpEchoSource, NatConfig, NatError};

/// Asks every source at once and takes the first address any of them gives.
///
/// A failing source (refused, error page, garbage) is skipped; the others
/// keep running. When all have failed, or when the deadline passes, the
/// race fails; the sources still pending are dropped, so a slow one never
/// delays the answer of a fast one.
pub struct EchoRace {
    sources: Vec<Box<dyn ExternalIpSource>>,
    deadline: Duration,
}

impl EchoRace {
    /// A race between `sources` that gives up after `deadline`.
    pub fn new(sources: Vec<Box<dyn ExternalIpSource>>, deadline: Duration) -> Self {
        Self { sources, deadline }
    }

    /// One [`HttpEchoSource`] per configured service, sharing one HTTP client.
    pub fn from_config(config: &NatConfig) -> Result<Self, NatError> {
        let client = echo_client(None)?;
        let sources = config
            .services
            .iter()
            .map(|url| HttpEchoSource::with_client(client.clone(), url))
            .map(|source| source.map(|s| Box::new(s) as Box<dyn ExternalIpSource>))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(sources, config.deadline))
    }

    /// The first successful answer, or the last failure once all have failed.
    async fn first_answer(&self) -> Result<IpAddr, NatError> {
        let mut pending: FuturesUnordered<_> = self
            .sources
            .iter()
            .map(|source| source.external_ip())
            .collect();
        let mut last = NatError::NoServices;
        while let Some(answer) = pending.next().await {
            match answer {
                Ok(ip) => return Ok(ip),
                Err(error) => last = error,
            }
        }
        let count = self.sources.len();
        Err(NatError::AllFailed {
            count,
            last: Box::new(last),
        })
    }
}

#[async_trait]
impl ExternalIpSource for EchoRace {
    async fn external_ip(&self) -> Result<IpAddr, NatError> {
        if self.sources.is_empty() {
            return Err(NatError::NoServices);
        }
        let deadline = self.deadline;
        let race = tokio::time::timeout(deadline, self.first_answer()).await;
        race.unwrap_or(Err(NatError::Deadline { deadline }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockExternalIpSource;
    use tokio::time::{Instant, sleep};

    const DEADLINE: Duration = Duration::from_millis(1500);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn answering(answer: &'static str) -> Box<dyn ExternalIpSource> {
        let mut source = MockExternalIpSource::new();
        source
            .expect_external_ip()
            .times(1)
            .returning(move || Ok(ip(answer)));
        Box::new(source)
    }

    fn garbage(url: &'static str) -> Box<dyn ExternalIpSource> {
        let mut source = MockExternalIpSource::new();
        let error = move || Err(NatError::Garbage { url: url.into() });
        source.expect_external_ip().times(1).returning(error);
        Box::new(source)
    }

    /// Mocks answer at once; this waits first, on tokio's (paused) clock.
    struct Delayed {
        delay: Duration,
        inner: MockExternalIpSource,
    }

    #[async_trait]
    impl ExternalIpSource for Delayed {
        async fn external_ip(&self) -> Result<IpAddr, NatError> {
            sleep(self.delay).await;
            self.inner.external_ip().await
        }
    }

    fn abandoned_after(delay: Duration) -> Box<dyn ExternalIpSource> {
        let mut inner = MockExternalIpSource::new();
        inner.expect_external_ip().never();
        Box::new(Delayed { delay, inner })
    }

    #[tokio::test(start_paused = true)]
    async fn fast_answer_wins_and_slow_source_does_not_delay_it() {
        let slow = abandoned_after(Duration::from_secs(60));
        let race = EchoRace::new(vec![slow, answering("203.0.113.7")], DEADLINE);
        let start = Instant::now();
        assert_eq!(race.external_ip().await.unwrap(), ip("203.0.113.7"));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn later_valid_answer_wins_over_earlier_garbage() {
        let mut late = MockExternalIpSource::new();
        late.expect_external_ip()
            .times(1)
            .returning(|| Ok(ip("198.51.100.4")));
        let late = Box::new(Delayed {
            delay: Duration::from_millis(300),
            inner: late,
        });
        let race = EchoRace::new(
            vec![garbage("http://a/"), late, garbage("http://b/")],
            DEADLINE,
        );
        assert_eq!(race.external_ip().await.unwrap(), ip("198.51.100.4"));
    }

    #[tokio::test(start_paused = true)]
    async fn all_failing_sources_give_the_last_failure_without_waiting() {
        let race = EchoRace::new(vec![garbage("http://a/"), garbage("http://b/")], DEADLINE);
        let start = Instant::now();
        let err = race.external_ip().await.unwrap_err();
        assert!(matches!(err, NatError::AllFailed { count: 2, .. }), "{err}");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_sources_cost_exactly_the_deadline() {
        let race = EchoRace::new(vec![abandoned_after(Duration::from_secs(3600))], DEADLINE);
        let start = Instant::now();
        let err = race.external_ip().await.unwrap_err();
        assert!(
            matches!(err, NatError::Deadline { deadline: DEADLINE }),
            "{err}"
        );
        assert_eq!(start.elapsed(), DEADLINE);
    }

    #[tokio::test]
    async fn no_sources_is_an_error_of_its_own() {
        let err = EchoRace::new(Vec::new(), DEADLINE)
            .external_ip()
            .await
            .unwrap_err();
        assert!(matches!(err, NatError::NoServices));
    }
}
