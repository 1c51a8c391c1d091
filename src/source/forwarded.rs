//! The client's address behind trusted reverse proxies.
//!
//! Each proxy appends the address it received the request from to the header; only the
//! entries appended by trusted proxies can be believed. Walking from the right, the
//! first entry that is not a trusted proxy is the client; anything left of it is the
//! client's own claim.

use std::net::IpAddr;

use http::HeaderMap;

use super::ranges::SourceRanges;

/// Which header the trusted proxies append the client's address to. Only that one is
/// read: a header the proxies do not set is the client's to forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, AWS ALB, most).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Why no client address could be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unbelievable {
    /// An entry is not an address (`unknown`, an obfuscated name, garbage).
    Malformed,
}

/// The client's address: `peer` itself unless it is a trusted proxy, else the last
/// untrusted entry of `header`.
pub(crate) fn client_address(
    headers: &HeaderMap,
    peer: IpAddr,
    proxies: &SourceRanges,
    header: ForwardedHeader,
) -> Result<IpAddr, Unbelievable> {
    if !proxies.contains(peer) {
        return Ok(peer);
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let mut client = peer;
    // Several header lines are one list, in order.
    let lines: Vec<&http::HeaderValue> = headers.get_all(name).iter().collect();
    for line in lines.into_iter().rev() {
        let text = line.to_str().map_err(|_| Unbelievable::Malformed)?;
        for element in text.rsplit(',') {
            let address = match header {
                ForwardedHeader::XForwardedFor => parse_node(element.trim()),
                ForwardedHeader::Forwarded => forwarded_for(element),
            }
            .ok_or(Unbelievable::Malformed)?;
            if !proxies.contains(address) {
                return Ok(address);
            }
            client = address;
        }
    }
    // Every hop was a trusted proxy: the leftmost is the origin.
    Ok(client)
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))?
    })
}

/// An address, possibly with a port: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (address, _port) = rest.split_once(']')?;
        return address.parse().ok();
    }
    let (address, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_claims() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        let claims = headers(&[("x-forwarded-for", "52.4.0.1")]);
        let found = client_address(
            &claims,
            ip("203.0.113.9"),
            &proxies,
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(found, Ok(ip("203.0.113.9")));
    }

    #[test]
    fn behind_trusted_proxies_the_last_untrusted_entry_is_the_client() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "52.4.0.1, 198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        let found = client_address(&h, ip("10.2.2.2"), &proxies, ForwardedHeader::XForwardedFor);
        assert_eq!(
            found,
            Ok(ip("198.51.100.7")),
            "the forged 52.4.0.1 is not believed"
        );
    }

    #[test]
    fn reads_only_the_configured_header() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=52.4.0.1"),
        ]);
        let xff = client_address(&h, ip("10.2.2.2"), &proxies, ForwardedHeader::XForwardedFor);
        assert_eq!(xff, Ok(ip("198.51.100.7")));
        let fwd = client_address(&h, ip("10.2.2.2"), &proxies, ForwardedHeader::Forwarded);
        assert_eq!(fwd, Ok(ip("52.4.0.1")));
    }

    #[test]
    fn parses_forwarded_elements_with_ports_quotes_and_other_parameters() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711";proto=https"#,
        )]);
        let found = client_address(&h, ip("10.0.0.1"), &proxies, ForwardedHeader::Forwarded);
        assert_eq!(found, Ok(ip("2001:db8:cafe::17")));
        let h = headers(&[("x-forwarded-for", "192.0.2.1:5555")]);
        let found = client_address(&h, ip("10.0.0.1"), &proxies, ForwardedHeader::XForwardedFor);
        assert_eq!(found, Ok(ip("192.0.2.1")));
    }

    #[test]
    fn an_entry_that_is_not_an_address_is_not_believed() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        for (name, value, header) in [
            ("x-forwarded-for", "unknown", ForwardedHeader::XForwardedFor),
            (
                "x-forwarded-for",
                "52.4.0.1, ",
                ForwardedHeader::XForwardedFor,
            ),
            ("forwarded", "for=_hidden", ForwardedHeader::Forwarded),
            ("forwarded", "proto=https", ForwardedHeader::Forwarded),
        ] {
            let h = headers(&[(name, value)]);
            let found = client_address(&h, ip("10.0.0.1"), &proxies, header);
            assert_eq!(found, Err(Unbelievable::Malformed), "{value}");
        }
    }

    #[test]
    fn without_the_header_a_trusted_proxy_is_its_own_client() {
        let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
        let found = client_address(
            &HeaderMap::new(),
            ip("10.0.0.1"),
            &proxies,
            ForwardedHeader::XForwardedFor,
        );
        assert_eq!(found, Ok(ip("10.0.0.1")));
    }

    proptest::proptest! {
        #[test]
        fn any_header_text_is_answered_without_a_panic(
            lines in proptest::collection::vec("[ -~]{0,80}", 0..4),
            forwarded in proptest::bool::ANY,
        ) {
            let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
            let (header, name) = if forwarded {
                (ForwardedHeader::Forwarded, "forwarded")
            } else {
                (ForwardedHeader::XForwardedFor, "x-forwarded-for")
            };
            let mut map = HeaderMap::new();
            for line in &lines {
                if let Ok(value) = http::HeaderValue::from_str(line) {
                    map.append(name, value);
                }
            }
            let _ = client_address(&map, ip("10.0.0.1"), &proxies, header);
        }

        #[test]
        fn the_client_is_the_last_hop_no_trusted_proxy_vouches_for(
            hops in proptest::collection::vec((proptest::bool::ANY, 0u32..1_000_000), 1..8),
            split in 1usize..4,
        ) {
            let proxies: SourceRanges = "10.0.0.0/8".parse().unwrap();
            // A hop is a trusted proxy (10.x) or not (100.x); the first is what the
            // client claims, whatever it is.
            let addresses: Vec<IpAddr> = hops
                .iter()
                .map(|&(trusted, n)| {
                    let first = if trusted { 10 } else { 100 };
                    IpAddr::V4(std::net::Ipv4Addr::new(first, (n >> 16) as u8, (n >> 8) as u8, n as u8))
                })
                .collect();
            let expected = addresses
                .iter()
                .rev()
                .find(|a| !proxies.contains(**a))
                .copied()
                .unwrap_or(addresses[0]);
            // The list, spread over up to `split` header lines.
            let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            let per_line = texts.len().div_ceil(split);
            let mut map = HeaderMap::new();
            for chunk in texts.chunks(per_line) {
                map.append("x-forwarded-for", chunk.join(", ").parse().unwrap());
            }
            let found = client_address(&map, ip("10.0.0.1"), &proxies, ForwardedHeader::XForwardedFor);
            proptest::prop_assert_eq!(found, Ok(expected));
        }
    }
}
