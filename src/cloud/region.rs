use std::fmt;
use std::str::FromStr;

use super::CloudError;

/// A Genesys Cloud region, with the domain its API and login hosts live under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// `us-east-1`, mypurecloud.com (Americas, US East).
    UsEast1,
    /// `us-east-2`, use2.us-gov-pure.cloud (FedRAMP).
    UsEast2,
    /// `us-west-2`, usw2.pure.cloud (Americas, US West).
    UsWest2,
    /// `ca-central-1`, cac1.pure.cloud (Canada).
    CaCentral1,
    /// `sa-east-1`, sae1.pure.cloud (South America).
    SaEast1,
    /// `eu-west-1`, mypurecloud.ie (EMEA, Dublin).
    EuWest1,
    /// `eu-west-2`, euw2.pure.cloud (EMEA, London).
    EuWest2,
    /// `eu-central-1`, mypurecloud.de (EMEA, Frankfurt).
    EuCentral1,
    /// `eu-central-2`, euc2.pure.cloud (EMEA, Zurich).
    EuCentral2,
    /// `me-central-1`, mec1.pure.cloud (Middle East, UAE).
    MeCentral1,
    /// `ap-south-1`, aps1.pure.cloud (Asia Pacific, Mumbai).
    ApSouth1,
    /// `ap-northeast-1`, mypurecloud.jp (Asia Pacific, Tokyo).
    ApNortheast1,
    /// `ap-northeast-2`, apne2.pure.cloud (Asia Pacific, Seoul).
    ApNortheast2,
    /// `ap-northeast-3`, apne3.pure.cloud (Asia Pacific, Osaka).
    ApNortheast3,
    /// `ap-southeast-2`, mypurecloud.com.au (Asia Pacific, Sydney).
    ApSoutheast2,
    /// `ap-southeast-1`, apse1.pure.cloud (Asia Pacific, Jakarta).
    ApSoutheast1,
    /// `mx-central-1`, mxc1.pure.cloud (Americas, Mexico).
    MxCentral1,
}

const REGIONS: [(Region, &str, &str); 17] = [
    (Region::UsEast1, "us-east-1", "mypurecloud.com"),
    (Region::UsEast2, "us-east-2", "use2.us-gov-pure.cloud"),
    (Region::UsWest2, "us-west-2", "usw2.pure.cloud"),
    (Region::CaCentral1, "ca-central-1", "cac1.pure.cloud"),
    (Region::SaEast1, "sa-east-1", "sae1.pure.cloud"),
    (Region::EuWest1, "eu-west-1", "mypurecloud.ie"),
    (Region::EuWest2, "eu-west-2", "euw2.pure.cloud"),
    (Region::EuCentral1, "eu-central-1", "mypurecloud.de"),
    (Region::EuCentral2, "eu-central-2", "euc2.pure.cloud"),
    (Region::MeCentral1, "me-central-1", "mec1.pure.cloud"),
    (Region::ApSouth1, "ap-south-1", "aps1.pure.cloud"),
    (Region::ApNortheast1, "ap-northeast-1", "mypurecloud.jp"),
    (Region::ApNortheast2, "ap-northeast-2", "apne2.pure.cloud"),
    (Region::ApNortheast3, "ap-northeast-3", "apne3.pure.cloud"),
    (Region::ApSoutheast2, "ap-southeast-2", "mypurecloud.com.au"),
    (Region::ApSoutheast1, "ap-southeast-1", "apse1.pure.cloud"),
    (Region::MxCentral1, "mx-central-1", "mxc1.pure.cloud"),
];

impl Region {
    /// Every region.
    pub fn all() -> impl Iterator<Item = Region> {
        REGIONS.iter().map(|(region, _, _)| *region)
    }

