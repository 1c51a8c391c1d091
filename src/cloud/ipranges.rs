//! The address ranges Genesys Cloud calls from (`GET /api/v2/ipranges`).

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::GenesysCloud;
use super::error::CloudError;

/// One range Genesys publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IpRange {
    /// The block, such as `52.4.0.0/14`.
    pub cidr: String,
    /// The service using it: an open list, today `api`, `data-actions`, `smtp`,
    /// `imap`, `graphapi`, `audiohook`, `open-messaging`, `tts-connector`,
    /// `audio-connector`, `byot-stt`, `bot-connector`, `byo-smpp`, `encryption`.
    #[serde(default)]
    pub service: String,
    /// The AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Seen from Genesys: `outbound` (Genesys calls out from it), `inbound`, `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

impl IpRange {
    /// Whether Genesys may call out from this range: `outbound`, `both`, or no
    /// direction given.
    pub fn is_outbound(&self) -> bool {
        !matches!(self.direction.as_deref(), Some(d) if d.eq_ignore_ascii_case("inbound"))
    }
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    entities: Vec<IpRange>,
}

impl GenesysCloud {
    /// Every range Genesys Cloud publishes for this region. Genesys says they change
    /// without notice: poll, never hard-code.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn ip_ranges(&self) -> Result<Vec<IpRange>, CloudError> {
        let listing: Listing = self.api_json(Method::GET, "/api/v2/ipranges", None).await?;
        Ok(listing.entities)
    }
}
