//! The entry points: ask the outside world, compare with this machine, give a verdict.

use crate::{EchoRace, ExternalIpSource, LocalAddrs, NatConfig, Reachability};

/// Races the configured IP-echo services and judges their answer against
/// every address of this machine. Takes at most `config.deadline`, plus
/// the time to list the interfaces; never fails, but may be
/// [`Reachability::Unknown`].
pub async fn detect(config: &NatConfig) -> Reachability {
    let race = match EchoRace::from_config(config) {
        Ok(race) => race,
        Err(error) => return Reachability::unknown(&error),
    };
    match LocalAddrs::of_this_machine() {
        Ok(local) => detect_with(&race, &local).await,
        Err(error) => Reachability::unknown(&error),
    }
}

/// The verdict for the address `source` reports, judged against `local`.
/// `source` is expected to bound its own time, as [`EchoRace`] does.
pub async fn detect_with(source: &dyn ExternalIpSource, local: &LocalAddrs) -> Reachability {
    match source.external_ip().await {
        Ok(external) => Reachability::judge(external, local),
        Err(error) => Reachability::unknown(&error),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;
    use crate::{MockExternalIpSource, NatError};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn seeing(answer: &'static str) -> MockExternalIpSource {
        let mut source = MockExternalIpSource::new();
        source
            .expect_external_ip()
            .times(1)
            .returning(move || Ok(ip(answer)));
        source
    }

    /// A machine on a home LAN: outward 192.168.1.5.
    fn lan_machine() -> LocalAddrs {
        LocalAddrs::new(Some(ip("192.168.1.5")), [ip("127.0.0.1"), ip("::1")])
    }

    /// A server whose public address sits on a second interface.
    fn vps() -> LocalAddrs {
        let all = [ip("127.0.0.1"), ip("198.51.100.9"), ip("2001:db8::9")];
        LocalAddrs::new(Some(ip("10.0.0.4")), all)
    }

    #[tokio::test]
    async fn address_on_any_interface_is_public() {
        let verdict = detect_with(&seeing("198.51.100.9"), &vps()).await;
        assert_eq!(
            verdict,
            Reachability::Public {
                ip: ip("198.51.100.9")
            }
        );
    }

    #[tokio::test]
    async fn foreign_address_is_behind_nat() {
        let verdict = detect_with(&seeing("203.0.113.7"), &lan_machine()).await;
        let local = Some(ip("192.168.1.5"));
        assert_eq!(
            verdict,
            Reachability::BehindNat {
                external: ip("203.0.113.7"),
                local
            }
        );
    }

    #[tokio::test]
    async fn carrier_grade_nat_is_never_public() {
        let phone = LocalAddrs::new(Some(ip("100.72.3.4")), [ip("127.0.0.1")]);
        let verdict = detect_with(&seeing("203.0.113.7"), &phone).await;
        assert!(verdict.needs_tunnel(), "{verdict}");
        let verdict = detect_with(&seeing("100.72.3.4"), &phone).await;
        assert!(matches!(verdict, Reachability::Unknown { .. }), "{verdict}");
    }

    #[tokio::test]
    async fn ipv6_answers_are_judged_like_ipv4() {
        let verdict = detect_with(&seeing("2001:db8::9"), &vps()).await;
        assert_eq!(
            verdict,
            Reachability::Public {
                ip: ip("2001:db8::9")
            }
        );
        let verdict = detect_with(&seeing("2001:db8::77"), &vps()).await;
        assert!(verdict.needs_tunnel(), "{verdict}");
    }

    #[tokio::test(start_paused = true)]
    async fn all_sources_failing_is_unknown_with_the_reason() {
        let mut refused = MockExternalIpSource::new();
        let error = || {
            Err(NatError::Garbage {
                url: "http://echo.test/".into(),
            })
        };
        refused.expect_external_ip().times(1).returning(error);
        let race = EchoRace::new(vec![Box::new(refused)], Duration::from_secs(1));
        let Reachability::Unknown { reason } = detect_with(&race, &lan_machine()).await else {
            panic!("expected an unknown verdict");
        };
        assert!(reason.contains("all 1 ip-echo services failed"), "{reason}");
        assert!(reason.contains("http://echo.test/"), "{reason}");
    }

    #[tokio::test]
    async fn a_bad_service_url_is_unknown_without_asking_anyone() {
        let config = NatConfig {
            services: vec!["not a url".into()],
            deadline: Duration::from_secs(1),
        };
        let verdict = detect(&config).await;
        assert!(
            matches!(verdict, Reachability::Unknown { ref reason } if reason.contains("not a url"))
        );
    }
}