    fn entry(self) -> &'static (Region, &'static str, &'static str) {
        match REGIONS.iter().find(|(region, _, _)| *region == self) {
            Some(entry) => entry,
            None => unreachable!("every region is in the table"),
        }
    }

    /// The region's name, such as `eu-west-1`.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The region's domain, such as `mypurecloud.ie`.
    pub fn domain(self) -> &'static str {
        self.entry().2
    }

    /// `https://api.<domain>`, the Platform API.
    pub fn api_base(self) -> String {
        format!("https://api.{}", self.domain())
    }

    /// `https://login.<domain>`, where OAuth tokens are issued.
    pub fn login_base(self) -> String {
        format!("https://login.{}", self.domain())
    }

    /// The DNS name in the client certificate Genesys presents for Data Actions with
    /// mutual TLS (the Genesys Cloud CA option), such as
    /// `dataactions.prod.us-east-1.mypurecloud.com` or
    /// `dataactions.prod-usw2.us-west-2.mypurecloud.com`.
    ///
    /// Genesys documents the names of us-east-1, us-west-2, ca-central-1, sa-east-1,
    /// ap-south-1 and ap-northeast-3; the others follow the same pattern (`prod-` and
    /// the region's short code) but are not confirmed: check the certificate Genesys
    /// lists (`GET /api/v2/integrations/actions/certificates`) before relying on one.
    ///
    /// ```
    /// use genesys_webhook::cloud::Region;
    ///
    /// assert_eq!(Region::UsEast1.data_actions_client_name(), "dataactions.prod.us-east-1.mypurecloud.com");
    /// assert_eq!(Region::ApNortheast3.data_actions_client_name(), "dataactions.prod-apne3.ap-northeast-3.mypurecloud.com");
    /// ```
    pub fn data_actions_client_name(self) -> String {
        let name = self.name();
        if self == Region::UsEast1 {
            return format!("dataactions.prod.{name}.mypurecloud.com");
        }
        // us-west-2 → usw2, ap-northeast-3 → apne3, eu-central-1 → euc1.
        let mut short = String::new();
        for (i, part) in name.split('-').enumerate() {
            match i {
                0 => short.push_str(part),
                _ if part.bytes().all(|b| b.is_ascii_digit()) => short.push_str(part),
                _ => {
                    for direction in ["north", "south", "east", "west", "central"] {
                        if part.contains(direction) {
                            short.push_str(&direction[..1]);
                        }
                    }
                }
            }
        }
        format!("dataactions.prod-{short}.{name}.mypurecloud.com")
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`Region::from_str`](std::str::FromStr::from_str) did not recognise a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRegion(String);

impl fmt::Display for UnknownRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown Genesys Cloud region {:?}: expected a name such as eu-west-1 or a domain such as mypurecloud.ie",
            self.0
        )
    }
}

impl std::error::Error for UnknownRegion {}

impl From<UnknownRegion> for CloudError {
    fn from(error: UnknownRegion) -> Self {
        CloudError::InvalidConfig(error.to_string())
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;

    /// Parses a region name (`eu-west-1`), a domain (`mypurecloud.ie`), or a host or
    /// URL under it (`api.mypurecloud.ie`, `https://login.mypurecloud.ie`).
    fn from_str(text: &str) -> Result<Self, UnknownRegion> {
        let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let host = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .unwrap_or(&text);
        for (region, name, domain) in REGIONS {
            if host == name
                || host == domain
                || host.strip_prefix("api.") == Some(domain)
                || host.strip_prefix("login.") == Some(domain)
            {
                return Ok(region);
            }
        }
        Err(UnknownRegion(text.chars().take(100).collect()))
    }
}

/// Where the Platform API and the login service are: a region's hosts, or overrides
/// for tests and proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    api_base: String,
    login_base: String,
}

impl Endpoints {
    /// The endpoints of `region`.
    pub fn for_region(region: Region) -> Self {
        Self {
            api_base: region.api_base(),
            login_base: region.login_base(),
        }
    }

