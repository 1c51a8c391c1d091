//! `genesys-webhook ipranges`: the address ranges Genesys Cloud calls from.

use serde_json::json;

use crate::credentials::Credentials;
use crate::output::{Failure, Report};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    credentials: Credentials,
    /// Only this service's ranges (audiohook, open-messaging, bot-connector,
    /// data-actions, …); repeatable. Default: every range.
    #[arg(long = "service")]
    services: Vec<String>,
}

pub(crate) async fn run(args: Args, _json: bool) -> Result<Report, Failure> {
    let cloud = args.credentials.client()?;
    let ranges = cloud
        .ip_ranges()
        .await
        .map_err(|e| Failure::check(format!("GET /api/v2/ipranges: {e}")))?;
    let chosen: Vec<_> = ranges
        .into_iter()
        .filter(|r| {
            args.services.is_empty()
                || args
                    .services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&r.service))
        })
        .collect();
    let text = if chosen.is_empty() {
        "no range listed for these services".to_owned()
    } else {
        chosen
            .iter()
            .map(|r| {
                format!(
                    "{:<20} {:<16} {:<10} {}",
                    r.cidr,
                    r.service,
                    r.direction.as_deref().unwrap_or("-"),
                    r.region.as_deref().unwrap_or("-"),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let doc = json!({ "ranges": serde_json::to_value(&chosen).unwrap_or_default() });
    Ok(if chosen.is_empty() {
        Report::failed(text, doc)
    } else {
        Report::passed(text, doc)
    })
}