    /// Resolves the endpoints: an override wins over the region. When only the API
    /// base is overridden, the login base is derived from it as the official SDKs do
    /// (a leading `api.` in the host becomes `login.`; otherwise the same base).
    ///
    /// ```
    /// use genesys_webhook::cloud::{Endpoints, Region};
    ///
    /// let e = Endpoints::resolve(Some(Region::EuWest1), None, None)?;
    /// assert_eq!(e.login_base(), "https://login.mypurecloud.ie");
    ///
    /// let e = Endpoints::resolve(None, Some("https://api.example.test/"), None)?;
    /// assert_eq!(e.api_base(), "https://api.example.test");
    /// assert_eq!(e.login_base(), "https://login.example.test");
    ///
    /// let e = Endpoints::resolve(None, Some("http://127.0.0.1:8080"), None)?;
    /// assert_eq!(e.login_base(), "http://127.0.0.1:8080");
    /// # Ok::<_, genesys_webhook::cloud::CloudError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// No region and no API base, or a base that is not an `http(s)://` URL.
    pub fn resolve(
        region: Option<Region>,
        api_base: Option<&str>,
        login_base: Option<&str>,
    ) -> Result<Self, CloudError> {
        let api_base =
            match (api_base, region) {
                (Some(base), _) => normalize(base)?,
                (None, Some(region)) => region.api_base(),
                (None, None) => return Err(CloudError::InvalidConfig(
                    "no Genesys Cloud region: give a region (such as eu-west-1) or an API base URL"
                        .into(),
                )),
            };
        let login_base = match (login_base, api_base_overridden(api_base.as_str(), region)) {
            (Some(base), _) => normalize(base)?,
            (None, false) => region.map_or_else(|| derive_login(&api_base), Region::login_base),
            (None, true) => derive_login(&api_base),
        };
        Ok(Self {
            api_base,
            login_base,
        })
    }

    /// The Platform API base URL, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The login base URL, without a trailing slash.
    pub fn login_base(&self) -> &str {
        &self.login_base
    }
}

fn api_base_overridden(api_base: &str, region: Option<Region>) -> bool {
    region.is_none_or(|region| region.api_base() != api_base)
}

/// Checks a base URL before any request goes to it: the OAuth secret and tokens are
/// sent there. It must parse as a URL, carry no userinfo (`https://api.x@evil.tld`
/// would send them to `evil.tld`), no query or fragment, and use HTTPS unless the
/// host is loopback (tests).
fn normalize(base: &str) -> Result<String, CloudError> {
    let trimmed = base.trim().trim_end_matches('/');
    let invalid = |why: &str| CloudError::InvalidConfig(format!("{trimmed:?} {why}"));
    let url = reqwest::Url::parse(trimmed).map_err(|_| invalid("is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CloudError::InvalidConfig(
            "a base URL must not hold a user name or password (text before an @)".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    let host = url.host_str().ok_or_else(|| invalid("has no host"))?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(
                "is plain HTTP: the OAuth secret and tokens would travel in clear text (only loopback may use http://)",
            ))
        }
        _ => return Err(invalid("is not an http(s):// base URL")),
    }
    Ok(trimmed.to_owned())
}

/// `https://api.x` → `https://login.x`; any other base stays as it is.
fn derive_login(api_base: &str) -> String {
    for scheme in ["https://", "http://"] {
        if let Some(rest) = api_base.strip_prefix(scheme) {
            if let Some(domain) = rest.strip_prefix("api.") {
                return format!("{scheme}login.{domain}");
            }
        }
    }
    api_base.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_domains_hosts_and_urls() {
        for region in Region::all() {
            assert_eq!(region.name().parse::<Region>().unwrap(), region);
            assert_eq!(region.domain().parse::<Region>().unwrap(), region);
            assert_eq!(region.api_base().parse::<Region>().unwrap(), region);
            assert_eq!(region.login_base().parse::<Region>().unwrap(), region);
        }
        assert_eq!("EU-WEST-1".parse::<Region>().unwrap(), Region::EuWest1);
        assert_eq!(
            "api.usw2.pure.cloud".parse::<Region>().unwrap(),
            Region::UsWest2
        );
        assert!("mars-north-1".parse::<Region>().is_err());
    }

    #[test]
    fn covers_every_documented_domain() {
        let domains: Vec<_> = Region::all().map(Region::domain).collect();
        for domain in [
            "mypurecloud.com",
            "mypurecloud.ie",
            "mypurecloud.com.au",
            "mypurecloud.jp",
            "mypurecloud.de",
            "usw2.pure.cloud",
            "cac1.pure.cloud",
            "apne2.pure.cloud",
            "euw2.pure.cloud",
            "aps1.pure.cloud",
            "use2.us-gov-pure.cloud",
            "sae1.pure.cloud",
            "mec1.pure.cloud",
            "apne3.pure.cloud",
            "euc2.pure.cloud",
            "apse1.pure.cloud",
            "mxc1.pure.cloud",
        ] {
            assert!(domains.contains(&domain), "{domain}");
        }
        let mexico: Region = "mx-central-1".parse().unwrap();
        assert_eq!(mexico.domain(), "mxc1.pure.cloud");
        let jakarta: Region = "ap-southeast-1".parse().unwrap();
        assert_eq!(jakarta.domain(), "apse1.pure.cloud");
    }

    #[test]
    fn overrides_win_over_the_region() {
        let e = Endpoints::resolve(
            Some(Region::UsEast1),
            Some("http://127.0.0.1:9000"),
            Some("http://127.0.0.1:9001/"),
        )
        .unwrap();
        assert_eq!(e.api_base(), "http://127.0.0.1:9000");
        assert_eq!(e.login_base(), "http://127.0.0.1:9001");

        let e =
            Endpoints::resolve(Some(Region::UsEast1), Some("http://127.0.0.1:9000"), None).unwrap();
        assert_eq!(e.login_base(), "http://127.0.0.1:9000");

        let e = Endpoints::resolve(Some(Region::EuCentral1), None, Some("https://proxy")).unwrap();
        assert_eq!(e.api_base(), "https://api.mypurecloud.de");
        assert_eq!(e.login_base(), "https://proxy");

        assert!(Endpoints::resolve(None, None, None).is_err());
        assert!(Endpoints::resolve(None, Some("ftp://x"), None).is_err());
    }

    #[test]
    fn refuses_bases_that_would_leak_the_credentials() {
        for base in [
            "https://api.mypurecloud.ie@evil.tld",
            "https://user:pw@api.mypurecloud.ie",
            "http://api.mypurecloud.ie",
            "http://10.0.0.1:8080",
            "https://api.mypurecloud.ie/?x=1",
            "not a url",
        ] {
            let error = Endpoints::resolve(None, Some(base), None)
                .unwrap_err()
                .to_string();
            assert!(!error.contains("pw@"), "{error}");
        }
        for base in [
            "http://127.0.0.1:9000",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            assert!(Endpoints::resolve(None, Some(base), None).is_ok(), "{base}");
        }
        assert!(
            Endpoints::resolve(Some(Region::EuWest1), None, Some("http://proxy.example")).is_err()
        );
    }
}

#[cfg(test)]
mod data_actions_tests {
    use super::Region;

    #[test]
    fn data_actions_names_match_the_ones_genesys_documents() {
        for (region, name) in [
            (
                Region::UsEast1,
                "dataactions.prod.us-east-1.mypurecloud.com",
            ),
            (
                Region::UsWest2,
                "dataactions.prod-usw2.us-west-2.mypurecloud.com",
            ),
            (
                Region::CaCentral1,
                "dataactions.prod-cac1.ca-central-1.mypurecloud.com",
            ),
            (
                Region::SaEast1,
                "dataactions.prod-sae1.sa-east-1.mypurecloud.com",
            ),
            (
                Region::ApSouth1,
                "dataactions.prod-aps1.ap-south-1.mypurecloud.com",
            ),
            (
                Region::ApNortheast3,
                "dataactions.prod-apne3.ap-northeast-3.mypurecloud.com",
            ),
        ] {
            assert_eq!(region.data_actions_client_name(), name);
        }
        assert_eq!(
            Region::ApSoutheast2.data_actions_client_name(),
            "dataactions.prod-apse2.ap-southeast-2.mypurecloud.com"
        );
    }
}
